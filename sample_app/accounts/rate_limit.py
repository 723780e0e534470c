"""The sign-in and registration limits, counted from rows in the accounts database.

`RateLimit` is the sign-in policy (numbers only) and `SignInRateLimiter` applies it;
`RegistrationLimit` and `RegistrationRateLimiter` do the same for new accounts. The
limiters never open database sessions: `AccountService` passes its own, so a successful
sign-in's attempt row is settled in the same transaction as its sign-in session.

Who an attempt counts against (its *bucket*):

* A browser that presents a valid **device token** for the username it signs in to (one
  it received after an earlier successful sign-in to that account) is counted on its
  own: client key ``device:<id>``. Failures made anywhere else, even from the same IP,
  never slow it down, and its failures slow down nobody else.
* Any other attempt counts against its **client key** (usually the IP; "" when unknown).

The limits, checked before the password:

* **Per (username, client key) pair** (a device counts as a client key): the first
  `free_failures` failures in the window cost nothing; after that each attempt waits
  `backoff_base` x 2^(failures - free_failures) after the pair's latest failure (1 s,
  2 s, 4 s, ...), capped at `backoff_cap`. This is what slows a guesser down.
* **Per client key** (IPs only, not devices): `max_client_failures` failures in the
  window on any usernames refuse that client until the oldest leaves the window.
* **Per username**, only for *unknown* clients (no valid device token, and no successful
  sign-in to that username from that client key within `known_client_period`):
  `max_username_failures` failures in the window from IPs (not devices) refuse further
  unknown clients. A known client or device is never refused because of other clients'
  failures; an attacker spreading guesses over many addresses meets this limit.

Failures, unknown usernames and right passwords for disabled accounts all count as
failures. A success forgives the earlier failures of the same username from the same
bucket (the owner's own typos), nothing else. Attempts the limits refuse leave no row,
so waiting is always enough.

Check and record are one step: an attempt is first written (and committed) as a failure,
then the limits count the *other* rows. Of N attempts running at once, the k-th to count
sees at least k - 1 others, so no more pass than the limits allow, on any database and in
any number of worker processes. The right password then turns the row into a success.
No lock is needed, but the commit before counting is: on PostgreSQL (READ COMMITTED, its
default) each statement sees the rows committed before it started, so a row that was only
flushed would be invisible to the other attempts and a burst could pass together (the
concurrent tests in `tests/accounts/test_sign_in_abuse.py` fail if it is). Any stricter
isolation level works too, since counting starts a new transaction after the commit.

Successes are kept for `known_client_period` (they are what makes a client known),
failures for the window; `prune` deletes the rest.
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
    RegistrationAttempt,
    SignInAttempt,
)
from sample_app.accounts.validation import normalize_username

__all__ = [
    "DEVICE_KEY_PREFIX",
    "AttemptKey",
    "RateLimit",
    "RegistrationLimit",
    "RegistrationRateLimiter",
    "SignInRateLimiter",
]

# Client keys of device-token attempts; an IP address never looks like this.
DEVICE_KEY_PREFIX = "device:"
# 2 ** this is far beyond any sensible cap; it keeps the arithmetic small.
_MAX_BACKOFF_EXPONENT = 40


def _seconds(delta: timedelta) -> int:
    """Whole seconds, rounded up, at least 1 (what a "try again in" message can say)."""
    return max(1, math.ceil(delta.total_seconds()))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The sign-in limits (see the module docstring for how they combine).

    Attributes:
        window: How far back failures count.
        free_failures: Failures of one (username, client or device) pair within `window`
            before exponential backoff starts.
        backoff_base: The first backoff wait; each further failure doubles it.
        backoff_cap: The longest backoff wait.
        max_client_failures: Failures of one client key (IP) on any usernames within
            `window` that refuse it. Devices are not counted here.
        max_username_failures: Failures of one username from IPs within `window` that
            refuse further attempts from clients that are neither known nor devices.
        known_client_period: How long a successful sign-in makes its (username, client
            key) pair known, exempting it from the per-username limit.
    """

    window: timedelta = timedelta(minutes=15)
    free_failures: int = 5
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(minutes=15)
    max_client_failures: int = 30
    max_username_failures: int = 20
    known_client_period: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        for name in ("free_failures", "max_client_failures", "max_username_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("window", "backoff_base", "backoff_cap", "known_client_period"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")

    def backoff(self, failures: int) -> timedelta:
        """The wait after the latest of `failures` failures of one pair (0 when free)."""
        extra = failures - self.free_failures
        if extra < 0:
            return timedelta(0)
        return min(self.backoff_base * 2 ** min(extra, _MAX_BACKOFF_EXPONENT), self.backoff_cap)


