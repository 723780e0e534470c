"""What several backend workers share through Redis: token cache, budget, sign-in generations.

With one worker, :class:`~sample_app.session_tokens.LocalTokenStore` and
:class:`~sample_app.issuance_budget.LocalIssuanceBudget` keep these in the process. Several
workers (a demo site behind a proxy, sharing Reflex's Redis state manager) must agree on them,
or each worker serves its own tokens, a revocation handled by one worker leaves the others
handing out the revoked token, and every worker spends the whole Sendbird rate limit on its
own. The same Redis that holds Reflex's state holds these, under one key prefix per Sendbird
application:

* ``{prefix}:token:{user}``: the cached token (JSON; kept until it stops being fresh, then
  Redis drops it). It is a bearer secret, like the state Reflex keeps in the same Redis:
  protect Redis accordingly (no public port, a password, TLS off the machine).
* ``{prefix}:gen:{user}``: the user's generation; a revocation bumps it, and a token is
  cached only if the generation its issuance started with is still current (one script, so
  check and write are atomic).
* ``{prefix}:issuing:{user}``: held by the one worker issuing for the user right now; the
  others wait for it to go, then read the cache (a burst spread over workers costs one call).
* ``{prefix}:budget:user:{user}`` and ``{prefix}:budget:slots``: the issuance budget, as
  :class:`~sample_app.issuance_budget.LocalIssuanceBudget` keeps it, decided by scripts that
  read Redis's own clock, so the workers' clocks never disagree.
* ``{prefix}:sign-in-gen:{account id}`` and ``{prefix}:sign-in-epoch``: the sign-in
  generations (:class:`RedisSignInGenerations`): a sign-out bumps its account's generation
  and the epoch in one transaction, and each worker's
  :class:`~sample_app.sign_in_cache.SignInCache` stops using what it kept of that account.

Redis being unreachable is an error the user sees ("try again in a moment"), never a silent
fallback to per-process limits, which would let each worker spend the whole budget. For
the sign-in generations it means the database answers every sign-in check until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sample_app.issuance_budget import (
    APP_WINDOW_SECONDS,
    USER_WINDOW_SECONDS,
    IssuanceBudgetExceededError,
    IssuancePolicy,
)
from sample_app.sendbird_api import SendbirdConnectionError
from sample_app.session_tokens import CachedToken, IssuedSessionToken
from sample_app.sign_in_cache import SignInGenerationsUnavailableError

__all__ = [
    "RedisIssuanceBudget",
    "RedisSignInGenerations",
    "RedisTokenStore",
    "SharedStateUnavailableError",
    "connect_redis",
]

#: A generation outlives any issuance by far; refreshed at every bump.
GENERATION_TTL_MS = 24 * 3600 * 1000
#: How often a worker looks whether another worker's issuance has finished (seconds).
ISSUING_POLL_START = 0.005
ISSUING_POLL_MAX = 0.05

# Store the token only if the generation is unchanged: KEYS gen, token; ARGV gen, value, ms.
_PUT_IF_CURRENT = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
# Drop the cached token only if it is still the given one: KEYS token; ARGV token.
_DISCARD_IF_SAME = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['t'] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
# Release a lock only if this worker still holds it: KEYS lock; ARGV owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Redis's clock in milliseconds, shared by the budget scripts.
_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
# Per-user sliding window: KEYS stamps; ARGV limit, window ms, member. {1, 0} admitted,
# {0, ms until the oldest stamp leaves the window} refused.
_ADMIT_USER = (
    _NOW_MS
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""
)
# App-wide slots in arrival order: KEYS slots; ARGV per window, window ms, max wait ms.
# A slot starts no earlier than the previous one, and no earlier than one window after the
# slot that many places before it. {1, ms to wait} admitted, {0, ms over the max} refused.
_ADMIT_SLOT = (
    _NOW_MS
    + """
local per_window, window, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now
local count = redis.call('LLEN', KEYS[1])
if count > 0 then
  start = math.max(start, tonumber(redis.call('LINDEX', KEYS[1], -1)))
end
if count >= per_window then
  start = math.max(start, tonumber(redis.call('LINDEX', KEYS[1], -per_window)) + window)
end
local wait = start - now
if wait > max_wait then return {0, wait - max_wait} end
redis.call('RPUSH', KEYS[1], start)
redis.call('LTRIM', KEYS[1], -per_window, -1)
redis.call('PEXPIRE', KEYS[1], window + max_wait + 1000)
return {1, wait}
"""
)


class SharedStateUnavailableError(SendbirdConnectionError):
    """Redis, which the workers share the token cache and budget through, did not answer.

    A connection error like Sendbird's own, so every caller shows it the same way; nothing
    was issued.
    """

    def __init__(self, cause: RedisError) -> None:
        """Create the error; the cause's text (never a secret) stays for the operator."""
        super().__init__(
            "The app's shared token cache (Redis) is unavailable, so no session token was "
            f"issued; try again in a moment ({type(cause).__name__})."
        )


