"""`/readyz` and request ids on a real server on 127.0.0.1, against the sandbox (conftest.py).

* Readiness: ready when the accounts database, Redis (when configured) and the sandbox all
  answer; a second poll within the cache window spends no Sendbird call (the sandbox's own
  call counters prove it); 503 naming the dependency when the sandbox is stopped or rejects
  the API token, the database or Redis is on a closed port, or Redis refuses the password.
  No token or password is in the answer or the logs.
* Request ids: the proxy's `X-Request-ID` is sent back and is in the JSON log lines of the
  request; a bad one is replaced; every JSON line names the worker. The backend here is the
  one `SampleApp.__call__` builds: `RequestIdMiddleware` around conftest's `build_backend`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from sample_app import readiness, request_context
from sample_app.accounts import upgrade_database
from sample_app.config import PROJECT_ROOT
from sample_app.logging_config import APP_LOGGER, configure_logging, request_id_var
from sample_app.request_context import EventRequestIds, RequestIdMiddleware, sane_request_id
from sample_app.services import Services, build_services
from tests.http_api.conftest import (
    ALLOWED_ORIGIN,
    APP_ID,
    BOT_ID,
    PASSWORD,
    Api,
    api_settings,
    build_backend,
    running_api,
    serving,
)
from tests.stack import SandboxHandle, running_sandbox

BOT_CALL = "GET /v3/bots/{bot_id}"
WORKER = "w7"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")

JsonLogs = Callable[[], list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """This worker is `w7`; no Redis unless a test configures one."""
    monkeypatch.setenv("SAMPLE_APP_WORKER_ID", WORKER)
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[JsonLogs]:
    """The app's logs as JSON lines (DEBUG and up); call it for the records so far.

    The server thread writes to the `sys.stderr` of the moment (`_StderrHandler`), which is
    capsys's. The `sample_app` logger is put back as it was afterwards.
    """
    logger = logging.getLogger(APP_LOGGER)
    saved = (logger.level, list(logger.handlers))
    configure_logging("DEBUG", json_lines=True)
    seen: list[str] = []

    def read() -> list[dict[str, Any]]:
        seen.extend(line for line in capsys.readouterr().err.splitlines() if line)
        return [json.loads(line) for line in seen]

    try:
        yield read
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]


def bot_calls(sandbox: SandboxHandle) -> int:
    """Platform API calls the sandbox answered for `GET /v3/bots/{bot_id}` so far."""
    return int(sandbox.stats()["platform_api"].get(BOT_CALL, 0))


def ready(url: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", headers=headers, timeout=10)


def assert_not_ready(response: httpx.Response, failing: str) -> dict[str, Any]:
    """A 503 naming exactly `failing`, with a reason; the failing check's entry."""
    assert response.status_code == 503, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failing"] == [failing]
    assert body["worker"] == WORKER
    check = body["checks"][failing]
    assert check["ok"] is False
    assert check["reason"]
    assert all(body["checks"][name]["ok"] for name in body["checks"] if name != failing)
    return dict(check)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def backend_with_request_ids(
    sandbox: SandboxHandle, workdir: Path
) -> Iterator[tuple[str, Services]]:
    """conftest's backend inside `RequestIdMiddleware`, as `SampleApp.__call__` wraps it."""
    services = build_services(api_settings(sandbox), f"sqlite:///{workdir / 'accounts.db'}")
    upgrade_database(services.accounts._engine)
    try:
        backend = build_backend(services, frozenset({ALLOWED_ORIGIN}))
        with serving(RequestIdMiddleware(backend)) as url:
            yield url, services
    finally:
        services.accounts._engine.dispose()


# ------------------------------------------------------------------------------- ready


def test_ready_when_everything_is_up_and_a_second_poll_costs_no_sendbird_call(
    api: Api, sandbox: SandboxHandle
) -> None:
    before = bot_calls(sandbox)
    first = ready(api.url)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert body["status"] == "ready"
    assert body["worker"] == WORKER
    assert "failing" not in body
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "sendbird"}
    assert checks["database"]["ok"] is True and checks["database"]["ms"] >= 0
    assert checks["redis"] == {"ok": True, "ms": 0.0, "skipped": True, "reason": "not configured"}
    assert checks["sendbird"]["ok"] is True and "cached" not in checks["sendbird"]
    assert bot_calls(sandbox) == before + 1

    second = ready(api.url)
    assert second.status_code == 200
    assert second.json()["checks"]["sendbird"]["cached"] is True
    assert bot_calls(sandbox) == before + 1  # the cached success: no call spent


