"""Process-wide collaborators, created once per backend process and closed at shutdown.

Reflex state objects are per browser tab and are serialised between events, so nothing
that holds a connection pool or a secret lives in state. Event handlers reach these
through `get_services()` instead:

* `sendbird`: the Platform API client (one httpx pool; holds the API token).
* `tokens`: the session-token service (per-user cache and single-flight issuance).
* `accounts`: the app's own accounts and sign-in sessions.
* `sandbox_control`: the sandbox's control surface (demo buttons), only in sandbox mode.

`backend_lifespan` starts the embedded Sendbird sandbox when no credentials are
configured, migrates the accounts database, and closes the HTTP pool on shutdown. The
sandbox package is imported only in sandbox mode: an app on real Sendbird never loads it.

Tests install their own collaborators with `use_services(...)`, so the Reflex handlers
can be exercised directly against an in-process sandbox or a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sample_app.accounts import AccountService, RateLimit, create_engine_for, upgrade_database
from sample_app.config import Settings, describe, get_settings
from sample_app.sendbird_api import SendbirdClient
from sample_app.session_tokens import SessionTokenService

if TYPE_CHECKING:
    from sample_app.sandbox.control_client import AsyncSandboxControlClient

logger = logging.getLogger(__name__)

# Accounts sign-in sessions last this long (a demo site; production apps pick their own).
ACCOUNT_SESSION_TTL = timedelta(hours=12)
# Five wrong passwords lock a username for 15 minutes. One client (IP) gets more, because
# people behind one proxy or NAT share it: a low per-IP limit would let one guesser lock
# everyone else out.
SIGN_IN_RATE_LIMIT = RateLimit(max_failures=5, window=timedelta(minutes=15), max_client_failures=30)


@dataclass
class Services:
    """The collaborators one backend process shares across all tabs."""

    settings: Settings
    sendbird: SendbirdClient
    tokens: SessionTokenService
    accounts: AccountService
    sandbox_control: AsyncSandboxControlClient | None

    async def aclose(self) -> None:
        """Release network resources."""
        await self.sendbird.aclose()
        if self.sandbox_control is not None:
            await self.sandbox_control.aclose()


_services: Services | None = None


def database_url() -> str:
    """The accounts database URL (rxconfig's `db_url`, overridable by REFLEX_DB_URL)."""
    from reflex_base.config import get_config

    url = get_config().db_url
    if not url:
        raise RuntimeError("No database configured: set db_url in rxconfig.py or REFLEX_DB_URL")
    return url


def build_services(settings: Settings, db_url: str) -> Services:
    """Create the collaborators for one process (tests build their own)."""
    sendbird = SendbirdClient(settings.api_host, settings.api_token.reveal())
    tokens = SessionTokenService(
        sendbird, ttl=settings.token_ttl, refresh_margin=settings.refresh_margin
    )
    accounts = AccountService(
        create_engine_for(db_url), session_ttl=ACCOUNT_SESSION_TTL, rate_limit=SIGN_IN_RATE_LIMIT
    )
    control = None
    if settings.is_sandbox:
        from sample_app.sandbox.control_client import AsyncSandboxControlClient

        control = AsyncSandboxControlClient(settings.api_host, settings.api_token.reveal())
    return Services(settings, sendbird, tokens, accounts, control)


def get_services() -> Services:
    """The process's collaborators, created on first use."""
    global _services
    if _services is None:
        _services = build_services(get_settings(), database_url())
    return _services


@contextlib.contextmanager
def use_services(services: Services) -> Iterator[Services]:
    """Make `get_services()` return `services` inside the block (tests, tools).

    The previous collaborators come back afterwards; closing `services` stays with the
    caller, who created them.
    """
    global _services
    previous = _services
    _services = services
    try:
        yield services
    finally:
        _services = previous


@contextlib.asynccontextmanager
async def backend_lifespan() -> AsyncIterator[None]:
    """Run for as long as the Reflex backend: sandbox up, database migrated, pools closed."""
    global _services
    settings = get_settings()
    sandbox_task: asyncio.Task[None] | None = None
    if settings.is_sandbox and settings.sandbox is not None:
        from sample_app.sandbox import SandboxConfig, SandboxServer

        config = SandboxConfig.from_settings(settings.sandbox)
        settings.sandbox.db_path.parent.mkdir(parents=True, exist_ok=True)
        server = SandboxServer(config, host=settings.sandbox.host, port=settings.sandbox.port)
        sandbox_task = asyncio.create_task(server.serve(), name="sendbird-sandbox")
        await server.wait_started()
    await asyncio.to_thread(upgrade_database, database_url())
    logger.info("Chat traffic goes to the %s", describe(settings))
    try:
        yield
    finally:
        if _services is not None:
            await _services.aclose()
            _services = None
        if sandbox_task is not None:
            sandbox_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sandbox_task
