"""When and how long the client waits before sending a failed request again.

What is retried: connection errors and timeouts (connect, read, write, pool), HTTP 429
/ Sendbird code 500910, and HTTP >= 500. Never another 4xx: a wrong API token, a
missing user or a bad field will fail the same way every time, and retrying would only
burn rate-limit budget.

Why retrying our POSTs is safe: a POST is normally not retried because the first
attempt may have taken effect before the connection broke. The two POSTs this app
makes are safe anyway:

* ``POST /v3/users/{user_id}/token`` (issue a session token): new-style session tokens
  are stateless (Sendbird does not store them), so a duplicate issuance just produces
  a second valid token that nobody uses and that expires on its own.
* ``POST /v3/users`` (create a user): if the first attempt created the user, the retry
  is answered with 400202 "already exists", and ``SendbirdClient.ensure_user`` treats
  400202 as success and reads the user back. The operation is idempotent as a whole.

``PUT /v3/users/{user_id}`` (same body, same result) and ``DELETE .../token`` (revoking
twice revokes the same tokens) are idempotent by nature.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Strict decimal seconds: "2", "0.0697". float() alone would also accept "1_0", "nan",
# "inf" and " 1e3 ", which no server means as a delay.
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for the client's retry loop.

    The defaults suit a web request with a user waiting: at most 2 retries, short
    exponential backoff, and no waiting for more than 10 s when Sendbird asks for a
    pause (openai-python allows 60 s; we would rather fail fast and show an error).

    Attributes:
        max_retries: Retries after the first attempt (0 disables retrying).
        initial_delay: Backoff before the first retry, in seconds.
        max_delay: Cap for the exponential backoff, in seconds.
        max_retry_after: Longest server-requested wait (``X-RateLimit-RetryAfter`` /
            ``Retry-After``) we are willing to sleep; above it the client raises
            ``SendbirdRetryAfterTooLongError`` at once.
        jitter: Fraction (0-1) by which backoff is randomly shortened, so that many
            workers hit by the same outage do not retry in lock step.
    """

    max_retries: int = 2
    initial_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 10.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        """Reject nonsensical values at construction time rather than mid-request."""
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be an int")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number of seconds")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.initial_delay > self.max_delay:
            raise ValueError("initial_delay must not exceed max_delay")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")

    def compute_delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Return how long to sleep before retry number ``attempt``.

        A server-requested delay wins (clamped to ``max_retry_after``; the client
        checks the bound before calling this) and is used without jitter because it
        is a minimum. Otherwise the delay is ``initial_delay * 2 ** (attempt - 1)``,
        capped at ``max_delay`` and shortened by up to ``jitter`` of itself.

        Args:
            attempt: 1 for the first retry, 2 for the second, and so on.
            retry_after: Seconds requested by the server, if any.
            rand: Source of uniform numbers in ``[0, 1)``; tests pass a constant.

        Returns:
            The delay in seconds, never negative.
        """
        if attempt < 1:
            raise ValueError("attempt counts retries and starts at 1")
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        # min() on the exponent keeps 2**n from overflowing on absurd attempt numbers.
        backoff = min(self.initial_delay * 2.0 ** min(attempt - 1, 64), self.max_delay)
        return max(backoff * (1.0 - self.jitter * rand()), 0.0)


def parse_retry_after(
    headers: Mapping[str, str],
    *,
    now: Callable[[], datetime] | None = None,
) -> float | None:
    """Read how long the server wants us to wait, in seconds.

    Sendbird's own ``X-RateLimit-RetryAfter`` (decimal seconds, often fractional such
    as ``0.0697``) is preferred; the standard ``Retry-After`` (integer seconds or an
    HTTP-date) is the fallback, for proxies and gateways. Negative, non-finite, past
    or unparsable values are ignored, so a garbled header falls back to backoff
    instead of producing a nonsense sleep.

    Args:
        headers: Response headers; ``httpx.Headers`` or any mapping (matched
            case-insensitively).
        now: Clock for HTTP-dates (aware UTC); defaults to the real time.

    Returns:
        The delay in seconds, or ``None`` when no usable header was present.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    sendbird = _parse_seconds(lowered.get("x-ratelimit-retryafter"))
    if sendbird is not None:
        return sendbird
    standard = lowered.get("retry-after")
    if standard is None:
        return None
    seconds = _parse_seconds(standard)
    if seconds is not None:
        return seconds
    return _parse_http_date(standard, now)


def _parse_seconds(value: str | None) -> float | None:
    if value is None or not _SECONDS.fullmatch(value.strip()):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) else None


def _parse_http_date(value: str, now: Callable[[], datetime] | None) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with unknown local zone (RFC 5322)
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    delay = (when - current).total_seconds()
    return delay if delay >= 0 else None