def test_concurrent_polls_share_one_sendbird_call(api: Api, sandbox: SandboxHandle) -> None:
    before = bot_calls(sandbox)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: ready(api.url), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert bot_calls(sandbox) == before + 1


def test_head_answers_like_get_without_a_body(api: Api) -> None:
    response = httpx.head(f"{api.url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) > 0  # what GET would send
    assert response.content == b""


# ------------------------------------------------------------------------------- sendbird


def test_a_rejected_api_token_is_not_ready_naming_sendbird(
    sandbox: SandboxHandle, tmp_path: Path, json_logs: JsonLogs
) -> None:
    bad_token = "wrong-api-token-0123456789abcdef"
    with running_api(sandbox, tmp_path, settings_extra={"SENDBIRD_API_TOKEN": bad_token}) as api:
        first = ready(api.url)
        check = assert_not_ready(first, "sendbird")
        assert check["code"] == 400401
        assert check["reason"] == "Sendbird rejected the API token"
        # A failure is not cached: the next poll asks again (and fails again).
        before = bot_calls(sandbox)
        assert_not_ready(ready(api.url), "sendbird")
        assert bot_calls(sandbox) == before + 1

    records = json_logs()
    [warning] = [r for r in records if r["message"].startswith("not ready")]  # logged once
    assert warning["level"] == "WARNING"
    assert "sendbird: Sendbird rejected the API token [SendbirdAuthError" in warning["message"]
    assert all(r["worker_id"] == WORKER for r in records)
    text = first.text + json.dumps(records)
    assert bad_token not in text
    assert sandbox.api_token not in text


def test_a_stopped_sandbox_is_not_ready_once_the_cached_success_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "SENDBIRD_SUCCESS_TTL", 0.5)
    with (
        running_sandbox(tmp_path, app_id=APP_ID, bot_id=BOT_ID) as own_sandbox,
        running_api(own_sandbox, tmp_path) as api,
    ):
        assert ready(api.url).status_code == 200
        own_sandbox.server.stop()
        # Within the window the success is reused: polling spends nothing, not even a try.
        assert ready(api.url).json()["checks"]["sendbird"]["cached"] is True
        time.sleep(0.6)
        check = assert_not_ready(ready(api.url), "sendbird")
        assert check["reason"] == "Sendbird cannot be reached"
        assert "code" not in check


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung peer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_hung_sendbird_is_not_ready_within_the_timeout(
    sandbox: SandboxHandle, tmp_path: Path, black_hole: int
) -> None:
    extra = {"SENDBIRD_API_HOST": f"http://127.0.0.1:{black_hole}"}
    with running_api(sandbox, tmp_path, settings_extra=extra) as api:
        started = time.monotonic()
        response = ready(api.url)
        elapsed = time.monotonic() - started
    check = assert_not_ready(response, "sendbird")
    assert check["reason"] == "no answer within 2 s"
    assert readiness.SENDBIRD_TIMEOUT <= elapsed < readiness.SENDBIRD_TIMEOUT + 1.5


# ------------------------------------------------------------------------------- database


def test_an_unreachable_database_is_not_ready_naming_database(
    sandbox: SandboxHandle, json_logs: JsonLogs
) -> None:
    password = "db-pass-4c8e1f"
    db_url = f"postgresql+psycopg://app:{password}@127.0.0.1:{free_port()}/accounts"
    services = build_services(api_settings(sandbox), db_url)
    try:
        with serving(build_backend(services, frozenset())) as url:
            response = ready(url)
    finally:
        services.accounts._engine.dispose()
    check = assert_not_ready(response, "database")
    assert check["reason"] == "cannot connect or query (OperationalError)"
    assert response.json()["checks"]["sendbird"]["ok"] is True

    records = json_logs()
    [warning] = [r for r in records if r["message"].startswith("not ready")]
    assert "database: cannot connect or query" in warning["message"]
    assert "Connection refused" in warning["message"]  # the driver's detail, for operators
    text = response.text + json.dumps(records)
    assert password not in text
    assert "127.0.0.1" not in response.text  # no host in the public answer


