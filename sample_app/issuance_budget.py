"""How many session tokens the app may mint: per user, and for the whole Sendbird application.

Every session token costs a Platform API POST, and Sendbird limits POSTs per application
(5 per second on a free trial). The widget asks for a fresh token whenever it wants one, and
anyone signed in can send that request over the Reflex socket in a loop: without a budget
one account spends the whole application's limit, and every other user's first token and
refresh then fails with 429 (which the client's retries make worse).
:class:`~sample_app.session_tokens.SessionTokenService` therefore asks an
:class:`IssuanceBudget` before each POST it causes:

* **Reuse window** (per user): a ``force_new`` request (the widget's token was rejected)
  within ``reuse_window`` of the previous ``force_new`` issuance gets that young token
  instead of a new one. The service applies it, since it holds the token; the budget only
  names the window. A page view's token is not reused this way: it is the one the widget
  reports as rejected.
* **Per-user limit**: at most ``tokens_per_user_per_minute`` new tokens per user in any
  60 seconds. Over it, :class:`IssuanceBudgetExceededError` says when to try again.
* **App-wide limit**: every POST (create the user, issue a token) takes a slot; at most
  ``platform_posts_per_second`` slots start in any one second, kept below Sendbird's limit
  so the app's own retries and clock jitter still fit. Over it, a request waits for a slot
  in arrival order for at most ``max_wait``, else is refused with the same error.

:class:`LocalIssuanceBudget` keeps its counts in this process, which is exact for a single
worker. The interface is deliberately small (one synchronous property, two coroutines):
with several workers, :class:`~sample_app.redis_shared.RedisIssuanceBudget` applies the same
rules to the whole app through Redis, without touching the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from sample_app.sendbird_api import SendbirdError

__all__ = [
    "DEFAULT_MAX_WAIT_SECONDS",
    "DEFAULT_PLATFORM_POSTS_PER_SECOND",
    "DEFAULT_TOKENS_PER_USER_PER_MINUTE",
    "DEFAULT_TOKEN_REUSE_SECONDS",
    "IssuanceBudget",
    "IssuanceBudgetExceededError",
    "IssuancePolicy",
    "LocalIssuanceBudget",
]

#: A ``force_new`` request this soon after the previous ``force_new`` issuance reuses its token.
DEFAULT_TOKEN_REUSE_SECONDS = 5
#: New tokens one user may get per minute: a real widget needs about one per token lifetime.
DEFAULT_TOKENS_PER_USER_PER_MINUTE = 10
#: Platform API POSTs per second for the whole app: one below the free trial's 5.
DEFAULT_PLATFORM_POSTS_PER_SECOND = 4
#: Longest a request waits for an app-wide slot before it is refused.
DEFAULT_MAX_WAIT_SECONDS = 2.0

USER_WINDOW_SECONDS = 60.0
APP_WINDOW_SECONDS = 1.0

Scope = Literal["user", "app"]


class IssuanceBudgetExceededError(SendbirdError):
    """No session token was issued: the user's or the app's issuance budget is spent.

    A :class:`~sample_app.sendbird_api.SendbirdError`, so every caller that already shows
    Sendbird failures (the session panel, the widget's rejected token request) shows this
    one too, with a message that says when to try again.

    Attributes:
        scope: ``"user"`` (this account asked for too many tokens) or ``"app"`` (the whole
            app is at its Platform API budget).
        retry_after: Seconds after which the same request would be admitted, at the
            earliest.
    """

    def __init__(self, scope: Scope, retry_after: float) -> None:
        """Create the error.

        Args:
            scope: Which budget refused.
            retry_after: Seconds until the request would be admitted (negative is read as 0).
        """
        self.scope: Scope = scope
        self.retry_after = max(retry_after, 0.0)
        # Whole seconds, at least 1: "try again in 0 s" would invite an immediate retry.
        wait = max(math.ceil(self.retry_after), 1)
        if scope == "user":
            message = f"Too many session tokens for this account; try again in {wait} s."
        else:
            message = (
                f"The app is issuing too many session tokens right now; try again in {wait} s."
            )
        super().__init__(message)


@dataclass(frozen=True)
class IssuancePolicy:
    """The limits a budget enforces (from ``SENDBIRD_*`` settings in the app).

    Attributes:
        reuse_window: A ``force_new`` request this soon after the previous ``force_new``
            issuance for the user gets that token again (zero turns reuse off).
        tokens_per_user_per_minute: New tokens per user in any 60 seconds.
        platform_posts_per_second: Platform API POSTs the app starts in any one second;
            keep it below Sendbird's limit for the application.
        max_wait: Longest a request queues for an app-wide slot before it is refused.
    """

    reuse_window: timedelta = timedelta(seconds=DEFAULT_TOKEN_REUSE_SECONDS)
    tokens_per_user_per_minute: int = DEFAULT_TOKENS_PER_USER_PER_MINUTE
    platform_posts_per_second: int = DEFAULT_PLATFORM_POSTS_PER_SECOND
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS

    def __post_init__(self) -> None:
        """Reject limits that would refuse everything or wait for ever.

        Raises:
            ValueError: A limit is not positive, or a duration is negative or not finite.
        """
        if self.reuse_window < timedelta(0):
            raise ValueError("reuse_window must not be negative")
        if self.tokens_per_user_per_minute < 1:
            raise ValueError("tokens_per_user_per_minute must be at least 1")
        if self.platform_posts_per_second < 1:
            raise ValueError("platform_posts_per_second must be at least 1")
        if not math.isfinite(self.max_wait) or self.max_wait < 0:
            raise ValueError("max_wait must be a finite number of seconds >= 0")


class IssuanceBudget(Protocol):
    """What the token service asks before each Platform API POST it causes."""

    @property
    def reuse_window(self) -> timedelta:
        """How soon after a ``force_new`` issuance another one reuses its token."""
        ...

    async def admit_token(self, user_id: str) -> None:
        """Admit one new session token for ``user_id``: per-user limit, then an app slot.

        Returns once the POST may be sent; the issuance then counts against the user
        whether or not Sendbird accepts it (the POST was spent either way).

        Raises:
            IssuanceBudgetExceededError: The user is over the limit (nothing is counted),
                or no app-wide slot came free within the allowed wait (the user's count is
                given back).
        """
        ...

    async def admit_post(self) -> None:
        """Admit one other Platform API POST (creating a user): an app-wide slot only.

        Raises:
            IssuanceBudgetExceededError: No slot came free within the allowed wait.
        """
        ...


class LocalIssuanceBudget:
    """An :class:`IssuanceBudget` kept in this process (exact for one worker).

    Per user, a sliding 60-second window of issuance times (at most
    ``tokens_per_user_per_minute`` entries each; users with none left in the window are
    dropped). App-wide, the start times of the last ``platform_posts_per_second`` slots: a
    new slot starts no earlier than one second after the slot that many places before it,
    so no second ever holds more. Slots are handed out in arrival order, and a waiter
    sleeps once until its own slot (no polling); since a slot is granted only within
    ``max_wait``, at most ``platform_posts_per_second * max_wait`` requests wait at a time.
    A waiter that is cancelled keeps its slot unused, which errs on the side of fewer POSTs.

    All methods must be called from one event loop.
    """

    def __init__(
        self,
        policy: IssuancePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create the budget.

        Args:
            policy: The limits; ``IssuancePolicy()`` (the defaults) when omitted.
            clock: Monotonic seconds; tests inject a fake one.
            sleep: Waits that many seconds; tests inject one driven by their fake clock.
        """
        self.policy = policy if policy is not None else IssuancePolicy()
        self._clock = clock
        self._sleep = sleep
        # Lists, not deques: a user has a handful of stamps at most, and an empty deque
        # alone takes 760 bytes (one kept per user active in the last minute).
        self._per_user: dict[str, list[float]] = {}
        self._slots: deque[float] = deque(maxlen=self.policy.platform_posts_per_second)
        self._next_sweep = 0.0

    @property
    def reuse_window(self) -> timedelta:
        """The policy's reuse window."""
        return self.policy.reuse_window

    async def admit_token(self, user_id: str) -> None:
        """See :meth:`IssuanceBudget.admit_token`."""
        stamps, stamp = self._reserve_for_user(user_id)
        try:
            await self.admit_post()
        except BaseException:
            # No POST is sent: the user gets the issuance back (also when cancelled).
            with contextlib.suppress(ValueError):
                stamps.remove(stamp)
            raise

    async def admit_post(self) -> None:
        """See :meth:`IssuanceBudget.admit_post`."""
        now = self._clock()
        start = now
        if self._slots:
            start = max(start, self._slots[-1])  # never ahead of an earlier arrival
        if len(self._slots) == self._slots.maxlen:
            start = max(start, self._slots[0] + APP_WINDOW_SECONDS)
        wait = start - now
        if wait > self.policy.max_wait:
            raise IssuanceBudgetExceededError("app", wait - self.policy.max_wait)
        self._slots.append(start)  # the deque's maxlen drops the oldest slot
        if wait > 0:
            await self._sleep(wait)

    def _reserve_for_user(self, user_id: str) -> tuple[list[float], float]:
        """Count one issuance for ``user_id`` now, or raise if the user is over the limit."""
        now = self._clock()
        self._sweep(now)
        stamps = self._per_user.setdefault(user_id, [])
        while stamps and now - stamps[0] >= USER_WINDOW_SECONDS:
            del stamps[0]
        if len(stamps) >= self.policy.tokens_per_user_per_minute:
            raise IssuanceBudgetExceededError("user", stamps[0] + USER_WINDOW_SECONDS - now)
        stamps.append(now)
        return stamps, now

    def _sweep(self, now: float) -> None:
        """Once a window, drop users with no issuance left in it (bounds the memory)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + USER_WINDOW_SECONDS
        idle = [
            user_id
            for user_id, stamps in self._per_user.items()
            if not stamps or now - stamps[-1] >= USER_WINDOW_SECONDS
        ]
        for user_id in idle:
            del self._per_user[user_id]