def connect_redis(url: str) -> Redis:
    """A Redis client for the shared cache, with short timeouts (a user is waiting).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (Reflex's ``REFLEX_REDIS_URL``).
    """
    client: Redis = Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    return client


def key_prefix(app_id: str) -> str:
    """The key prefix of one Sendbird application's shared entries."""
    return f"sendbird-sample:{app_id}"


@contextlib.contextmanager
def _unavailable_on_redis_error() -> Iterator[None]:
    """Turn Redis's errors into the one the app shows (``SharedStateUnavailableError``)."""
    try:
        yield
    except RedisError as error:
        raise SharedStateUnavailableError(error) from error


class RedisTokenStore:
    """A :class:`~sample_app.session_tokens.TokenStore` in Redis, shared by every worker."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create the store.

        Args:
            redis: The client (``connect_redis``); closing it stays with the caller.
            prefix: Key prefix (``key_prefix(app_id)``).
            clock: Aware UTC time, to turn ``keep_until`` into a Redis expiry.
            sleep: Waits between looks at another worker's issuance; tests may inject one.
        """
        self._redis = redis
        self._prefix = prefix
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._put_if_current = redis.register_script(_PUT_IF_CURRENT)
        self._discard_if_same = redis.register_script(_DISCARD_IF_SAME)
        self._release = redis.register_script(_RELEASE)

    def _key(self, kind: str, user_id: str) -> str:
        return f"{self._prefix}:{kind}:{user_id}"

    async def get(self, user_id: str) -> CachedToken | None:
        """See :meth:`TokenStore.get`."""
        with _unavailable_on_redis_error():
            raw = await self._redis.get(self._key("token", user_id))
        return None if raw is None else _decode(user_id, raw)

    async def generation(self, user_id: str) -> int:
        """See :meth:`TokenStore.generation`."""
        with _unavailable_on_redis_error():
            raw = await self._redis.get(self._key("gen", user_id))
        return int(raw) if raw is not None else 0

    async def put(
        self, user_id: str, cached: CachedToken, *, generation: int, keep_until: datetime
    ) -> bool:
        """See :meth:`TokenStore.put`."""
        keep_ms = math.floor((keep_until - self._clock()).total_seconds() * 1000)
        if keep_ms <= 0:
            return False
        keys = [self._key("gen", user_id), self._key("token", user_id)]
        with _unavailable_on_redis_error():
            stored = await self._put_if_current(
                keys=keys, args=[str(generation), _encode(cached), keep_ms]
            )
        return bool(stored)

    async def discard(self, user_id: str, token: str) -> None:
        """See :meth:`TokenStore.discard`."""
        with _unavailable_on_redis_error():
            await self._discard_if_same(keys=[self._key("token", user_id)], args=[token])

    async def forget(self, user_id: str) -> None:
        """See :meth:`TokenStore.forget`: one transaction, seen by every worker at once."""
        generation_key = self._key("gen", user_id)
        with _unavailable_on_redis_error():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key("token", user_id))
                pipe.incr(generation_key)
                pipe.pexpire(generation_key, GENERATION_TTL_MS)
                await pipe.execute()

    @contextlib.asynccontextmanager
    async def issuing(self, user_id: str, max_wait: float) -> AsyncIterator[None]:
        """See :meth:`TokenStore.issuing`.

        The lock expires after ``max_wait`` on its own, so a worker that dies while issuing
        holds the others up for at most that long.

        Raises:
            TimeoutError: Another worker held it for ``max_wait`` seconds.
        """
        key = self._key("issuing", user_id)
        owner = secrets.token_hex(8)
        expiry_ms = max(math.ceil(max_wait * 1000), 1)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + max_wait
        pause = ISSUING_POLL_START
        with _unavailable_on_redis_error():
            while not await self._redis.set(key, owner, nx=True, px=expiry_ms):
                if loop.time() >= give_up:
                    raise TimeoutError(f"another worker is still issuing for {user_id}")
                await self._sleep(pause)
                pause = min(pause * 2, ISSUING_POLL_MAX)
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):  # it expires on its own anyway
                await self._release(keys=[key], args=[owner])


