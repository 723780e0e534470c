"""The HTTP API on a real server on 127.0.0.1, pointed at a real sandbox.

* `sandbox`: the local Sendbird sandbox (`tests/stack.py` `running_sandbox`), one per module;
  its control surface proves what was issued and revoked.
* `api`: a fresh backend per test, served by uvicorn in a thread on a free port. The
  backend is built the way `reflex.App.__call__` builds it, minus the frontend compile: a
  top-level Starlette with the app's `api_transformer` mounted (API, embed page routes, and a
  stand-in for Reflex's own routes: `/ping`), Reflex's own `App._add_cors` around it (any
  origin, with credentials: the default `cors_allowed_origins`), and `ApiCorsGuard`
  outermost, as `SampleApp.__call__` puts it. `Services` are the production wiring
  (`build_services`: the Platform API client, token service and issuance budget from the
  settings) with cheap password hashing and a fake clock for the accounts.

`use_services` is process-wide, so only one backend serves at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import argon2
import httpx
import pytest
import uvicorn
from reflex.app import App
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    RegistrationError,
    create_engine_for,
    upgrade_database,
)
from sample_app.config import Settings, load_settings
from sample_app.http_api import ApiCorsGuard, api_transformer
from sample_app.identity import sendbird_identity
from sample_app.services import (
    ACCOUNT_SESSION_TTL,
    REGISTRATION_LIMIT,
    Services,
    build_services,
    use_services,
)
from tests.clock import FakeClock
from tests.stack import SandboxHandle, running_sandbox

APP_ID = "api-app"
BOT_ID = "api-bot"
PASSWORD = "correct horse battery"
ALLOWED_ORIGIN = "https://shop.example.com"
# Small enough to reach in a test, and no reuse window: every refresh mints a token.
TEST_BUDGET = {
    "SENDBIRD_TOKEN_REUSE_SECONDS": "0",
    "SENDBIRD_TOKENS_PER_USER_PER_MINUTE": "3",
    "SENDBIRD_PLATFORM_POSTS_PER_SECOND": "50",
}


class _ThreadServer(uvicorn.Server):
    """uvicorn in a thread: signals belong to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, server_header=False
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, name="http-api-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _ping(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


def build_backend(services: Services, allowed_origins: frozenset[str]) -> ASGIApp:
    """The backend as `SampleApp.__call__` builds it, with a stand-in for Reflex's routes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with use_services(services):
            try:
                yield
            finally:
                await services.aclose()

    reflex_stand_in = Starlette(routes=[Route("/ping", _ping)])
    top = Starlette(lifespan=lifespan)
    top.mount("", api_transformer(reflex_stand_in))
    App._add_cors(top)  # Reflex's own: allow any origin, with credentials
    return ApiCorsGuard(top, allowed_origins)


def api_settings(sandbox: SandboxHandle, **extra: str) -> Settings:
    """Settings of a deployment on `sandbox` (as if it were Sendbird), with TEST_BUDGET."""
    environ = {
        **sandbox.deployment_environ(),
        **TEST_BUDGET,
        **extra,
    }
    return load_settings(environ=environ, env_file=None)


@dataclass
class Api:
    """A running backend, its collaborators and the sandbox behind it."""

    url: str
    services: Services
    clock: FakeClock
    sandbox: SandboxHandle
    _counter: int = 0

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client for the backend."""
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, username: str | None = None) -> str:
        """Register an account (a new one unless `username` exists) and sign it in."""
        if username is None:
            self._counter += 1
            username = f"user{self._counter}x{time.monotonic_ns() % 10**8}"
        accounts = self.services.accounts
        with contextlib.suppress(RegistrationError):  # it exists already
            accounts.register(username, PASSWORD, username.title())
        # Each sign-in from its own client key: the fuzz test signs in hundreds of times,
        # and the sign-in rate limit (tested in tests/accounts) is not what is tested here.
        self._counter += 1
        client_key = f"test-client-{self._counter}"
        return accounts.sign_in(username, PASSWORD, client_key).sign_in_token

    def user_id(self, sign_in_token: str) -> str:
        """The Sendbird user id of the account a (valid) sign-in token names."""
        account = self.services.accounts.resolve_sign_in(sign_in_token)
        assert account is not None
        return sendbird_identity(account, self.services.settings.user_id_prefix).user_id

    def tokens(self, sign_in_token: str | None = None) -> list[dict[str, object]]:
        """The sandbox's session tokens: of one account, or all of them."""
        user_id = None if sign_in_token is None else self.user_id(sign_in_token)
        return self.sandbox.tokens(user_id)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """The sandbox, one per module."""
    workdir = tmp_path_factory.mktemp("api-sandbox")
    with running_sandbox(workdir, app_id=APP_ID, bot_id=BOT_ID) as handle:
        yield handle


@contextlib.contextmanager
def running_api(
    sandbox: SandboxHandle,
    workdir: Path,
    *,
    allowed_origins: frozenset[str] = frozenset({ALLOWED_ORIGIN}),
    settings_extra: Mapping[str, str] | None = None,
) -> Iterator[Api]:
    """A backend with fresh collaborators on `sandbox`, served on 127.0.0.1."""
    settings = api_settings(sandbox, **dict(settings_extra or {}))
    db_url = f"sqlite:///{workdir / 'accounts.db'}"
    engine = create_engine_for(db_url)
    upgrade_database(engine)
    clock = FakeClock()
    services = build_services(settings, db_url)
    services.accounts = AccountService(
        engine,
        hasher=Argon2Hasher(argon2.profiles.CHEAPEST),
        clock=clock,
        session_ttl=ACCOUNT_SESSION_TTL,
        # Tests register hundreds of accounts a minute from one client (as tests/stack does).
        registration_limit=dataclasses.replace(REGISTRATION_LIMIT, per_client=10**6, overall=10**6),
    )
    try:
        with serving(build_backend(services, allowed_origins)) as url:
            yield Api(url, services, clock, sandbox)
    finally:
        engine.dispose()


@pytest.fixture
def api(sandbox: SandboxHandle, tmp_path: Path) -> Iterator[Api]:
    """A fresh backend for one test; the sandbox's faults are cleared afterwards."""
    with running_api(sandbox, tmp_path) as running:
        try:
            yield running
        finally:
            sandbox.control.clear_faults()


def closed_port_url() -> str:
    """A URL of 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