# ------------------------------------------------------------------------------- redis


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://:redis-pass-77f1@127.0.0.1:{port}/0", "cannot connect (ConnectionError)"),
        ("http://:redis-pass-77f1@127.0.0.1:{port}/0", "the URL is not redis://"),
    ],
)
def test_redis_on_a_closed_port_or_a_bad_url_is_not_ready_naming_redis(
    api: Api, monkeypatch: pytest.MonkeyPatch, json_logs: JsonLogs, url: str, reason: str
) -> None:
    monkeypatch.setenv("REFLEX_REDIS_URL", url.format(port=free_port()))
    response = ready(api.url)
    check = assert_not_ready(response, "redis")
    assert check["reason"].startswith(reason)
    text = response.text + json.dumps(json_logs())
    assert "redis-pass-77f1" not in text


def test_a_hung_redis_is_not_ready_within_the_timeout(
    api: Api, monkeypatch: pytest.MonkeyPatch, black_hole: int
) -> None:
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://127.0.0.1:{black_hole}/0")
    started = time.monotonic()
    response = ready(api.url)
    elapsed = time.monotonic() - started
    check = assert_not_ready(response, "redis")
    assert check["reason"].startswith("no answer")
    assert elapsed < readiness.REDIS_TIMEOUT + 1.5


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A real redis-server on a free port with a password: (port, password)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    port, password = free_port(), "redis-secret-5a0b"
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
            *("--requirepass", password),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_real_redis_is_ready_and_a_wrong_password_is_not(
    api: Api, monkeypatch: pytest.MonkeyPatch, redis_server: tuple[int, str], json_logs: JsonLogs
) -> None:
    port, password = redis_server
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://:{password}@127.0.0.1:{port}/0")
    response = ready(api.url)
    assert response.status_code == 200, response.text
    redis_check = response.json()["checks"]["redis"]
    assert redis_check["ok"] is True and "skipped" not in redis_check

    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://:not-{password}@127.0.0.1:{port}/0")
    wrong = ready(api.url)
    check = assert_not_ready(wrong, "redis")
    assert check["reason"].startswith("authentication failed")
    text = response.text + wrong.text + json.dumps(json_logs())
    assert password not in text


# ------------------------------------------------------------------------------- request ids