class RedisIssuanceBudget:
    """An :class:`~sample_app.issuance_budget.IssuanceBudget` for all workers, in Redis.

    The same rules as :class:`~sample_app.issuance_budget.LocalIssuanceBudget`, decided by
    one script per request on Redis's clock: the per-user window, and app-wide slots handed
    out in arrival order across workers, so the whole app stays under
    ``platform_posts_per_second`` however many workers there are.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        policy: IssuancePolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create the budget.

        Args:
            redis: The client; closing it stays with the caller.
            prefix: Key prefix (``key_prefix(app_id)``).
            policy: The limits; the defaults when omitted.
            sleep: Waits for an admitted slot; tests may inject one.
        """
        self.policy = policy if policy is not None else IssuancePolicy()
        self._redis = redis
        self._prefix = prefix
        self._sleep = sleep
        self._admit_user = redis.register_script(_ADMIT_USER)
        self._admit_slot = redis.register_script(_ADMIT_SLOT)

    @property
    def reuse_window(self) -> timedelta:
        """The policy's reuse window."""
        return self.policy.reuse_window

    async def admit_token(self, user_id: str) -> None:
        """See :meth:`IssuanceBudget.admit_token`."""
        key = f"{self._prefix}:budget:user:{user_id}"
        stamp = secrets.token_hex(8)
        with _unavailable_on_redis_error():
            admitted, wait_ms = await self._run(
                self._admit_user,
                key,
                self.policy.tokens_per_user_per_minute,
                int(USER_WINDOW_SECONDS * 1000),
                stamp,
            )
        if not admitted:
            raise IssuanceBudgetExceededError("user", wait_ms / 1000)
        try:
            await self.admit_post()
        except BaseException:
            # No POST is sent: the user gets the issuance back (also when cancelled).
            with contextlib.suppress(RedisError):
                await self._redis.zrem(key, stamp)
            raise

    async def admit_post(self) -> None:
        """See :meth:`IssuanceBudget.admit_post`."""
        with _unavailable_on_redis_error():
            admitted, wait_ms = await self._run(
                self._admit_slot,
                f"{self._prefix}:budget:slots",
                self.policy.platform_posts_per_second,
                int(APP_WINDOW_SECONDS * 1000),
                int(self.policy.max_wait * 1000),
            )
        if not admitted:
            raise IssuanceBudgetExceededError("app", wait_ms / 1000)
        if wait_ms > 0:
            await self._sleep(wait_ms / 1000)

    @staticmethod
    async def _run(script: Any, key: str, *args: object) -> tuple[bool, int]:
        reply = cast("list[int]", await script(keys=[key], args=list(args)))
        return bool(reply[0]), int(reply[1])


# KEYS[1] the account's sign-in generation, KEYS[2] the epoch; ARGV[1] the generation's TTL.
# The generation becomes the epoch's new value, so it never takes a value it had before.
_BUMP_GENERATION = """
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch, 'PX', ARGV[1])
return epoch
"""


class RedisSignInGenerations:
    """:class:`~sample_app.sign_in_cache.SignInGenerations` in Redis, shared by every worker.

    A sign-out sets the account's generation to the new value of the epoch, which never
    expires: generations only ever grow, so a generation key that expired (after a quiet
    day) or was evicted reads 0 and can never match a kept copy's value again. Only losing
    the epoch itself (Redis's data lost) could repeat a value; run Redis with persistence
    (the demo site's append-only file) and without eviction of these keys.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        """Create the counters.

        Args:
            redis: The client (``connect_redis``); closing it stays with the caller.
            prefix: Key prefix (``key_prefix(app_id)``).
        """
        self._redis = redis
        self._epoch_key = f"{prefix}:sign-in-epoch"
        self._prefix = prefix
        self._bump = redis.register_script(_BUMP_GENERATION)

    def _generation_key(self, account_id: int) -> str:
        return f"{self._prefix}:sign-in-gen:{account_id}"

    async def epoch(self) -> int:
        """See :meth:`SignInGenerations.epoch`."""
        with _generations_unavailable_on_redis_error():
            raw = await self._redis.get(self._epoch_key)
        return _count(raw)

    async def generation(self, account_id: int) -> int:
        """See :meth:`SignInGenerations.generation`."""
        with _generations_unavailable_on_redis_error():
            raw = await self._redis.get(self._generation_key(account_id))
        return _count(raw)

    async def generation_and_epoch(self, account_id: int) -> tuple[int, int]:
        """See :meth:`SignInGenerations.generation_and_epoch`: one MGET."""
        with _generations_unavailable_on_redis_error():
            generation, epoch = await self._redis.mget(
                self._generation_key(account_id), self._epoch_key
            )
        return _count(generation), _count(epoch)

    async def bump(self, account_id: int) -> None:
        """See :meth:`SignInGenerations.bump`: one transaction, seen by every worker at once."""
        with _generations_unavailable_on_redis_error():
            await self._bump(
                keys=[self._generation_key(account_id), self._epoch_key],
                args=[GENERATION_TTL_MS],
            )


@contextlib.contextmanager
def _generations_unavailable_on_redis_error() -> Iterator[None]:
    """Turn Redis's errors into the one the sign-in cache falls back to the database on."""
    try:
        yield
    except RedisError as error:
        raise SignInGenerationsUnavailableError(type(error).__name__) from error


def _count(raw: bytes | str | None) -> int:
    return 0 if raw is None else int(raw)


def _encode(cached: CachedToken) -> str:
    refreshed = cached.refreshed_at
    return json.dumps(
        {
            "t": cached.issued.token,
            "e": cached.issued.expires_at.isoformat(),
            "n": cached.profile[0],
            "p": cached.profile[1],
            "r": refreshed.isoformat() if refreshed is not None else None,
        }
    )


def _decode(user_id: str, raw: bytes | str) -> CachedToken:
    entry = json.loads(raw)
    refreshed = entry.get("r")
    return CachedToken(
        IssuedSessionToken(user_id, entry["t"], datetime.fromisoformat(entry["e"])),
        (entry["n"], entry["p"]),
        datetime.fromisoformat(refreshed) if refreshed else None,
    )
