"""The sign-in cache: what it answers without the database, and every way it must forget.

Each test has a real accounts database (SQLite file, cheap argon2, one fake clock for the
accounts service and so for the cache) and counts the sign-in lookups at the engine. The
workers of the multi-worker tests are what a backend process has: its own `SignInCache`,
Redis client and `AccountService`, on one real `redis-server` (the `redis_server` fixture)
and one database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import argon2
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy.engine import Engine

from deploy.redis import RedisServer
from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    RegistrationError,
    ResolvedSignIn,
    create_engine_for,
    upgrade_database,
)
from sample_app.config import load_settings
from sample_app.redis_shared import RedisSignInGenerations, connect_redis, key_prefix
from sample_app.services import build_services, use_services
from sample_app.sign_in_cache import DEFAULT_TTL, SignInCache
from sample_app.signed_in import end_sign_in, resolve_signed_in_user
from tests.clock import FakeClock
from tests.sign_in_lookups import SignInLookups

PASSWORD = "correct horse battery"
SIGN_IN_TTL = timedelta(hours=12)
TTL = timedelta(seconds=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'accounts.db'}")
    upgrade_database(engine)
    yield engine
    engine.dispose()


def account_service(
    engine: Engine, clock: FakeClock, session_ttl: timedelta = SIGN_IN_TTL
) -> AccountService:
    return AccountService(
        engine,
        hasher=Argon2Hasher(argon2.profiles.CHEAPEST),
        clock=clock,
        session_ttl=session_ttl,
    )


@pytest.fixture
def accounts(engine: Engine, clock: FakeClock) -> AccountService:
    return account_service(engine, clock)


@pytest.fixture
def lookups(engine: Engine) -> Iterator[SignInLookups]:
    counter = SignInLookups(engine)
    yield counter
    counter.stop()


def sign_in(accounts: AccountService, username: str = "alice") -> str:
    """A fresh sign-in token of `username` (registered on first use)."""
    with contextlib.suppress(RegistrationError):  # registered already
        accounts.register(username, PASSWORD, username.title())
    return accounts.sign_in(username, PASSWORD, f"client-{time.monotonic_ns()}").sign_in_token


class PausedResolve:
    """Makes `accounts.resolve_sign_in_session` stop after the database answered, until told.

    What a check looks like that read the database just before a sign-out landed and has
    not got back to the event loop yet.
    """

    def __init__(self, accounts: AccountService) -> None:
        self._real: Callable[[str], ResolvedSignIn | None] = accounts.resolve_sign_in_session
        self.answered = threading.Event()
        self.go_on = threading.Event()
        accounts.resolve_sign_in_session = self._paused  # type: ignore[method-assign]

    def _paused(self, sign_in_token: str) -> ResolvedSignIn | None:
        resolved = self._real(sign_in_token)
        self.answered.set()
        self.go_on.wait(timeout=10)
        return resolved

    async def wait_answered(self) -> None:
        assert await asyncio.to_thread(self.answered.wait, 10)


# ---- served from the cache ---------------------------------------------------------------


async def test_a_resolved_sign_in_is_served_without_the_database(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)

    first = await cache.resolve(accounts, token)
    again = [await cache.resolve(accounts, token) for _ in range(5)]

    assert first is not None and first.username == "alice"
    assert again == [first] * 5
    assert lookups.count == 1


async def test_a_cached_check_needs_no_thread(accounts: AccountService) -> None:
    """With every thread of the default executor busy, a kept sign-in still answers."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    assert await cache.resolve(accounts, token) is not None
    release = threading.Event()
    busy = loop.run_in_executor(None, release.wait, 10)
    try:
        account = await asyncio.wait_for(cache.resolve(accounts, token), timeout=1)
    finally:
        release.set()
        await busy
    assert account is not None


