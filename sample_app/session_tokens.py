"""Issue, reuse and revoke Sendbird session tokens for signed-in users.

The chat widget needs a session token for the signed-in user. Issuing one costs a
Platform API call (5 POSTs per second on a free trial), and a page view, a reconnect
or the widget's ``onSessionTokenRequired`` callback can all ask for one, often at the
same moment. :class:`SessionTokenService` keeps that cheap and well-behaved:

* it spends as few Platform API calls as it can: a page view within a cached token's
  life costs none; a returning account's first view in this process costs one (issue the
  token; the user is created only when Sendbird answers 400201); an account registered
  in this process costs two (create the user, then issue; no lookup first). The nickname
  and profile URL are updated (``PUT``) only when they differ from what this process last
  synced;
* it reuses a token until it is ``refresh_margin`` away from expiry, so the widget
  never receives a token that is about to die;
* concurrent requests for the same user share one in-flight issuance;
* with an :class:`~sample_app.issuance_budget.IssuanceBudget` (the app always passes one),
  a ``force_new`` request seconds after another one minted a token reuses that token, each
  user gets a bounded number of new tokens per minute, and every Platform API POST waits
  for an app-wide slot, so one user looping the widget's token request cannot spend the
  application's Sendbird rate limit that everyone else's tokens need.

Security: the Sendbird user id always comes from a
:class:`~sample_app.identity.SendbirdIdentity` that the server derives from the signed-in
account. This service never accepts a user id from
the browser; if it did, anyone could obtain a token for anyone.

It also issues tokens only for Sendbird users this app created. Users are created with
``CREATED_BY_METADATA`` in their Sendbird metadata. When creating a user answers 400202 (a
user with that id already exists), the existing user is read and, if it lacks the mark
(created by another app or deployment on the same Sendbird application, by hand, or by this
app before users were marked), :class:`ForeignSendbirdUserError` is raised instead of
adopting it: its channels and history belong to whoever created it.

What an issue-first success trusts: for an account this process has not synced yet, the
token is requested before anything else, and when Sendbird issues it no lookup is made, so
the mark is not checked on that path. That is safe because the user id is
``{prefix}{random key}``: the key is generated once per account, is never reused (not even
when the accounts database is recreated) and is not derived from anything another party
knows, so a user under that id exists only because this app created it for this account.
The mark check remains the defence wherever an id could collide, which is exactly when a
creation finds the user already there. The nickname is not read back on that path either:
the widget passes the account's nickname and the Sendbird SDK corrects a stale one itself
when it connects (``updateCurrentUserInfo``).

Where the cache lives: a :class:`TokenStore`. :class:`LocalTokenStore` keeps it in this
process (one worker). With several workers sharing Reflex's Redis,
:class:`~sample_app.redis_shared.RedisTokenStore` keeps it in Redis, so every worker hands out
the same token, one issuance is in flight per user across all workers (a burst spread over
workers costs one Sendbird call), and a revocation handled by one worker is seen by every
other at once (no worker keeps serving a revoked token). Correctness never depends on the
cache holding a token: a miss only costs an API call.

Every request ends within ``deadline`` (queueing for the budget or for another worker's
issuance, Sendbird's answers, the client's retries): Reflex's state lock is derived from it,
so no event handler outlives its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import Protocol

from sample_app.identity import SendbirdIdentity
from sample_app.issuance_budget import IssuanceBudget, IssuanceBudgetExceededError
from sample_app.sendbird_api import (
    SendbirdConflictError,
    SendbirdError,
    SendbirdNotFoundError,
    SendbirdTimeoutError,
    SendbirdUser,
    SessionToken,
)
from sample_app.sendbird_api.models import datetime_to_unix_ms

__all__ = [
    "CREATED_BY_KEY",
    "CREATED_BY_METADATA",
    "CREATED_BY_VALUE",
    "CachedToken",
    "ForeignSendbirdUserError",
    "IssuedSessionToken",
    "LocalTokenStore",
    "SendbirdTokenIssuer",
    "SessionTokenService",
    "TokenRequestDeadlineError",
    "TokenServiceStats",
    "TokenStore",
    "utc_now",
]

DEFAULT_TTL = timedelta(minutes=30)
DEFAULT_DEADLINE = timedelta(seconds=15)
#: How many freshly registered user ids (see ``note_new_user``) a process remembers.
MAX_NOTED_NEW_USERS = 10_000
DEFAULT_REFRESH_MARGIN = timedelta(minutes=2)

#: The metadata entry every Sendbird user this app creates carries, and that a user must
#: carry before the app issues a token for it.
CREATED_BY_KEY = "created_by"
CREATED_BY_VALUE = "sendbird-reflex-sample"
CREATED_BY_METADATA: Mapping[str, str] = MappingProxyType({CREATED_BY_KEY: CREATED_BY_VALUE})


class ForeignSendbirdUserError(SendbirdError):
    """The Sendbird user exists but this app did not create it, so no token is issued.

    Raised instead of adopting the user: whoever created it owns its channels and chat
    history, and a token would hand them to the signed-in account.

    Attributes:
        user_id: The Sendbird user id that was refused.
    """

    def __init__(self, user_id: str) -> None:
        """Create the error for ``user_id``."""
        self.user_id = user_id
        super().__init__(
            f"The Sendbird user {user_id!r} already exists but was not created by this app, "
            "so no session token is issued for it. Use another SENDBIRD_USER_ID_PREFIX, or "
            "delete that user in the Sendbird dashboard if it is not needed."
        )


class TokenRequestDeadlineError(SendbirdTimeoutError):
    """A token request or a revocation did not finish within its deadline.

    The deadline covers everything: queueing for the budget or for another worker's
    issuance, Sendbird's answers and the client's retries. A
    :class:`~sample_app.sendbird_api.SendbirdTimeoutError`, so callers show it like any
    Sendbird timeout. An issuance itself may still finish and fill the cache for the next
    request.
    """

    def __init__(self, deadline: timedelta) -> None:
        """Create the error for a request that ran out of ``deadline``."""
        self.deadline = deadline
        super().__init__(
            f"Sendbird did not answer within {deadline.total_seconds():g} s (slow or "
            "unreachable, or many requests queued); try again in a moment."
        )


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


class SendbirdTokenIssuer(Protocol):
    """What the service needs from a Sendbird client.

    ``sample_app.sendbird_api.SendbirdClient`` satisfies it; tests may pass a small
    in-process fake instead.
    """

    @property
    def call_counts(self) -> Counter[str]:
        """HTTP calls made so far, keyed by ``"METHOD /path/{template}"``."""
        ...

    async def get_user(self, user_id: str) -> SendbirdUser | None:
        """Return the user, or None when Sendbird answers 400201."""
        ...

    async def create_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SendbirdUser:
        """Create the user with ``metadata``; 400202 raises ``SendbirdConflictError``."""
        ...

    async def update_user(
        self, user_id: str, *, nickname: str | None = None, profile_url: str | None = None
    ) -> SendbirdUser:
        """Change the user's nickname and/or profile URL."""
        ...

    async def issue_session_token(self, user_id: str, expires_at: datetime) -> SessionToken:
        """Issue a token valid until ``expires_at``."""
        ...

    async def revoke_session_tokens(self, user_id: str) -> None:
        """Revoke all of the user's session tokens."""
        ...


