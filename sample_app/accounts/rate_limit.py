"""The sign-in failure limit: how many wrong passwords, counted from `sign_in_attempts`.

`RateLimit` is the policy (numbers only); `SignInRateLimiter` applies it. The limiter
does not open database sessions or commit: `AccountService` passes its own session, so a
successful sign-in's attempt row is written in the same transaction as its sign-in
session.

What it does, exactly:

* Every attempt the limit lets through is recorded, as a failure or a success, with the
  username as typed (normalised like a username, whether or not such an account exists)
  and the client key (usually the IP; "" when unknown). A wrong password, an unknown
  username and a right password for a disabled account are all failures. Attempts the
  limit refuses (`TooManyAttemptsError`) are not recorded, so waiting out a lock is
  enough.
* Before the password is checked, the failures in the last `window` are counted twice:
  those of this username from *any* client, and those of this client key on *any*
  username. Reaching either limit refuses the attempt without checking the password.
  An empty client key skips the per-client count.
* A success forgives the earlier failures of the same username from the same client key
  (the owner's own typos). It forgives nothing else: not that username's failures from
  other clients, nor that client's failures on other usernames.
* The counters are rows in the database, so they survive restarts and are shared by
  every worker process. `prune` deletes the rows that have left the window.

Known limits of this policy, left as they are here:

* The per-username count does not care who failed. Anyone who knows a username can keep
  that account locked, its owner included, by failing `max_failures` times per window
  from anywhere.
* The check (`retry_after`) and the record (`record`) are separate statements in separate
  transactions, with the password check in between. Attempts that run concurrently can
  all pass the check before any of them is recorded, so a burst can exceed the limit by
  as many attempts as are in flight at once; nothing here bounds that number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from sample_app.accounts.models import (
    ATTEMPT_USERNAME_MAX_LENGTH,
    CLIENT_KEY_MAX_LENGTH,
    SignInAttempt,
)
from sample_app.accounts.validation import normalize_username

__all__ = ["AttemptKey", "RateLimit", "SignInRateLimiter"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many failed sign-ins are allowed within a sliding window.

    Attributes:
        max_failures: Failures per username within `window`; the next attempt is refused.
        window: How far back failures count.
        max_client_failures: Failures per client key within `window`; None means the same
            as `max_failures`. Raise it when many people share one IP (offices, NAT).
    """

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    max_client_failures: int | None = None

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if self.max_client_failures is not None and self.max_client_failures < 1:
            raise ValueError("max_client_failures must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")

    @property
    def client_limit(self) -> int:
        """The effective per-client limit."""
        return self.max_failures if self.max_client_failures is None else self.max_client_failures


class AttemptKey(NamedTuple):
    """Who a sign-in attempt counts against.

    Attributes:
        username: What was typed, normalised like a username and cut to the column length
            (it may match no account).
        client: The client key, stripped and cut to the column length; "" when unknown.
    """

    username: str
    client: str

    @classmethod
    def of(cls, username: str, client_key: str) -> AttemptKey:
        """Build the key for what was typed into the form and the client it came from."""
        return cls(
            username=normalize_username(username)[:ATTEMPT_USERNAME_MAX_LENGTH],
            client=client_key.strip()[:CLIENT_KEY_MAX_LENGTH],
        )


class SignInRateLimiter:
    """Applies a `RateLimit` to the rows of `sign_in_attempts` (see the module docstring).

    Args:
        limit: The failure limits.
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit

    @property
    def limit(self) -> RateLimit:
        """The failure limits applied."""
        return self._limit

    def retry_after(self, db: Session, key: AttemptKey, now: datetime) -> int:
        """Return the seconds until `key` may try again; 0 when it may try now."""
        since = now - self._limit.window
        failure = aliased(SignInAttempt)
        success = aliased(SignInAttempt)
        # A success forgives earlier failures of the same username from the same client.
        forgiven = (
            sa.select(col(success.id))
            .where(
                col(success.succeeded).is_(True),
                col(success.username) == col(failure.username),
                col(success.client_key) == col(failure.client_key),
                col(success.at) >= col(failure.at),
                col(success.at) > since,
            )
            .exists()
        )
        who: sa.ColumnElement[bool] = col(failure.username) == key.username
        if key.client:
            who = sa.or_(who, col(failure.client_key) == key.client)
        rows = db.exec(
            select(col(failure.username), col(failure.client_key), col(failure.at)).where(
                col(failure.succeeded).is_(False),
                col(failure.at) > since,
                who,
                ~forgiven,
            )
        ).all()
        user_times = sorted(at for name, _, at in rows if name == key.username)
        client_times = sorted(at for _, client, at in rows if key.client and client == key.client)
        return max(
            self._seconds_until_below(user_times, self._limit.max_failures, now),
            self._seconds_until_below(client_times, self._limit.client_limit, now),
        )

    def record(self, db: Session, key: AttemptKey, now: datetime, *, succeeded: bool) -> None:
        """Add one attempt to `db` (the caller commits)."""
        db.add(
            SignInAttempt(username=key.username, client_key=key.client, at=now, succeeded=succeeded)
        )

    def prune(self, db: Session, now: datetime) -> int:
        """Delete the attempts that have left the window (the caller commits).

        Returns:
            How many attempts were deleted.
        """
        result = db.exec(
            sa.delete(SignInAttempt).where(col(SignInAttempt.at) <= now - self._limit.window)
        )
        return result.rowcount

    def _seconds_until_below(self, times: list[datetime], limit: int, now: datetime) -> int:
        """Seconds until fewer than `limit` of the sorted failure `times` are in the window."""
        if len(times) < limit:
            return 0
        # Once this failure leaves the window, only limit - 1 remain.
        frees_at = times[len(times) - limit] + self._limit.window
        return max(1, math.ceil((frees_at - now).total_seconds()))