async def test_a_cached_sign_in_is_asked_again_after_the_ttl(
    accounts: AccountService, clock: FakeClock, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    await cache.resolve(accounts, token)

    clock.advance(seconds=9.9)
    assert await cache.resolve(accounts, token) is not None
    assert lookups.count == 1
    clock.advance(seconds=0.1)
    assert await cache.resolve(accounts, token) is not None
    assert lookups.count == 2


async def test_a_sign_in_is_never_kept_past_its_expiry(
    engine: Engine, clock: FakeClock, lookups: SignInLookups
) -> None:
    accounts = account_service(engine, clock, session_ttl=timedelta(seconds=4))
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    assert await cache.resolve(accounts, token) is not None

    clock.advance(seconds=3.9)
    assert await cache.resolve(accounts, token) is not None
    assert lookups.count == 1
    clock.advance(seconds=0.1)
    assert await cache.resolve(accounts, token) is None


async def test_a_revocation_behind_the_caches_back_is_seen_within_the_ttl(
    accounts: AccountService, clock: FakeClock
) -> None:
    """An operator's SQL (or any sign-out not through the cache) waits for the TTL: the bound."""
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    await cache.resolve(accounts, token)
    accounts.sign_out(token)

    assert await cache.resolve(accounts, token) is not None
    clock.advance(seconds=TTL.total_seconds())
    assert await cache.resolve(accounts, token) is None


def test_the_default_ttl_is_a_few_seconds() -> None:
    assert timedelta(seconds=1) <= DEFAULT_TTL <= timedelta(seconds=30)
    assert SignInCache().ttl == DEFAULT_TTL


# ---- never kept --------------------------------------------------------------------------


async def test_unknown_and_revoked_tokens_always_ask_the_database(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    """A flood of made-up tokens cannot fill the cache: only sign-ins that resolved are kept."""
    cache = SignInCache(ttl=TTL)
    revoked = sign_in(accounts)
    accounts.sign_out(revoked)
    made_up = [f"made-up-token-{n:030d}" for n in range(20)]
    before = lookups.count

    for token in [*made_up, revoked, revoked]:
        assert await cache.resolve(accounts, token) is None

    assert lookups.count - before == 22
    assert len(cache) == 0


async def test_malformed_tokens_are_refused_without_the_database(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=TTL)

    for token in ["", "short", "x" * 129, "x" * 1_000_000]:
        assert await cache.resolve(accounts, token) is None

    assert lookups.count == 0


async def test_the_cache_is_bounded_and_drops_the_least_recently_used(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=TTL, max_entries=2)
    first, second, third = (sign_in(accounts) for _ in range(3))
    for token in (first, second):
        await cache.resolve(accounts, token)
    await cache.resolve(accounts, first)  # first is now the most recently used
    await cache.resolve(accounts, third)  # second goes
    assert (len(cache), lookups.count) == (2, 3)

    await cache.resolve(accounts, first)
    assert lookups.count == 3
    await cache.resolve(accounts, second)
    assert lookups.count == 4


async def test_a_ttl_of_zero_turns_the_cache_off(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=timedelta(0))
    token = sign_in(accounts)

    for _ in range(3):
        assert await cache.resolve(accounts, token) is not None

    assert lookups.count == 3
    assert len(cache) == 0


@pytest.mark.parametrize(("ttl", "max_entries"), [(timedelta(seconds=-1), 10), (TTL, 0)])
def test_impossible_settings_are_refused(ttl: timedelta, max_entries: int) -> None:
    with pytest.raises(ValueError, match="must"):
        SignInCache(ttl=ttl, max_entries=max_entries)


# ---- sign-out, one process ---------------------------------------------------------------


async def test_sign_out_is_seen_by_the_very_next_check(accounts: AccountService) -> None:
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    other_browser = sign_in(accounts)
    for held in (token, other_browser):
        await cache.resolve(accounts, held)

    signed_out = await cache.sign_out(accounts, token)

    assert signed_out is not None and signed_out.username == "alice"
    assert await cache.resolve(accounts, token) is None
    assert await cache.resolve(accounts, other_browser) is not None


async def test_sign_out_everywhere_forgets_every_sign_in_of_the_account(
    accounts: AccountService, lookups: SignInLookups
) -> None:
    cache = SignInCache(ttl=TTL)
    alices = [sign_in(accounts, "alice") for _ in range(3)]
    bob = sign_in(accounts, "bob")
    for token in [*alices, bob]:
        await cache.resolve(accounts, token)
    alice = await cache.resolve(accounts, alices[0])
    assert alice is not None

    assert await cache.sign_out_everywhere(accounts, alice.id) == 3

    assert [await cache.resolve(accounts, token) for token in alices] == [None] * 3
    before = lookups.count
    assert await cache.resolve(accounts, bob) is not None
    assert lookups.count == before  # bob's sign-in is still kept


async def test_a_sign_out_whose_caller_gives_up_still_ends_the_kept_sign_in(
    accounts: AccountService,
) -> None:
    """The caller's event or request is cancelled while the database revokes the sign-in:
    the revocation finishes on its thread regardless, and the cache must not keep it."""
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    assert await cache.resolve(accounts, token) is not None

    signing_out = asyncio.create_task(cache.sign_out(accounts, token))
    await asyncio.sleep(0)  # the database call has started on its thread
    signing_out.cancel()
    with pytest.raises(asyncio.CancelledError):
        await signing_out

    give_up = time.monotonic() + 5
    while await cache.resolve(accounts, token) is not None:
        assert time.monotonic() < give_up, "the cancelled sign-out left the sign-in kept"
        await asyncio.sleep(0.01)
    assert accounts.resolve_sign_in(token) is None


async def test_a_check_racing_a_sign_out_keeps_nothing(accounts: AccountService) -> None:
    """The database said "valid" just before the sign-out; that answer must not be kept."""
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    paused = PausedResolve(accounts)
    check = asyncio.create_task(cache.resolve(accounts, token))
    await paused.wait_answered()

    await cache.sign_out(accounts, token)
    paused.go_on.set()

    assert await check is not None  # true when the database said it
    assert await cache.resolve(accounts, token) is None


async def test_a_check_racing_a_sign_out_everywhere_keeps_nothing(
    accounts: AccountService,
) -> None:
    cache = SignInCache(ttl=TTL)
    token = sign_in(accounts)
    alice = accounts.resolve_sign_in(token)
    assert alice is not None
    paused = PausedResolve(accounts)
    check = asyncio.create_task(cache.resolve(accounts, token))
    await paused.wait_answered()

    await cache.sign_out_everywhere(accounts, alice.id)
    paused.go_on.set()

    assert await check is not None
    assert await cache.resolve(accounts, token) is None


# ---- several workers, one Redis ----------------------------------------------------------


@dataclass
class Worker:
    """What one backend process holds: its accounts service, Redis client and cache."""

    accounts: AccountService
    redis: Redis
    cache: SignInCache

    async def resolve(self, token: str) -> str | None:
        account = await self.cache.resolve(self.accounts, token)
        return None if account is None else account.username


@pytest.fixture
def prefix(redis_key_prefix: str) -> str:
    """This test's own Redis key prefix (deleted afterwards)."""
    return redis_key_prefix


@pytest_asyncio.fixture
async def workers(
    engine: Engine, clock: FakeClock, redis_server: RedisServer, prefix: str
) -> AsyncIterator[list[Worker]]:
    """Two workers on one Redis and one accounts database."""
    built = []
    for _ in range(2):
        redis = connect_redis(redis_server.url)
        generations = RedisSignInGenerations(redis, prefix)
        built.append(
            Worker(account_service(engine, clock), redis, SignInCache(generations=generations))
        )
    yield built
    for worker in built:
        await worker.redis.aclose()


async def test_a_kept_sign_in_costs_the_other_worker_no_database_call(
    workers: list[Worker], lookups: SignInLookups
) -> None:
    first, second = workers
    token = sign_in(first.accounts)
    for worker in (first, second, first, second, second):
        assert await worker.resolve(token) == "alice"
    assert lookups.count == 2  # one per worker


async def test_a_sign_out_in_one_worker_is_seen_by_the_others_next_check(
    workers: list[Worker],
) -> None:
    first, second = workers
    token = sign_in(first.accounts)
    other_browser = sign_in(first.accounts)
    for worker in workers:
        for held in (token, other_browser):
            assert await worker.resolve(held) == "alice"

    await first.cache.sign_out(first.accounts, token)

    assert await second.resolve(token) is None
    assert await second.resolve(other_browser) == "alice"


async def test_an_expired_generation_never_makes_an_old_copy_current_again(
    workers: list[Worker], prefix: str
) -> None:
    """A generation key that expired (or was evicted) and a later sign-out must not bring a
    kept copy's generation value back: the next check of the signed-out token is refused."""
    first, second = workers
    signed_out_earlier = sign_in(first.accounts)
    held = sign_in(first.accounts)
    await first.cache.sign_out(first.accounts, signed_out_earlier)  # generation moves on
    assert await second.resolve(held) == "alice"  # kept with that generation
    alice = await first.cache.resolve(first.accounts, held)
    assert alice is not None
    await first.redis.delete(f"{prefix}:sign-in-gen:{alice.id}")  # its TTL ran out

    await first.cache.sign_out(first.accounts, held)

    assert await second.resolve(held) is None


async def test_a_sign_out_everywhere_in_one_worker_reaches_every_worker(
    workers: list[Worker], lookups: SignInLookups
) -> None:
    first, second = workers
    alices = [sign_in(first.accounts, "alice") for _ in range(2)]
    bob = sign_in(first.accounts, "bob")
    for token in [*alices, bob]:
        assert await second.resolve(token) is not None
    alice = await first.cache.resolve(first.accounts, alices[0])
    assert alice is not None

    await first.cache.sign_out_everywhere(first.accounts, alice.id)

    assert [await second.resolve(token) for token in alices] == [None, None]
    before = lookups.count
    assert await second.resolve(bob) == "bob"
    assert lookups.count == before  # another account's sign-out does not touch bob's


async def test_a_check_racing_a_sign_out_in_another_worker_keeps_nothing(
    workers: list[Worker],
) -> None:
    """Worker B's database read comes just before worker A's sign-out; B must not keep it."""
    first, second = workers
    token = sign_in(first.accounts)
    paused = PausedResolve(second.accounts)
    check = asyncio.create_task(second.resolve(token))
    await paused.wait_answered()

    await first.cache.sign_out(first.accounts, token)
    paused.go_on.set()

    assert await check == "alice"
    assert await second.resolve(token) is None


async def test_without_redis_the_database_decides_and_nothing_is_kept(
    workers: list[Worker], redis_server: RedisServer, lookups: SignInLookups
) -> None:
    """Redis down: a sign-out in one worker cannot be announced, yet the others see it."""
    first, second = workers
    token = sign_in(first.accounts)
    kept = sign_in(first.accounts)
    for worker in workers:
        for held in (token, kept):
            assert await worker.resolve(held) == "alice"
    redis_server.stop()
    try:
        await first.cache.sign_out(first.accounts, token)  # logs a warning, signs out anyway

        assert await second.resolve(token) is None
        before = lookups.count
        assert [await second.resolve(kept) for _ in range(3)] == ["alice"] * 3
        assert lookups.count == before + 3  # every check asked the database
    finally:
        redis_server.start()
    before = lookups.count
    assert [await second.resolve(kept) for _ in range(3)] == ["alice"] * 3
    assert lookups.count == before + 1  # kept again once Redis answers


async def test_build_services_shares_sign_outs_between_workers_through_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The app's own wiring: two workers from `build_services`, one Redis, one database."""
    app_id = f"sign-ins-{time.monotonic_ns()}"
    settings = load_settings(
        environ={
            "SENDBIRD_APP_ID": app_id,
            "SENDBIRD_API_TOKEN": "0123456789abcdef0123456789abcdef01234567",
            "SENDBIRD_BOT_ID": "my-bot",
            "REFLEX_REDIS_URL": redis_server.url,
        },
        env_file=None,
    )
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade_database(db_url)
    first, second = (build_services(settings, db_url) for _ in range(2))
    try:
        token = sign_in(first.accounts)
        for worker in (first, second):
            with use_services(worker):
                assert await resolve_signed_in_user(token) is not None

        with use_services(first):
            assert await end_sign_in(token) is not None
        with use_services(second):
            assert await resolve_signed_in_user(token) is None
    finally:
        for worker in (first, second):
            assert worker.redis is not None
            keys = [key async for key in worker.redis.scan_iter(match=f"{key_prefix(app_id)}:*")]
            if keys:
                await worker.redis.delete(*keys)
            await worker.aclose()