@dataclass(frozen=True)
class IssuedSessionToken:
    """A session token handed to the widget.

    Attributes:
        user_id: The Sendbird user the token belongs to.
        token: The secret itself; never shown in ``repr``.
        expires_at: When Sendbird stops accepting it (aware, UTC).
    """

    user_id: str
    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"IssuedSessionToken(user_id={self.user_id!r}, token='[REDACTED]', "
            f"expires_at={self.expires_at.isoformat()!r})"
        )

    __str__ = __repr__

    @property
    def expires_at_ms(self) -> int:
        """Expiry as Unix milliseconds, the unit the browser side works in."""
        return datetime_to_unix_ms(self.expires_at)

    def seconds_left(self, now: datetime) -> float:
        """Seconds until expiry as seen at ``now`` (0 once expired)."""
        return max((self.expires_at - now).total_seconds(), 0.0)


@dataclass(frozen=True)
class CachedToken:
    """What the cache keeps per user: the token and what it was minted for.

    Attributes:
        issued: The token.
        profile: The nickname and profile URL synced when it was minted; a page view with
            another profile goes to the slow path, which updates Sendbird first.
        refreshed_at: When it was minted for a ``force_new`` request (the widget's token was
            rejected), else None: only such a token is reused by another ``force_new``
            request inside the budget's reuse window.
    """

    issued: IssuedSessionToken
    profile: tuple[str, str]
    refreshed_at: datetime | None = None