class AttemptKey(NamedTuple):
    """Who a sign-in attempt counts against.

    Attributes:
        username: What was typed, normalised like a username and cut to the column length
            (it may match no account).
        client: The client key, stripped and cut to the column length; "" when unknown.
        device_id: The id of a device token valid for this username, or None.
    """

    username: str
    client: str
    device_id: int | None = None

    @classmethod
    def of(cls, username: str, client_key: str, device_id: int | None = None) -> AttemptKey:
        """Build the key for what was typed into the form and the client it came from."""
        client = client_key.strip()[:CLIENT_KEY_MAX_LENGTH]
        if client.startswith(DEVICE_KEY_PREFIX):  # never let a client pose as a device
            client = ""
        return cls(
            username=normalize_username(username)[:ATTEMPT_USERNAME_MAX_LENGTH],
            client=client,
            device_id=device_id,
        )

    @property
    def bucket(self) -> str:
        """The client key stored for this attempt: the device's, else the client's."""
        return self.client if self.device_id is None else f"{DEVICE_KEY_PREFIX}{self.device_id}"


class SignInRateLimiter:
    """Applies a `RateLimit` to the rows of `sign_in_attempts` (see the module docstring).

    Args:
        limit: The sign-in limits.
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit

    @property
    def limit(self) -> RateLimit:
        """The sign-in limits applied."""
        return self._limit

    def begin(self, db: Session, key: AttemptKey, now: datetime) -> int:
        """Write the attempt as a failure and commit it, before anything is counted.

        Returns:
            The attempt's id, for `retry_after`, `withdraw` and `succeed`.
        """
        attempt = SignInAttempt(
            username=key.username, client_key=key.bucket, at=now, succeeded=False
        )
        db.add(attempt)
        db.commit()
        assert attempt.id is not None  # assigned by the insert
        return attempt.id

    def withdraw(self, db: Session, attempt_id: int) -> None:
        """Delete a refused attempt, so waiting out a limit is enough (the caller commits)."""
        db.exec(sa.delete(SignInAttempt).where(col(SignInAttempt.id) == attempt_id))

    def succeed(self, db: Session, attempt_id: int) -> None:
        """Mark an attempt as a success (the caller commits)."""
        db.exec(
            sa.update(SignInAttempt)
            .where(col(SignInAttempt.id) == attempt_id)
            .values(succeeded=True)
        )

    def retry_after(self, db: Session, key: AttemptKey, now: datetime, attempt_id: int) -> int:
        """Return the seconds until `key` may try again; 0 when attempt `attempt_id` may go on.

        Counts every other attempt already written, including those still in flight.
        """
        since = now - self._limit.window
        failure = aliased(SignInAttempt)
        success = aliased(SignInAttempt)
        # A success forgives earlier failures of the same username from the same bucket.
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
        by_ip = key.device_id is None and bool(key.client)
        if by_ip:
            who = sa.or_(who, col(failure.client_key) == key.client)
        rows = db.exec(
            select(col(failure.username), col(failure.client_key), col(failure.at)).where(
                col(failure.id) != attempt_id,
                col(failure.succeeded).is_(False),
                col(failure.at) > since,
                who,
                ~forgiven,
            )
        ).all()
        waits = [timedelta(0)]
        if key.bucket:
            pair = [
                at for name, client, at in rows if name == key.username and client == key.bucket
            ]
            if pair:
                waits.append(max(pair) + self._limit.backoff(len(pair)) - now)
        if by_ip:
            client_times = sorted(at for _, client, at in rows if client == key.client)
            waits.append(self._until_below(client_times, self._limit.max_client_failures, now))
        if key.device_id is None and not self._is_known(db, key, now):
            user_times = sorted(
                at
                for name, client, at in rows
                if name == key.username and not client.startswith(DEVICE_KEY_PREFIX)
            )
            waits.append(self._until_below(user_times, self._limit.max_username_failures, now))
        wait = max(waits)
        return _seconds(wait) if wait > timedelta(0) else 0

    def prune(self, db: Session, now: datetime) -> int:
        """Delete failures outside the window and successes older than the known period.

        The caller commits.

        Returns:
            How many attempts were deleted.
        """
        result = db.exec(
            sa.delete(SignInAttempt).where(
                sa.or_(
                    sa.and_(
                        col(SignInAttempt.succeeded).is_(False),
                        col(SignInAttempt.at) <= now - self._limit.window,
                    ),
                    col(SignInAttempt.at) <= now - self._limit.known_client_period,
                )
            )
        )
        return result.rowcount

    def _is_known(self, db: Session, key: AttemptKey, now: datetime) -> bool:
        """Whether this username was signed in to from this client key recently."""
        if not key.client:
            return False
        found = db.exec(
            select(col(SignInAttempt.id)).where(
                col(SignInAttempt.succeeded).is_(True),
                col(SignInAttempt.username) == key.username,
                col(SignInAttempt.client_key) == key.client,
                col(SignInAttempt.at) > now - self._limit.known_client_period,
            )
        ).first()
        return found is not None

    def _until_below(self, times: list[datetime], limit: int, now: datetime) -> timedelta:
        """How long until fewer than `limit` of the sorted failure `times` are in the window."""
        if len(times) < limit:
            return timedelta(0)
        # Once this failure leaves the window, only limit - 1 remain.
        return times[len(times) - limit] + self._limit.window - now


@dataclass(frozen=True, slots=True)
class RegistrationLimit:
    """How many registrations may reach password hashing, per client key and overall.

    Attributes:
        per_client: Registrations per client key (IP) within `client_window`.
        client_window: How far back a client's registrations count.
        overall: Registrations from everyone within `overall_window`.
        overall_window: How far back all registrations count.
    """

    per_client: int = 5
    client_window: timedelta = timedelta(minutes=10)
    overall: int = 30
    overall_window: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if self.per_client < 1 or self.overall < 1:
            raise ValueError("per_client and overall must be at least 1")
        if self.client_window <= timedelta(0) or self.overall_window <= timedelta(0):
            raise ValueError("client_window and overall_window must be positive")


class RegistrationRateLimiter:
    """Applies a `RegistrationLimit` to the rows of `registration_attempts`.

    Like sign-ins, a registration is written first and committed, then the others are
    counted, so a concurrent burst cannot pass together; a refused one is deleted again.

    Args:
        limit: The registration limits.
    """

    def __init__(self, limit: RegistrationLimit) -> None:
        self._limit = limit

    @property
    def limit(self) -> RegistrationLimit:
        """The registration limits applied."""
        return self._limit

    def admit(self, db: Session, client_key: str, now: datetime) -> tuple[int, bool]:
        """Count one registration of `client_key`, unless a limit refuses it.

        Returns:
            Seconds until it may try again (0 when admitted), and whether the per-client
            limit (rather than the overall one) refused it.
        """
        client = client_key.strip()[:CLIENT_KEY_MAX_LENGTH]
        attempt = RegistrationAttempt(client_key=client, at=now)
        db.add(attempt)
        db.commit()
        assert attempt.id is not None  # assigned by the insert
        since = now - max(self._limit.client_window, self._limit.overall_window)
        rows = db.exec(
            select(col(RegistrationAttempt.client_key), col(RegistrationAttempt.at)).where(
                col(RegistrationAttempt.id) != attempt.id, col(RegistrationAttempt.at) > since
            )
        ).all()
        overall = sorted(at for _, at in rows if at > now - self._limit.overall_window)
        overall_wait = self._until_below(
            overall, self._limit.overall, self._limit.overall_window, now
        )
        client_wait = timedelta(0)
        if client:
            mine = sorted(
                at for key, at in rows if key == client and at > now - self._limit.client_window
            )
            client_wait = self._until_below(
                mine, self._limit.per_client, self._limit.client_window, now
            )
        wait = max(overall_wait, client_wait)
        if wait <= timedelta(0):
            return 0, False
        db.exec(sa.delete(RegistrationAttempt).where(col(RegistrationAttempt.id) == attempt.id))
        db.commit()
        return _seconds(wait), client_wait >= overall_wait

    def prune(self, db: Session, now: datetime) -> int:
        """Delete registrations outside both windows (the caller commits).

        Returns:
            How many rows were deleted.
        """
        since = now - max(self._limit.client_window, self._limit.overall_window)
        result = db.exec(sa.delete(RegistrationAttempt).where(col(RegistrationAttempt.at) <= since))
        return result.rowcount

    @staticmethod
    def _until_below(
        times: list[datetime], limit: int, window: timedelta, now: datetime
    ) -> timedelta:
        if len(times) < limit:
            return timedelta(0)
        return times[len(times) - limit] + window - now
