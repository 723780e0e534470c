"""Running the sandbox: in a background thread, inside an existing event loop, or standalone.

Tests and scripts use :class:`SandboxServer` (own thread, own loop, ``with`` block). The Reflex
backend runs :func:`serve` as a lifespan task in its own loop. In both cases uvicorn must not
touch signal handlers (they belong to the host process) and must not reconfigure logging, and a
startup failure (port in use) must surface as an exception instead of ``SystemExit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from .app import create_sandbox_app
from .config import SandboxConfig, check_api_token_value
from .context import SandboxContext

logger = logging.getLogger("sample_app.sandbox")

WS_MAX_MESSAGE_BYTES = 1024 * 1024
"""Hard cap enforced by uvicorn (close 1009). Frames between ``ws_max_payload`` and this size
get an ``EROR`` and the socket stays open."""


@dataclass(frozen=True)
class SandboxAddress:
    """Where a started sandbox listens.

    Attributes:
        host: Bound host.
        port: Bound port (resolved when 0 was requested).
        http_url: Base URL for REST calls, e.g. ``http://127.0.0.1:8090``.
        ws_url: Base URL for the widget's ``wsHost``, e.g. ``ws://127.0.0.1:8090``.
    """

    host: str
    port: int
    http_url: str
    ws_url: str


class _EmbeddedServer(uvicorn.Server):
    """uvicorn server that leaves signal handling to the host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: signals belong to whoever embeds the sandbox."""
        yield


def _uvicorn_config(app: Starlette, host: str, port: int, *, standalone: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        log_config=None,
        log_level="info" if standalone else None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - display only
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _bound_address(server: uvicorn.Server, host: str) -> SandboxAddress:
    port = int(server.servers[0].sockets[0].getsockname()[1])
    url_host = _url_host(host)
    return SandboxAddress(
        host=host, port=port, http_url=f"http://{url_host}:{port}", ws_url=f"ws://{url_host}:{port}"
    )


def _publish(app: Starlette, address: SandboxAddress) -> None:
    info = app.state.sandbox_info
    info["http_url"] = app.state.sandbox.config.public_url or address.http_url
    info["ws_url"] = address.ws_url


async def _serve_guarded(server: uvicorn.Server) -> None:
    """Run uvicorn, turning its ``sys.exit`` on startup failure into an exception."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(
            f"the sandbox could not start on {server.config.host}:{server.config.port}"
        ) from exc


async def _close_live_work(ctx: SandboxContext) -> None:
    await ctx.hub.cancel_tasks()
    await ctx.hub.close_all(1001, "sandbox shutting down")


async def serve(
    config: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    install_signal_handlers: bool = False,
    on_ready: Callable[[SandboxAddress], None] | None = None,
) -> None:
    """Run the sandbox in the current event loop until cancelled (or, standalone, Ctrl+C).

    Shorthand for ``await SandboxServer(config, host, port).serve(...)``.

    Args:
        config: Sandbox settings.
        host: Interface to bind, loopback by default.
        port: TCP port; 0 picks a free one (reported through ``on_ready``).
        install_signal_handlers: Only for the standalone CLI.
        on_ready: Called once with the bound address after the socket is listening.

    Raises:
        RuntimeError: The server could not start (for example, the port is taken).
    """
    server = SandboxServer(config, host, port)
    await server.serve(install_signal_handlers=install_signal_handlers, on_ready=on_ready)


