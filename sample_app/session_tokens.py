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

The cache is a per-process optimisation. With several workers each has its own cache
(and may issue its own token for the same user), which is harmless because session
tokens are stateless at Sendbird and each one is valid on its own. Correctness never
depends on the cache: forgetting it only costs an extra API call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    SendbirdUser,
    SessionToken,
)
from sample_app.sendbird_api.models import datetime_to_unix_ms

__all__ = [
    "CREATED_BY_KEY",
    "CREATED_BY_METADATA",
    "CREATED_BY_VALUE",
    "ForeignSendbirdUserError",
    "IssuedSessionToken",
    "SendbirdTokenIssuer",
    "SessionTokenService",
    "TokenServiceStats",
    "utc_now",
]

DEFAULT_TTL = timedelta(minutes=30)
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

        Raises:
            ValueError: ``ttl`` is not positive or ``refresh_margin`` is not in
                ``[0, ttl)`` (every token would be stale as soon as it was issued).
        """
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if not timedelta(0) <= refresh_margin < ttl:
            raise ValueError("refresh_margin must be >= 0 and shorter than ttl")
        self._client = client
        self._ttl = ttl
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._budget = budget
        self._tokens: dict[str, IssuedSessionToken] = {}
        # When the cached token was minted, for users whose cached token was minted for a
        # force_new request: another force_new request inside the budget's reuse window gets
        # it again. Kept apart from _tokens, which decides whether a token exists at all.
        self._refreshed_at: dict[str, datetime] = {}
        # Last nickname/profile_url this process synced (or found) at Sendbird, per user;
        # presence means "the user is known to exist, as one of ours".
        self._profiles: dict[str, tuple[str, str]] = {}
        # User ids of accounts registered in this process and not synced yet: their first
        # view creates the user before issuing (no issue-first 400201). Oldest dropped first.
        self._new_users: dict[str, None] = {}
        self._in_flight: dict[str, asyncio.Task[IssuedSessionToken]] = {}
        # Bumped by forget(): an issuance that started earlier must not refill the cache.
        self._generations: Counter[str] = Counter()
        self._issued = 0
        self._reused = 0
        self._shared = 0
        self._reused_young = 0
        self._refused = 0
        self._revoked = 0

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
            issuance already in flight gets that issuance's token; if its nickname
            differs from the one being synced, the next call updates it.

        Raises:
            ForeignSendbirdUserError: The Sendbird user exists but this app did not
                create it; nothing is issued.
            IssuanceBudgetExceededError: The user's or the app's issuance budget is
                spent; its ``retry_after`` says when to ask again.
            SendbirdError: Sendbird could not be reached or refused; the failure is
                not cached, the next call tries again.
        """
        user_id = identity.user_id
        cached = self._tokens.get(user_id)
        wanted = (identity.nickname, identity.profile_url)
        if (
            cached is not None
            and self._is_fresh(cached, now := self._now())
            and self._profiles.get(user_id) == wanted
        ):
            if not force_new:
                self._reused += 1
                return cached
            if self._is_young(user_id, now):
                self._reused_young += 1
                return cached
        if force_new:
            self._tokens.pop(user_id, None)

        task = self._in_flight.get(user_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._obtain(identity, force_new))
            self._in_flight[user_id] = task
            task.add_done_callback(partial(self._on_task_done, user_id))
        else:
            self._shared += 1
        # shield(): a caller that gives up (its Reflex event is cancelled, say) must
        # not cancel the issuance the other callers are waiting for.
        return await asyncio.shield(task)

    async def revoke(self, user_id: str) -> None:
        """Revoke all of the user's tokens at Sendbird and forget them here (sign-out).

        A user Sendbird does not know has no tokens, so 400201 counts as success.

        Raises:
            SendbirdError: The revocation failed; the local cache is forgotten anyway.
        """
        self.forget(user_id)
        with contextlib.suppress(SendbirdNotFoundError):
            await self._client.revoke_session_tokens(user_id)
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

    def forget(self, user_id: str) -> None:
        """Drop everything this process remembers about the user.

        The cached token is discarded, the next ``token_for`` starts like the first view
        after a restart (issue first, create on 400201, update the profile only if it
        changes after that), and an issuance already in flight will not refill the cache.
        """
        self._tokens.pop(user_id, None)
        self._refreshed_at.pop(user_id, None)
        self._profiles.pop(user_id, None)
        self._generations[user_id] += 1

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

    async def _obtain(self, identity: SendbirdIdentity, force_new: bool) -> IssuedSessionToken:
        """The single in-flight job per user: sync the user, then reuse or issue."""
        try:
            return await self._sync_and_issue(identity, force_new)
        except IssuanceBudgetExceededError:
            self._refused += 1
            raise

    async def _sync_and_issue(
        self, identity: SendbirdIdentity, force_new: bool
    ) -> IssuedSessionToken:
        user_id = identity.user_id
        generation = self._generations[user_id]
        wanted = (identity.nickname, identity.profile_url)
        if user_id not in self._profiles and user_id in self._new_users:
            # Registered here just now: create first, no issue that is sure to fail.
            await self._create_user(identity, generation)
        if user_id in self._profiles:
            await self._update_profile(identity, generation)
            if not force_new:
                # Only the profile needed syncing: the token cached before may still be good.
                cached = self._tokens.get(user_id)
                if cached is not None and self._is_fresh(cached, self._now()):
                    self._reused += 1
                    return cached
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
            if user_id not in self._profiles and self._generations[user_id] == generation:
                # An issue-first success: the user exists under the account's random,
                # never-reused id, so this app created it (see the module docstring). Its
                # nickname is taken as the account's; the SDK corrects a stale one on connect.
                self._profiles[user_id] = wanted
        issued = IssuedSessionToken(user_id, session.token, session.expires_at)
        self._issued += 1
        if self._generations[user_id] == generation:
            self._tokens[user_id] = issued
            if force_new:
                self._refreshed_at[user_id] = self._now()
            else:
                self._refreshed_at.pop(user_id, None)
        return issued

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
        if self._generations[user_id] == generation:
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
        if self._generations[user_id] == generation:
            self._profiles[user_id] = wanted

    def _on_task_done(self, user_id: str, task: asyncio.Task[IssuedSessionToken]) -> None:
        if self._in_flight.get(user_id) is task:
            del self._in_flight[user_id]
        if not task.cancelled():
            # Mark the exception as retrieved: if every waiter was cancelled nobody
            # else would, and asyncio would log "exception was never retrieved".
            task.exception()

    def _is_young(self, user_id: str, now: datetime) -> bool:
        """Whether a force_new call minted the user's cached token within the reuse window."""
        refreshed_at = self._refreshed_at.get(user_id)
        if self._budget is None or refreshed_at is None:
            return False
        return now - refreshed_at < self._budget.reuse_window

    def _is_fresh(self, token: IssuedSessionToken, now: datetime) -> bool:
        return token.expires_at - self._refresh_margin > now

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now