class TokenStore(Protocol):
    """Where the token cache lives: this process, or Redis for all workers.

    Each user has a *generation*, bumped by :meth:`forget` (revocation, sign-out). An
    issuance reads it before it starts and :meth:`put` stores its token only if it is
    unchanged, so a token issued while a revocation happened never refills the cache.
    """

    async def get(self, user_id: str) -> CachedToken | None:
        """The cached token of ``user_id``, or None."""
        ...

    async def generation(self, user_id: str) -> int:
        """The user's current generation."""
        ...

    async def put(
        self, user_id: str, cached: CachedToken, *, generation: int, keep_until: datetime
    ) -> bool:
        """Cache ``cached`` until ``keep_until`` if the generation is still ``generation``.

        Returns:
            Whether it was stored.
        """
        ...

    async def discard(self, user_id: str, token: str) -> None:
        """Drop the cached token if it is still ``token`` (the widget reported it rejected)."""
        ...

    async def forget(self, user_id: str) -> None:
        """Drop the cached token and bump the generation (on every worker at once)."""
        ...

    def issuing(self, user_id: str, max_wait: float) -> AbstractAsyncContextManager[None]:
        """Hold the right to issue (or revoke) for ``user_id``, waiting while another holds it.

        Within one process the service already shares one issuance per user; this extends
        that to every worker, and keeps a revocation and an issuance for the same user from
        overlapping. Waits at most ``max_wait`` seconds, then raises TimeoutError.
        """
        ...