class SandboxServer:
    """One sandbox instance, run either in a background thread or in the caller's loop.

    Thread mode (tests, scripts)::

        with SandboxServer(SandboxConfig(api_token="a-local-sandbox-token")) as sandbox:
            httpx.get(f"{sandbox.http_url}/__sandbox__/health")

    In-loop mode (a lifespan task of another server)::

        task = asyncio.create_task(server.serve())
        await server.wait_started()
        ...
        task.cancel()  # closes sockets and stops uvicorn gracefully

    Args:
        config: Sandbox settings (defaults to an in-memory instance).
        host: Interface to bind.
        port: TCP port; 0 picks a free one.
        startup_timeout: Seconds to wait for the socket to listen.

    Raises:
        ValueError: The configuration's API token is too short or malformed.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        startup_timeout: float = 10.0,
    ) -> None:
        self.config = config or SandboxConfig()
        check_api_token_value(self.config.api_token)
        self.host = host
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self._address: SandboxAddress | None = None
        self._app: Starlette | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started_event: asyncio.Event | None = None

    def _build(self, *, standalone: bool = False) -> uvicorn.Server:
        self._error = None
        self._address = None
        self._app = create_sandbox_app(self.config)
        server_cls = uvicorn.Server if standalone else _EmbeddedServer
        self._server = server_cls(
            _uvicorn_config(self._app, self.host, self.requested_port, standalone=standalone)
        )
        return self._server

    def _mark_started(self, server: uvicorn.Server) -> SandboxAddress:
        assert self._app is not None
        self._address = _bound_address(server, self.host)
        _publish(self._app, self._address)
        logger.info(
            "sandbox listening on %s (app_id=%s, bot_id=%s)",
            self._address.http_url,
            self.config.app_id,
            self.config.bot_id,
        )
        return self._address

    # -- in-loop mode ---------------------------------------------------------------------

    async def serve(
        self,
        *,
        install_signal_handlers: bool = False,
        on_ready: Callable[[SandboxAddress], None] | None = None,
    ) -> None:
        """Serve in the current event loop until cancelled.

        Cancelling the task closes open sockets and stops uvicorn before the cancellation
        propagates. Signal handlers are left alone unless ``install_signal_handlers``.

        Raises:
            RuntimeError: The server could not start (for example, the port is taken).
        """
        started = self._started()
        # Opening the SQLite file and creating the schema is blocking work: not on the loop.
        server = await asyncio.to_thread(self._build, standalone=install_signal_handlers)
        task = asyncio.ensure_future(_serve_guarded(server))
        try:
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no hook
                await asyncio.sleep(0.01)
            if task.done():
                self._error = task.exception() or RuntimeError("the sandbox stopped at startup")
                started.set()
                await task
                return
            address = self._mark_started(server)
            started.set()
            if on_ready is not None:
                on_ready(address)
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                assert self._app is not None
                with contextlib.suppress(Exception):
                    await _close_live_work(self._app.state.sandbox)
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), timeout=5)
            raise
        finally:
            self._started_event = None

    def _started(self) -> asyncio.Event:
        if self._started_event is None:
            self._started_event = asyncio.Event()
        return self._started_event

    async def wait_started(self) -> SandboxAddress:
        """Wait until :meth:`serve` listens (call it after scheduling ``serve()``).

        Raises:
            RuntimeError: :meth:`serve` failed to start.
            TimeoutError: Not started within ``startup_timeout`` seconds.
        """
        if self._address is not None and self._error is None:
            return self._address
        event = self._started()
        await asyncio.wait_for(event.wait(), self.startup_timeout)
        if self._error is not None or self._address is None:
            raise RuntimeError("the sandbox failed to start") from self._error
        return self._address

    # -- thread mode ----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Start serving in a background thread; returns once the port accepts connections.

        Raises:
            RuntimeError: Already running, or the server failed to start in time.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the sandbox is already running")
        server = self._build()
        self._thread = threading.Thread(
            target=self._thread_main, args=(server,), name="sendbird-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive():
                self._thread = None
                raise RuntimeError("the sandbox failed to start") from self._error
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the sandbox did not start in time")
            time.sleep(0.005)
        self._mark_started(server)
        return self

    def _thread_main(self, server: uvicorn.Server) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_serve_guarded(server))
        except BaseException as exc:
            self._error = exc
            logger.error("sandbox server stopped with an error: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Close open WebSockets, stop uvicorn and wait for the thread (idempotent)."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        if thread.is_alive() and loop is not None and self._app is not None:
            future = asyncio.run_coroutine_threadsafe(
                _close_live_work(self._app.state.sandbox), loop
            )
            with contextlib.suppress(Exception):
                future.result(timeout)
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening (either mode)."""
        return self._server is not None and self._server.started and not self._server.should_exit

    @property
    def address(self) -> SandboxAddress:
        """Bound address (after start)."""
        if self._address is None:
            raise RuntimeError("the sandbox has not been started")
        return self._address

    @property
    def port(self) -> int:
        """Bound TCP port."""
        return self.address.port

    @property
    def http_url(self) -> str:
        """Base URL for the Platform API, the widget's ``apiHost`` and the control surface."""
        return self.address.http_url

    @property
    def ws_url(self) -> str:
        """Base URL for the widget's ``wsHost``."""
        return self.address.ws_url

    @property
    def app(self) -> Starlette:
        """The ASGI app of the current (or last) run."""
        if self._app is None:
            raise RuntimeError("the sandbox has not been started")
        return self._app
