"""Process-wide collaborators, created once per backend process and closed at shutdown.

Reflex state objects are per browser tab and are serialised between events, so nothing
that holds a connection pool or a secret lives in state. Event handlers reach these
through `get_services()` instead:

* `sendbird`: the Platform API client (one httpx pool; holds the API token).
* `tokens`: the session-token service (per-user cache, single-flight issuance and the
  issuance budget from the settings). With Redis configured (`REFLEX_REDIS_URL`, several
  workers) the cache, the single flight and the budget are shared by every worker through
  it (`sample_app/redis_shared.py`); without, they live in this process.
* `redis`: that Redis client, or None.
* `accounts`: the app's own accounts and sign-in sessions.
* `sign_ins`: the sign-ins this process resolved in the last few seconds
  (`sample_app/sign_in_cache.py`), so token requests skip the database; every sign-out
  clears them, in every worker through Redis when it is configured.
* `sandbox_control`: the sandbox's control surface (demo buttons), only in sandbox mode.
* `hashing_executor`: the small thread pool that password hashing (`sign_in`, `register`)
  runs on, so that a flood of argon2id work queues there and never holds up the default
  executor that token requests use.

`backend_lifespan` starts the embedded Sendbird sandbox when no credentials are
configured (unless `SANDBOX_EXTERNAL=1` says one runs on its own), migrates the accounts
database, and closes the HTTP pool on shutdown. The sandbox package is imported only in
sandbox mode: an app on real Sendbird never loads it.

Tests install their own collaborators with `use_services(...)`, so the Reflex handlers
can be exercised directly against an in-process sandbox or a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sample_app.accounts import (
    AccountService,
    RateLimit,
    RegistrationLimit,
    create_engine_for,
    upgrade_database,
)
from sample_app.config import Settings, describe, get_settings
from sample_app.issuance_budget import IssuancePolicy, LocalIssuanceBudget
from sample_app.sendbird_api import SendbirdClient
from sample_app.session_tokens import SessionTokenService
from sample_app.sign_in_cache import SignInCache, SignInGenerations

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from sample_app.issuance_budget import IssuanceBudget
    from sample_app.sandbox.control_client import AsyncSandboxControlClient
    from sample_app.session_tokens import TokenStore

logger = logging.getLogger(__name__)

# Accounts sign-in sessions last this long (a demo site; production apps pick their own).
ACCOUNT_SESSION_TTL = timedelta(hours=12)
# Per (username, client IP or device token) pair: 5 free failures per 15 minutes, then
# waits of 1 s, 2 s, 4 s ... up to 15 minutes. Per IP: 30 failures on any usernames per 15
# minutes. Per username: 20 failures per 15 minutes shut out only clients that are
# neither known (signed in to it within 30 days) nor presenting its device token, so
# nobody can lock an owner out of a browser or address they have signed in from.
SIGN_IN_RATE_LIMIT = RateLimit(
    window=timedelta(minutes=15),
    free_failures=5,
    backoff_base=timedelta(seconds=1),
    backoff_cap=timedelta(minutes=15),
    max_client_failures=30,
    max_username_failures=20,
    known_client_period=timedelta(days=30),
)
# Registration is anonymous and costs two argon2id operations (64 MiB each): 5 per client
# per 10 minutes, 30 per minute overall, refused before any hashing.
REGISTRATION_LIMIT = RegistrationLimit(
    per_client=5,
    client_window=timedelta(minutes=10),
    overall=30,
    overall_window=timedelta(minutes=1),
)
# Threads for password hashing. Each argon2id operation takes 64 MiB, so two at a time
# bound memory; the rest wait in this pool's queue, not the default executor's.
HASHING_WORKERS = 2


def new_hashing_executor() -> ThreadPoolExecutor:
    """The bounded pool that `sign_in` and `register` hash passwords on."""
    return ThreadPoolExecutor(max_workers=HASHING_WORKERS, thread_name_prefix="password-hashing")


@dataclass
class Services:
    """The collaborators one backend process shares across all tabs."""

    settings: Settings
    sendbird: SendbirdClient
    tokens: SessionTokenService
    accounts: AccountService
    sandbox_control: AsyncSandboxControlClient | None
    hashing_executor: ThreadPoolExecutor = field(default_factory=new_hashing_executor)
    redis: Redis | None = None
    # With `redis` (several workers) it needs the shared generations `build_services` gives it.
    sign_ins: SignInCache = field(default_factory=SignInCache)

    def __post_init__(self) -> None:
        """Refuse several workers (Redis) with a sign-in cache that only this one clears."""
        if self.redis is not None and self.sign_ins.ttl and not self.sign_ins.shares_sign_outs:
            raise ValueError(
                "With Redis (several workers) the sign-in cache needs the shared generations "
                "(SignInCache(generations=RedisSignInGenerations(...)), as build_services "
                "does): otherwise a sign-out in one worker is not seen by the others' caches"
            )

    async def aclose(self) -> None:
        """Release network resources and the hashing threads."""
        await self.sendbird.aclose()
        if self.sandbox_control is not None:
            await self.sandbox_control.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        # Queued hashing is for requests that are gone by now; running ones finish alone.
        self.hashing_executor.shutdown(wait=False, cancel_futures=True)


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
    sendbird = SendbirdClient(
        settings.api_host, settings.api_token.reveal(), calls_in_flight=settings.calls_in_flight
    )
    # The issuance budget keeps one user looping token requests from spending the
    # application's Platform API rate limit that every other user's tokens need.
    policy = IssuancePolicy(
        reuse_window=settings.token_reuse_window,
        tokens_per_user_per_minute=settings.tokens_per_user_per_minute,
        platform_posts_per_second=settings.platform_posts_per_second,
    )
    redis: Redis | None = None
    store: TokenStore | None = None
    budget: IssuanceBudget
    generations: SignInGenerations | None = None
    if settings.redis_url is not None:
        # Several workers: one cache, one issuance in flight and one budget for all of them.
        from sample_app.redis_shared import (
            RedisIssuanceBudget,
            RedisSignInGenerations,
            RedisTokenStore,
            connect_redis,
            key_prefix,
        )

        redis = connect_redis(settings.redis_url.reveal())
        prefix = key_prefix(settings.app_id)
        store = RedisTokenStore(redis, prefix)
        generations = RedisSignInGenerations(redis, prefix)
        budget = RedisIssuanceBudget(redis, prefix, policy)
    else:
        budget = LocalIssuanceBudget(policy)
    tokens = SessionTokenService(
        sendbird,
        ttl=settings.token_ttl,
        refresh_margin=settings.refresh_margin,
        budget=budget,
        store=store,
        deadline=settings.token_request_deadline,
    )
    accounts = AccountService(
        create_engine_for(db_url),
        session_ttl=ACCOUNT_SESSION_TTL,
        rate_limit=SIGN_IN_RATE_LIMIT,
        registration_limit=REGISTRATION_LIMIT,
    )
    control = None
    if settings.is_sandbox:
        from sample_app.sandbox.control_client import AsyncSandboxControlClient

        control = AsyncSandboxControlClient(settings.api_host, settings.api_token.reveal())
    sign_ins = SignInCache(ttl=settings.sign_in_cache_ttl, generations=generations)
    return Services(settings, sendbird, tokens, accounts, control, redis=redis, sign_ins=sign_ins)


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


def protect_state_store(directory: Path | None = None) -> Path:
    """Make Reflex's on-disk state store readable by this process's user only.

    Reflex keeps every tab's state vars in `.states/` (one pickle per tab, kept for an hour
    after its last use by default), and those vars include the browser's sign-in token and
    the latest Sendbird session token. The directory gets mode 0700 and its files 0600, so
    other users of the machine cannot read them. (With Redis, state lives in Redis instead.)

    Args:
        directory: The state store; Reflex's own (`REFLEX_STATES_WORKDIR`) by default.

    Returns:
        The directory that was protected.
    """
    if directory is None:
        from reflex.utils.prerequisites import get_states_dir

        directory = get_states_dir()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o600)
    return directory


@contextlib.asynccontextmanager
async def backend_lifespan() -> AsyncIterator[None]:
    """Run for as long as the Reflex backend: sandbox up, database migrated, pools closed."""
    global _services
    settings = get_settings()
    sandbox_task: asyncio.Task[None] | None = None
    if settings.is_sandbox and settings.sandbox is not None and not settings.sandbox.external:
        from sample_app.sandbox import SandboxConfig, SandboxServer

        config = SandboxConfig.from_settings(settings.sandbox)
        settings.sandbox.db_path.parent.mkdir(parents=True, exist_ok=True)
        server = SandboxServer(config, host=settings.sandbox.host, port=settings.sandbox.port)
        sandbox_task = asyncio.create_task(server.serve(), name="sendbird-sandbox")
        await server.wait_started()
    await asyncio.to_thread(upgrade_database, database_url())
    await asyncio.to_thread(protect_state_store)
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