class LocalTokenStore:
    """A :class:`TokenStore` in this process's memory (exact for one worker)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        """Create an empty store.

        Args:
            clock: Returns the current aware UTC time, to drop expired entries on read.
        """
        self._clock = clock or utc_now
        self._tokens: dict[str, tuple[CachedToken, datetime]] = {}
        self._generations: Counter[str] = Counter()
        # Per-user locks, each with the number of callers holding or awaiting it, so a
        # lock is dropped as soon as nobody needs it (no growth with the number of users).
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def get(self, user_id: str) -> CachedToken | None:
        """See :meth:`TokenStore.get`."""
        entry = self._tokens.get(user_id)
        if entry is None:
            return None
        cached, keep_until = entry
        if self._clock() >= keep_until:
            del self._tokens[user_id]
            return None
        return cached

    async def generation(self, user_id: str) -> int:
        """See :meth:`TokenStore.generation`."""
        return self._generations[user_id]

    async def put(
        self, user_id: str, cached: CachedToken, *, generation: int, keep_until: datetime
    ) -> bool:
        """See :meth:`TokenStore.put`."""
        if self._generations[user_id] != generation:
            return False
        self._tokens[user_id] = (cached, keep_until)
        return True

    async def discard(self, user_id: str, token: str) -> None:
        """See :meth:`TokenStore.discard`."""
        entry = self._tokens.get(user_id)
        if entry is not None and entry[0].issued.token == token:
            del self._tokens[user_id]

    async def forget(self, user_id: str) -> None:
        """See :meth:`TokenStore.forget`."""
        self._tokens.pop(user_id, None)
        self._generations[user_id] += 1

    @contextlib.asynccontextmanager
    async def issuing(self, user_id: str, max_wait: float) -> AsyncIterator[None]:
        """See :meth:`TokenStore.issuing`: one holder per user within this process."""
        lock, users = self._locks.get(user_id, (asyncio.Lock(), 0))
        self._locks[user_id] = (lock, users + 1)
        try:
            async with asyncio.timeout(max_wait):
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[user_id]
            if users == 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)


@dataclass(frozen=True)
class TokenServiceStats:
    """Counters for dashboards, tests and the benchmark.

    Attributes:
        issued: Tokens obtained from Sendbird.
        reused: Calls answered from the cache.
        shared: Calls that joined an issuance already in flight for the same user.
        reused_young: ``force_new`` calls answered with a token that an earlier
            ``force_new`` call minted within the budget's reuse window (counted apart
            from ``reused``).
        refused: Issuances the budget refused (per user or app-wide); every caller that
            shared one refused issuance is counted once.
        revoked: Successful ``revoke`` calls.
        sendbird_calls: HTTP requests the client has sent in total (all endpoints).
        calls_by_endpoint: The client's per-endpoint counts.
    """

    issued: int
    reused: int
    shared: int
    reused_young: int
    refused: int
    revoked: int
    sendbird_calls: int
    calls_by_endpoint: dict[str, int]


class SessionTokenService:
    """Hands out Sendbird session tokens for signed-in users (see the module docstring).

    One instance per process, next to the one ``SendbirdClient``. All methods must be
    called from the same event loop.
    """

    def __init__(
        self,
        client: SendbirdTokenIssuer,
        *,
        ttl: timedelta = DEFAULT_TTL,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], datetime] = utc_now,
        budget: IssuanceBudget | None = None,
        store: TokenStore | None = None,
        deadline: timedelta = DEFAULT_DEADLINE,
    ) -> None:
        """Create the service.

        Args:
            client: The Sendbird client (or a fake implementing the protocol).
            ttl: Lifetime requested for new tokens: 30 minutes instead of Sendbird's
                7-day default, because a token sits in the browser.
            refresh_margin: A cached token is replaced once it has less than this
                left, so the widget always gets time to use it.
            clock: Returns the current aware UTC time; tests inject a fake clock.
            budget: Limits on issuance (reuse window, per-user and app-wide limits);
                ``build_services`` always passes one. None issues without limits, which
                only suits tests and tools that are not exposed to users.
            store: Where the cache lives; a :class:`LocalTokenStore` on ``clock`` when
                omitted. ``build_services`` passes a Redis store when Redis is configured.
            deadline: Longest one ``token_for`` call waits, from its start to its answer.

        Raises:
            ValueError: ``ttl`` is not positive, ``refresh_margin`` is not in
                ``[0, ttl)`` (every token would be stale as soon as it was issued), or
                ``deadline`` is not positive.
        """
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if not timedelta(0) <= refresh_margin < ttl:
            raise ValueError("refresh_margin must be >= 0 and shorter than ttl")
        if deadline <= timedelta(0):
            raise ValueError("deadline must be positive")
        self._client = client
        self._ttl = ttl
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._budget = budget
        self._store: TokenStore = store if store is not None else LocalTokenStore(clock)
        self._deadline = deadline
        # Last nickname/profile_url this process synced (or found) at Sendbird, per user;
        # presence means "the user is known to exist, as one of ours".
        self._profiles: dict[str, tuple[str, str]] = {}
        # User ids of accounts registered in this process and not synced yet: their first
        # view creates the user before issuing (no issue-first 400201). Oldest dropped first.
        self._new_users: dict[str, None] = {}
        self._in_flight: dict[str, asyncio.Task[IssuedSessionToken]] = {}
        self._issued = 0
        self._reused = 0
        self._shared = 0
        self._reused_young = 0
        self._refused = 0
        self._revoked = 0

    @property
    def deadline(self) -> timedelta:
        """Longest one ``token_for`` call takes before it gives up."""
        return self._deadline

    async def token_for(
        self, identity: SendbirdIdentity, *, force_new: bool = False
    ) -> IssuedSessionToken:
        """Return a usable session token for ``identity``.

        Args:
            identity: The signed-in user's Sendbird identity (built on the server).
            force_new: Skip and drop the cached token. Use it when the widget's
                ``onSessionTokenRequired`` fires: Sendbird has rejected the old token,
                so handing it out again would loop. Exception: when an earlier ``force_new``
                call minted the cached token within the budget's reuse window, that token
                is handed out. Requests seconds apart were caused by the same rejected
                token (several tabs, the SDK asking twice) or are a loop; Sendbird does not
                reject a token seconds old unless it was revoked, and revoking forgets it
                here. A token minted for a page view is never reused this way: it is the
                one the widget reports as rejected.

        Returns:
            A token with more than ``refresh_margin`` left. A caller that joins an
            issuance already in flight (in this process or, with Redis, in another
            worker) gets that issuance's token; if its nickname differs from the one
            being synced, the next call updates it.

        Raises:
            ForeignSendbirdUserError: The Sendbird user exists but this app did not
                create it; nothing is issued.
            IssuanceBudgetExceededError: The user's or the app's issuance budget is
                spent; its ``retry_after`` says when to ask again.
            TokenRequestDeadlineError: No answer within ``deadline``.
            SendbirdError: Sendbird could not be reached or refused; the failure is
                not cached, the next call tries again.
        """
        try:
            async with asyncio.timeout(self._deadline.total_seconds()):
                return await self._token_for(identity, force_new)
        except TimeoutError:
            raise TokenRequestDeadlineError(self._deadline) from None

    async def _token_for(self, identity: SendbirdIdentity, force_new: bool) -> IssuedSessionToken:
        user_id = identity.user_id
        cached = await self._store.get(user_id)
        if (reusable := self._reusable(cached, identity, force_new)) is not None:
            return reusable
        if force_new and cached is not None:
            await self._store.discard(user_id, cached.issued.token)

        task = self._in_flight.get(user_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._obtain(identity, force_new))
            self._in_flight[user_id] = task
            task.add_done_callback(partial(self._on_task_done, user_id))
        else:
            self._shared += 1
        # shield(): a caller that gives up (its Reflex event is cancelled, its deadline
        # passes) must not cancel the issuance the other callers are waiting for.
        return await asyncio.shield(task)

    async def has_cached_token(self, identity: SendbirdIdentity) -> bool:
        """Whether ``token_for(identity)`` would answer now from the cache, without Sendbird.

        A page view uses it to show "issuing" only when issuing will take a round trip.
        False when the token store cannot be read (Redis down): ``token_for`` then meets
        the same failure and reports it.
        """
        try:
            cached = await self._store.get(identity.user_id)
        except SendbirdError:
            return False
        return cached is not None and self._serves_page_view(cached, identity, self._now())

    async def revoke(self, user_id: str) -> None:
        """Revoke all of the user's tokens at Sendbird and forget them here (sign-out).

        A user Sendbird does not know has no tokens, so 400201 counts as success. The
        cache is forgotten first, on every worker that shares it, so no page view gets
        a token that is about to be revoked; then the revocation holds the user's issuing
        lock (on every worker, with Redis) until Sendbird has confirmed it. Sendbird revokes
        *all* of a user's tokens, so a token issued while the request is on its way would
        die with the others: a page view that arrives meanwhile (the user signing in again
        in another tab) waits for the revocation, then gets a token that stays valid.

        Raises:
            TokenRequestDeadlineError: Sendbird did not confirm within ``deadline``.
            SendbirdError: The revocation failed; the cache is forgotten anyway.
        """
        seconds = self._deadline.total_seconds()
        try:
            async with asyncio.timeout(seconds), contextlib.AsyncExitStack() as lock:
                await self.forget(user_id)
                # An issuance stuck for half the deadline: revoke anyway, its token dies too.
                with contextlib.suppress(TimeoutError):
                    await lock.enter_async_context(self._store.issuing(user_id, seconds / 2))
                await self.forget(user_id)  # whatever an issuance cached while we waited
                with contextlib.suppress(SendbirdNotFoundError):
                    await self._client.revoke_session_tokens(user_id)
        except TimeoutError:
            raise TokenRequestDeadlineError(self._deadline) from None
        self._revoked += 1

    def note_new_user(self, user_id: str) -> None:
        """Say that ``user_id`` belongs to an account registered just now.

        Its id is new, so no Sendbird user can exist yet: the first ``token_for`` creates
        the user and then issues (two calls) instead of issuing first, getting 400201,
        creating and issuing again (three). Only an optimisation: a worker that was not
        told takes the three-call path, with the same result. At most
        ``MAX_NOTED_NEW_USERS`` ids are remembered.
        """
        self._new_users.pop(user_id, None)
        self._new_users[user_id] = None
        while len(self._new_users) > MAX_NOTED_NEW_USERS:
            del self._new_users[next(iter(self._new_users))]

    async def forget(self, user_id: str) -> None:
        """Drop everything remembered about the user (in the shared store: for every worker).

        The cached token is discarded, the next ``token_for`` starts like the first view
        after a restart (issue first, create on 400201, update the profile only if it
        changes after that), and an issuance already in flight will not refill the cache.
        """
        self._profiles.pop(user_id, None)
        await self._store.forget(user_id)

    @property
    def stats(self) -> TokenServiceStats:
        """Current counters; Sendbird call counts come from the client."""
        counts = dict(self._client.call_counts)
        return TokenServiceStats(
            issued=self._issued,
            reused=self._reused,
            shared=self._shared,
            reused_young=self._reused_young,
            refused=self._refused,
            revoked=self._revoked,
            sendbird_calls=sum(counts.values()),
            calls_by_endpoint=counts,
        )

    # ----------------------------------------------------------- internals

    def _reusable(
        self, cached: CachedToken | None, identity: SendbirdIdentity, force_new: bool
    ) -> IssuedSessionToken | None:
        """The cached token if this request may have it (counted), else None."""
        now = self._now()
        if cached is None or not self._serves_page_view(cached, identity, now):
            return None
        if not force_new:
            self._reused += 1
            return cached.issued
        if self._is_young(cached, now):
            self._reused_young += 1
            return cached.issued
        return None

    async def _obtain(self, identity: SendbirdIdentity, force_new: bool) -> IssuedSessionToken:
        """The single in-flight job per user: sync the user, then reuse or issue."""
        try:
            async with self._store.issuing(identity.user_id, self._deadline.total_seconds()):
                # Another worker may have issued while this one waited for its turn.
                cached = await self._store.get(identity.user_id)
                if cached is not None and self._issued_meanwhile(cached, identity, force_new):
                    self._shared += 1
                    return cached.issued
                return await self._sync_and_issue(identity, force_new)
        except IssuanceBudgetExceededError:
            self._refused += 1
            raise

    def _issued_meanwhile(
        self, cached: CachedToken, identity: SendbirdIdentity, force_new: bool
    ) -> bool:
        """Whether ``cached`` answers this request after all (another worker just issued it).

        A refresh takes only a token minted for a refresh within the reuse window; a page
        view takes any fresh token minted for the same profile.
        """
        now = self._now()
        if force_new:
            return self._is_young(cached, now)
        return self._serves_page_view(cached, identity, now)

    def _serves_page_view(
        self, cached: CachedToken, identity: SendbirdIdentity, now: datetime
    ) -> bool:
        """Whether ``cached`` is fresh and was minted for this profile (a page view may have it)."""
        return cached.profile == (identity.nickname, identity.profile_url) and self._is_fresh(
            cached.issued, now
        )

    async def _sync_and_issue(
        self, identity: SendbirdIdentity, force_new: bool
    ) -> IssuedSessionToken:
        user_id = identity.user_id
        generation = await self._store.generation(user_id)
        wanted = (identity.nickname, identity.profile_url)
        if user_id not in self._profiles and user_id in self._new_users:
            # Registered here just now: create first, no issue that is sure to fail.
            await self._create_user(identity, generation)
        if user_id in self._profiles:
            await self._update_profile(identity, generation)
            if not force_new:
                # Only the profile needed syncing: the token cached before may still be good.
                cached = await self._store.get(user_id)
                if cached is not None and self._is_fresh(cached.issued, self._now()):
                    await self._keep(user_id, replace(cached, profile=wanted), generation)
                    self._reused += 1
                    return cached.issued
        try:
            session = await self._issue(user_id)
        except SendbirdNotFoundError:
            # No such user at Sendbird: the account's first chat (registered before this
            # process started, or in another worker), or the user was deleted at Sendbird
            # (from the dashboard, a sandbox reset). Create it, then issue once more.
            self._profiles.pop(user_id, None)
            await self._create_user(identity, generation)
            await self._update_profile(identity, generation)
            session = await self._issue(user_id)
        else:
            if user_id not in self._profiles and await self._current(user_id, generation):
                # An issue-first success: the user exists under the account's random,
                # never-reused id, so this app created it (see the module docstring). Its
                # nickname is taken as the account's; the SDK corrects a stale one on connect.
                self._profiles[user_id] = wanted
        issued = IssuedSessionToken(user_id, session.token, session.expires_at)
        self._issued += 1
        refreshed_at = self._now() if force_new else None
        await self._keep(user_id, CachedToken(issued, wanted, refreshed_at), generation)
        return issued

    async def _keep(self, user_id: str, cached: CachedToken, generation: int) -> None:
        """Cache ``cached`` until it stops being fresh, unless the user was forgotten since."""
        keep_until = cached.issued.expires_at - self._refresh_margin
        await self._store.put(user_id, cached, generation=generation, keep_until=keep_until)

    async def _current(self, user_id: str, generation: int) -> bool:
        """Whether nothing forgot the user since ``generation`` was read."""
        return await self._store.generation(user_id) == generation

    async def _issue(self, user_id: str) -> SessionToken:
        """One token POST, admitted by the budget first (which may wait for a slot)."""
        if self._budget is not None:
            await self._budget.admit_token(user_id)
        # The clock is read after any wait, so the token gets its whole lifetime.
        return await self._client.issue_session_token(user_id, self._now() + self._ttl)

    async def _create_user(self, identity: SendbirdIdentity, generation: int) -> None:
        """Create the user with the app's mark; if it already exists, check that mark.

        Raises:
            ForeignSendbirdUserError: A user with this id exists without the mark.
        """
        user_id = identity.user_id
        if self._budget is not None:
            await self._budget.admit_post()
        try:
            await self._client.create_user(
                user_id, identity.nickname, identity.profile_url, CREATED_BY_METADATA
            )
            found = (identity.nickname, identity.profile_url)
        except SendbirdConflictError as conflict:
            # 400202: a user with this id exists already (another worker created it a
            # moment ago, or someone else did): adopt it only if this app created it.
            user = await self._client.get_user(user_id)
            if user is None:  # created and deleted again in between: report what we saw
                raise conflict from None
            if user.metadata.get(CREATED_BY_KEY) != CREATED_BY_VALUE:
                raise ForeignSendbirdUserError(user_id) from None
            found = (user.nickname, user.profile_url)
        self._new_users.pop(user_id, None)
        if await self._current(user_id, generation):
            self._profiles[user_id] = found

    async def _update_profile(self, identity: SendbirdIdentity, generation: int) -> None:
        """``PUT`` the nickname/profile URL if they differ from what was last synced."""
        user_id = identity.user_id
        wanted = (identity.nickname, identity.profile_url)
        known = self._profiles.get(user_id)
        if known is None or known == wanted:
            return
        await self._client.update_user(
            user_id, nickname=identity.nickname, profile_url=identity.profile_url
        )
        if await self._current(user_id, generation):
            self._profiles[user_id] = wanted

    def _on_task_done(self, user_id: str, task: asyncio.Task[IssuedSessionToken]) -> None:
        if self._in_flight.get(user_id) is task:
            del self._in_flight[user_id]
        if not task.cancelled():
            # Mark the exception as retrieved: if every waiter was cancelled nobody
            # else would, and asyncio would log "exception was never retrieved".
            task.exception()

    def _is_young(self, cached: CachedToken, now: datetime) -> bool:
        """Whether a force_new call minted ``cached`` within the budget's reuse window."""
        if self._budget is None or cached.refreshed_at is None:
            return False
        return now - cached.refreshed_at < self._budget.reuse_window

    def _is_fresh(self, token: IssuedSessionToken, now: datetime) -> bool:
        return token.expires_at - self._refresh_margin > now

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now