def test_the_proxys_request_id_is_sent_back_and_in_every_log_line_of_the_request(
    sandbox: SandboxHandle, tmp_path: Path, json_logs: JsonLogs
) -> None:
    request_id = "nginx-4f1c.2_9A"
    with backend_with_request_ids(sandbox, tmp_path) as (url, services):
        services.accounts.register("opsuser", PASSWORD, "Ops")
        sign_in = services.accounts.sign_in("opsuser", PASSWORD, "client-1").sign_in_token
        response = httpx.post(
            f"{url}/api/sendbird/session-token",
            headers={"Authorization": f"Bearer {sign_in}", "X-Request-ID": request_id},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    session_token = response.json()["token"]

    records = json_logs()
    ours = [r for r in records if r.get("request_id") == request_id]
    # The Sendbird calls the request made (user, then token), logged by the client at DEBUG.
    assert any("POST /v3/users/{user_id}/token" in r["message"] for r in ours), records
    assert all(r["worker_id"] == WORKER for r in records)
    text = json.dumps(records)
    for secret in (session_token, sign_in, sandbox.api_token):
        assert secret not in text


@pytest.mark.parametrize(
    "given",
    [
        "x" * 129,  # too long
        "has space",
        'quote"and;semicolon',
        b"caf\xe9",  # not ASCII
        "",
    ],
)
def test_a_bad_request_id_is_replaced_by_a_new_one(
    sandbox: SandboxHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: JsonLogs,
    given: str | bytes,
) -> None:
    # A closed Redis port makes the first poll log a warning, inside the request.
    monkeypatch.setenv("REFLEX_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    with backend_with_request_ids(sandbox, tmp_path) as (url, _):
        response = httpx.get(f"{url}/readyz", headers={"X-Request-ID": given}, timeout=10)
    assert response.status_code == 503
    replaced = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(replaced), replaced
    assert response.headers.get_list("x-request-id") == [replaced]
    [warning] = [r for r in json_logs() if r["message"].startswith("not ready")]
    assert warning["request_id"] == replaced


def test_every_request_without_an_id_gets_its_own(sandbox: SandboxHandle, tmp_path: Path) -> None:
    with backend_with_request_ids(sandbox, tmp_path) as (url, _):
        ids = [httpx.get(f"{url}/ping", timeout=10).headers["x-request-id"] for _ in range(3)]
        preflight = httpx.options(
            f"{url}/api/sendbird/session-token",
            headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
    assert all(GENERATED_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == 3
    assert GENERATED_ID.fullmatch(preflight.headers["x-request-id"])  # outermost: preflights too


def test_the_app_puts_request_ids_outermost_and_first_among_event_middleware() -> None:
    """The real app module's wiring (in a subprocess, as test_http_api.py checks the guard).

    Importing the app module registers its pages with Reflex for the rest of the process,
    which the browser tier's build in the same pytest process must not inherit.
    """
    script = textwrap.dedent(
        """
        import reflex as rx
        from socketio import ASGIApp
        from sample_app.event_socket import EventSocketShortcut
        from sample_app.http_api import ApiCorsGuard
        from sample_app.request_context import EventRequestIds, RequestIdMiddleware
        from sample_app.sample_app import app

        assert isinstance(app._middlewares[0], EventRequestIds), app._middlewares
        assert sum(isinstance(m, EventRequestIds) for m in app._middlewares) == 1
        rx.App.__call__ = lambda self: "reflex's top-level app"
        built = app()
        assert isinstance(built, RequestIdMiddleware), built
        assert isinstance(built.app, EventSocketShortcut), built.app
        assert isinstance(built.app.app, ApiCorsGuard), built.app.app
        assert built.app.app.app == "reflex's top-level app"
        # the event socket's route: Reflex's Socket.IO app, in its header middleware
        assert built.app.path == "/_event", built.app.path
        assert isinstance(built.app.socket_app.app, ASGIApp), built.app.socket_app
        assert built.app.socket_app.app.engineio_server is app.sio
        print("request ids outermost")
        """
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "request ids outermost" in result.stdout


@pytest.mark.parametrize(
    ("value", "sane"),
    [
        ("a", True),
        ("A-z_0.9", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("line\nbreak", False),
        ("trailing\n", False),
        ("cr\r", False),
        ("tab\t", False),
        ("ünï", False),
        (None, False),
    ],
)
def test_sane_request_ids(value: str | None, sane: bool) -> None:
    assert sane_request_id(value) == (value if sane else None)


def test_a_websocket_connection_has_the_id_of_its_upgrade_request() -> None:
    seen: list[str | None] = []

    async def echo(websocket: WebSocket) -> None:
        seen.append(request_id_var.get())
        await websocket.accept()
        await websocket.send_text(str(request_id_var.get()))
        await websocket.close()

    app = RequestIdMiddleware(Starlette(routes=[WebSocketRoute("/_event", echo)]))
    with serving(app) as url:
        ws_url = url.replace("http://", "ws://") + "/_event"
        with websockets.sync.client.connect(
            ws_url, additional_headers={"X-Request-ID": "ws-conn-1"}
        ) as connection:
            assert connection.response is not None
            assert connection.response.headers["X-Request-ID"] == "ws-conn-1"
            assert connection.recv(timeout=5) == "ws-conn-1"
        with websockets.sync.client.connect(ws_url) as connection:
            generated = connection.recv(timeout=5)
    assert seen == ["ws-conn-1", generated]
    assert GENERATED_ID.fullmatch(str(generated))


async def test_each_reflex_event_gets_its_own_id_in_its_own_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class FakeContext:
        txid = "0a1b2c3d4e5f"

    class FakeEventContext:
        current: FakeContext | None = None

        @classmethod
        def get(cls) -> FakeContext:
            if cls.current is None:
                raise LookupError("no event context")
            return cls.current

    monkeypatch.setattr(request_context, "EventContext", FakeEventContext)
    middleware = EventRequestIds()

    async def handle_event() -> str | None:
        # As Reflex runs an event: in a task of its own, preprocess first, then the handler.
        assert await middleware.preprocess(None, None, None) is None  # type: ignore[arg-type]
        return request_id_var.get()

    FakeEventContext.current = FakeContext()
    with_txid = await asyncio.create_task(handle_event())
    FakeEventContext.current = None
    without = await asyncio.create_task(handle_event())

    assert with_txid == "ev-0a1b2c3d4e5f"
    assert without is not None and re.fullmatch(r"ev-[0-9a-f]{32}", without)
    assert request_id_var.get() is None  # nothing leaked out of the events' tasks
