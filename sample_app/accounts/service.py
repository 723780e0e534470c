"""Register, sign in, resolve and end sessions of the app's own accounts.

`AccountService` is the only way the rest of the app touches accounts. It hands out
`AccountView` objects (never table rows), so a password hash cannot end up in Reflex
state by accident.

Sign-in sessions are opaque bearer tokens (`secrets.token_urlsafe(32)`, 256 random bits)
returned once to the person signing in. The database keeps only their SHA-256: the token
has full entropy, so a slow hash would add nothing, and a leaked table cannot be replayed.
Lookups are by that hash through a unique index, so there is no string comparison whose
timing could leak a prefix. Sessions expire after `session_ttl` and can be revoked
(`sign_out`, `sign_out_everywhere`, `disable_account`); a revoked token never resolves again.

Sign-in failures are rate limited per username *and* per client key (usually the IP):
the first stops guessing one account's password from many machines, the second stops one
machine trying many accounts. The counters live in the `sign_in_attempts` table, so they
survive restarts and are shared by every worker. Once a limit is reached the password is
not even checked, so a correct guess during a lockout teaches the attacker nothing. A
successful sign-in forgives only the earlier failures of the same username from the same
client (the owner's own typos); it never clears failures of other accounts from that
client, nor failures of that account from other clients.

Unknown usernames cost the same argon2 verification as wrong passwords and produce the
same message, so neither timing nor wording reveals which usernames exist.

The methods are synchronous (database I/O and a deliberately slow hash); call them from
async Reflex handlers through `asyncio.to_thread`. The rate limit is checked and then
recorded in separate statements, so a burst of concurrent attempts can exceed it by the
number of attempts in flight; that bounds the excess at a handful, which is acceptable
for a lockout whose purpose is to make online guessing impractical.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from sample_app.accounts.models import (
    ATTEMPT_USERNAME_MAX_LENGTH,
    CLIENT_KEY_MAX_LENGTH,
    Account,
    AccountView,
    AuthSession,
    SignInAttempt,
)
from sample_app.accounts.passwords import (
    MAX_PASSWORD_LENGTH,
    Argon2Hasher,
    check_password_strength,
)
from sample_app.accounts.validation import (
    normalize_username,
    validate_display_name,
    validate_profile_url,
    validate_username,
)

__all__ = [
    "DEFAULT_SESSION_TTL",
    "USERNAME_TAKEN_MESSAGE",
    "WRONG_CREDENTIALS_MESSAGE",
    "AccountError",
    "AccountService",
    "AccountValidationError",
    "PruneCounts",
    "RateLimit",
    "RegistrationError",
    "SignInError",
    "SignedIn",
    "TooManyAttemptsError",
    "hash_session_token",
    "utc_now",
]

DEFAULT_SESSION_TTL = timedelta(hours=12)
# `last_seen_at` is informative only; writing it on every request would turn every page
# view into a database write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Ended (expired or revoked) sessions are deleted this long after they ended.
ENDED_SESSION_RETENTION = timedelta(days=1)
# A token from `secrets.token_urlsafe(32)` has 43 characters; anything far off that is not
# one of ours and is refused before touching the database.
_TOKEN_MIN_LENGTH = 32
_TOKEN_MAX_LENGTH = 128
# Passwords longer than this cannot be right (the policy caps them at 256 characters), so
# they are refused without hashing megabytes of attacker-supplied input.
_MAX_VERIFIED_PASSWORD_LENGTH = 4 * MAX_PASSWORD_LENGTH

WRONG_CREDENTIALS_MESSAGE = "Wrong username or password."
ACCOUNT_DISABLED_MESSAGE = "This account has been disabled."
USERNAME_TAKEN_MESSAGE = "That username is taken."


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def hash_session_token(session_token: str) -> str:
    """Return the SHA-256 hex digest under which a session token is stored."""
    return hashlib.sha256(session_token.encode("utf-8")).hexdigest()


class AccountError(Exception):
    """Base of the errors this module raises for the UI to show."""


class AccountValidationError(AccountError):
    """Some fields of an account form are invalid.

    Attributes:
        field_errors: Problems per field ("username", "password", "display_name",
            "profile_url"), each a sentence to show under that field.
    """

    def __init__(self, field_errors: dict[str, list[str]]) -> None:
        self.field_errors = {name: list(problems) for name, problems in field_errors.items()}
        # args are the constructor's arguments, so copies and pickles rebuild correctly.
        super().__init__(self.field_errors)

    def __str__(self) -> str:
        return " ".join(problem for problems in self.field_errors.values() for problem in problems)


class RegistrationError(AccountValidationError):
    """The account could not be created; `field_errors` says why, per field."""


class SignInError(AccountError):
    """The sign-in was refused; `str(error)` is the message to show.

    Attributes:
        message: The message to show on the sign-in form.
    """

    def __init__(self, message: str = WRONG_CREDENTIALS_MESSAGE) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class TooManyAttemptsError(SignInError):
    """Too many recent failed sign-ins for this username or from this client.

    Attributes:
        retry_after_seconds: Whole seconds until an attempt would be allowed again (>= 1).
    """

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        if retry_after_seconds < 60:
            wait = f"{retry_after_seconds} second{'s' if retry_after_seconds != 1 else ''}"
        else:
            minutes = math.ceil(retry_after_seconds / 60)
            wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        super().__init__(f"Too many failed sign-in attempts. Try again in {wait}.")
        self.args = (retry_after_seconds,)  # so copies and pickles rebuild correctly


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


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in.

    Attributes:
        account: Who signed in.
        session_token: The opaque session token, returned only here (the database keeps
            only its hash); give it to this browser and nobody else.
        expires_at: When the session ends (aware UTC).
    """

    account: AccountView
    session_token: str = field(repr=False)
    expires_at: datetime


class PruneCounts(NamedTuple):
    """How many rows `AccountService.prune` deleted."""

    attempts: int
    sessions: int


class AccountService:
    """The app's own accounts: registration, sign-in, sessions and the sign-in rate limit.

    Args:
        engine: Where the accounts tables live (see `create_engine_for`), already migrated
            with `upgrade_database`.
        hasher: Password hashing; the default uses argon2-cffi's recommended cost. Tests
            pass `Argon2Hasher(argon2.profiles.CHEAPEST)`.
        clock: Returns the current aware datetime; tests inject a controllable one.
        session_ttl: How long a sign-in session lasts.
        rate_limit: The sign-in failure limits.
        prune_interval: How often (at most) sign-ins delete attempts that left the window
            and sessions that ended over a day ago.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        hasher: Argon2Hasher | None = None,
        clock: Callable[[], datetime] = utc_now,
        session_ttl: timedelta = DEFAULT_SESSION_TTL,
        rate_limit: RateLimit | None = None,
        prune_interval: timedelta = timedelta(minutes=1),
    ) -> None:
        if session_ttl <= timedelta(0):
            raise ValueError("session_ttl must be positive")
        self._engine = engine
        self._hasher = hasher or Argon2Hasher()
        self._clock = clock
        self._session_ttl = session_ttl
        self._rate_limit = rate_limit or RateLimit()
        self._prune_interval = prune_interval
        self._last_prune: datetime | None = None

    @property
    def engine(self) -> Engine:
        """The database engine."""
        return self._engine

    @property
    def rate_limit(self) -> RateLimit:
        """The sign-in failure limits."""
        return self._rate_limit

    @property
    def session_ttl(self) -> timedelta:
        """How long a sign-in session lasts."""
        return self._session_ttl

    # -- helpers -----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime; it must be timezone-aware")
        return now.astimezone(UTC)

    def _session(self) -> Session:
        return Session(self._engine, expire_on_commit=False)

    @staticmethod
    def _username_taken(session: Session, username: str) -> bool:
        return (
            session.exec(select(Account.id).where(Account.username == username)).first() is not None
        )

    # -- accounts ----------------------------------------------------------------------

    def register(
        self, username: str, password: str, display_name: str, profile_url: str = ""
    ) -> AccountView:
        """Create an account after checking every field.

        The username is stored normalised. The password is hashed only once everything
        else is valid, and the account is one row inserted in one transaction, so a
        failure leaves nothing behind.

        Raises:
            RegistrationError: listing every problem at once, per field; a taken
                username (including one taken concurrently) is "That username is taken.".
        """
        errors: dict[str, list[str]] = {}
        clean_username, problems = validate_username(username)
        if problems:
            errors["username"] = problems
        problems = check_password_strength(password, clean_username)
        if problems:
            errors["password"] = problems
        clean_name, problems = validate_display_name(display_name)
        if problems:
            errors["display_name"] = problems
        clean_url, problems = validate_profile_url(profile_url)
        if problems:
            errors["profile_url"] = problems
        if "username" not in errors:
            with self._session() as session:
                if self._username_taken(session, clean_username):
                    errors["username"] = [USERNAME_TAKEN_MESSAGE]
        if errors:
            raise RegistrationError(errors)

        account = Account(
            username=clean_username,
            display_name=clean_name,
            profile_url=clean_url,
            password_hash=self._hasher.hash_password(password),
            created_at=self._now(),
        )
        with self._session() as session:
            session.add(account)
            try:
                session.commit()
            except IntegrityError:
                # Someone registered the same name between our check and our insert.
                session.rollback()
                if self._username_taken(session, clean_username):
                    raise RegistrationError({"username": [USERNAME_TAKEN_MESSAGE]}) from None
                raise
            return account.public()

    def get_account(self, account_id: int) -> AccountView | None:
        """Return the account, or None when it does not exist or is disabled."""
        with self._session() as session:
            account = session.get(Account, account_id)
            if account is None or account.disabled_at is not None:
                return None
            return account.public()

    def update_profile(
        self, account_id: int, display_name: str, profile_url: str = ""
    ) -> AccountView | None:
        """Change the display name and profile URL (the Sendbird nickname and avatar).

        Returns:
            The updated account, or None when it does not exist or is disabled.

        Raises:
            AccountValidationError: for an invalid display name or profile URL.
        """
        errors: dict[str, list[str]] = {}
        clean_name, problems = validate_display_name(display_name)
        if problems:
            errors["display_name"] = problems
        clean_url, problems = validate_profile_url(profile_url)
        if problems:
            errors["profile_url"] = problems
        if errors:
            raise AccountValidationError(errors)
        with self._session() as session:
            account = session.get(Account, account_id)
            if account is None or account.disabled_at is not None:
                return None
            account.display_name = clean_name
            account.profile_url = clean_url
            session.add(account)
            session.commit()
            return account.public()

    def disable_account(self, account_id: int) -> bool:
        """Disable an account: it can no longer sign in and all its sessions are revoked.

        Returns:
            Whether the account exists.
        """
        now = self._now()
        with self._session() as session:
            account = session.get(Account, account_id)
            if account is None:
                return False
            if account.disabled_at is None:
                account.disabled_at = now
                session.add(account)
            self._revoke_all(session, account_id, now)
            session.commit()
            return True

    # -- signing in --------------------------------------------------------------------

    def sign_in(self, username: str, password: str, client_key: str) -> SignedIn:
        """Check the credentials and start a session.

        Args:
            username: As typed; it is normalised like at registration.
            password: As typed.
            client_key: Who is signing in, usually the client IP. "" means unknown: then
                only the per-username limit applies.

        Returns:
            The account and the new session token (the only time it is ever available).

        Raises:
            TooManyAttemptsError: too many recent failures for this username or client;
                the password was not checked.
            SignInError: wrong username or password (one message for both), or a
                disabled account.
        """
        now = self._now()
        user_key = normalize_username(username)[:ATTEMPT_USERNAME_MAX_LENGTH]
        client = client_key.strip()[:CLIENT_KEY_MAX_LENGTH]
        with self._session() as session:
            retry_after = self._retry_after(session, user_key, client, now)
            if retry_after:
                raise TooManyAttemptsError(retry_after)
            account = None
            if user_key:
                account = session.exec(select(Account).where(Account.username == user_key)).first()

        if account is None or len(password) > _MAX_VERIFIED_PASSWORD_LENGTH:
            self._hasher.burn_verify(password[:_MAX_VERIFIED_PASSWORD_LENGTH])
            self._record_attempt(user_key, client, now, succeeded=False)
            raise SignInError(WRONG_CREDENTIALS_MESSAGE)
        check = self._hasher.verify_password(account.password_hash, password)
        if not check:
            self._record_attempt(user_key, client, now, succeeded=False)
            raise SignInError(WRONG_CREDENTIALS_MESSAGE)
        if account.disabled_at is not None:
            # Only someone who knows the password learns that the account is disabled.
            self._record_attempt(user_key, client, now, succeeded=False)
            raise SignInError(ACCOUNT_DISABLED_MESSAGE)

        assert account.id is not None  # loaded from the database
        new_hash = self._hasher.hash_password(password) if check.needs_rehash else None
        session_token = secrets.token_urlsafe(32)
        expires_at = now + self._session_ttl
        with self._session() as session:
            if new_hash is not None:
                session.exec(
                    sa.update(Account)
                    .where(Account.id == account.id)
                    .values(password_hash=new_hash)
                )
            session.add(
                AuthSession(
                    token_hash=hash_session_token(session_token),
                    account_id=account.id,
                    created_at=now,
                    expires_at=expires_at,
                    last_seen_at=now,
                )
            )
            session.add(SignInAttempt(username=user_key, client_key=client, at=now, succeeded=True))
            self._maybe_prune(session, now)
            session.commit()
        return SignedIn(
            account=account.public(), session_token=session_token, expires_at=expires_at
        )

    def _record_attempt(
        self, user_key: str, client: str, now: datetime, *, succeeded: bool
    ) -> None:
        with self._session() as session:
            session.add(
                SignInAttempt(username=user_key, client_key=client, at=now, succeeded=succeeded)
            )
            self._maybe_prune(session, now)
            session.commit()

    def _retry_after(self, session: Session, user_key: str, client: str, now: datetime) -> int:
        """Seconds until this username and client may try again; 0 when they may now."""
        limit = self._rate_limit
        since = now - limit.window
        failure = aliased(SignInAttempt)
        success = aliased(SignInAttempt)
        # A success forgives earlier failures of the same username from the same client.
        forgiven = (
            sa.select(success.id)
            .where(
                success.succeeded.is_(True),
                success.username == failure.username,
                success.client_key == failure.client_key,
                success.at >= failure.at,
                success.at > since,
            )
            .exists()
        )
        who = failure.username == user_key
        if client:
            who = sa.or_(who, failure.client_key == client)
        rows = session.exec(
            sa.select(failure.username, failure.client_key, failure.at).where(
                failure.succeeded.is_(False),
                failure.at > since,
                who,
                ~forgiven,
            )
        ).all()
        user_times = sorted(at for name, _, at in rows if name == user_key)
        client_times = sorted(at for _, key, at in rows if client and key == client)
        return max(
            self._seconds_until_below(user_times, limit.max_failures, now),
            self._seconds_until_below(client_times, limit.client_limit, now),
        )

    def _seconds_until_below(self, times: list[datetime], limit: int, now: datetime) -> int:
        """Seconds until fewer than `limit` of the sorted failure `times` are in the window."""
        if len(times) < limit:
            return 0
        # Once this failure leaves the window, only limit - 1 remain.
        frees_at = times[len(times) - limit] + self._rate_limit.window
        return max(1, math.ceil((frees_at - now).total_seconds()))

    # -- sessions ----------------------------------------------------------------------

    def _find_session(
        self, session: Session, session_token: object
    ) -> tuple[AuthSession, Account] | None:
        if not isinstance(session_token, str) or not (
            _TOKEN_MIN_LENGTH <= len(session_token) <= _TOKEN_MAX_LENGTH
        ):
            return None
        row = session.exec(
            select(AuthSession, Account)
            .join(Account, Account.id == AuthSession.account_id)
            .where(AuthSession.token_hash == hash_session_token(session_token))
        ).first()
        return None if row is None else (row[0], row[1])

    def resolve_session(self, session_token: str) -> AccountView | None:
        """Return the account a session token belongs to, if the session is still valid.

        Returns:
            The account, or None for an unknown, expired or revoked token, or when the
            account has been disabled or deleted.
        """
        now = self._now()
        with self._session() as session:
            found = self._find_session(session, session_token)
            if found is None:
                return None
            auth, account = found
            if (
                auth.revoked_at is not None
                or auth.expires_at <= now
                or account.disabled_at is not None
            ):
                return None
            if now - auth.last_seen_at >= LAST_SEEN_RESOLUTION:
                session.exec(
                    sa.update(AuthSession).where(AuthSession.id == auth.id).values(last_seen_at=now)
                )
                session.commit()
            return account.public()

    def sign_out(self, session_token: str) -> AccountView | None:
        """Revoke one session (this browser's).

        Returns:
            Whose session it was, so the caller can revoke that user's Sendbird tokens too;
            None when the token is unknown or was already revoked. An expired session is
            still revoked and reported, since Sendbird tokens may outlive it.
        """
        now = self._now()
        with self._session() as session:
            found = self._find_session(session, session_token)
            if found is None:
                return None
            auth, account = found
            revoked = session.exec(
                sa.update(AuthSession)
                .where(
                    AuthSession.id == auth.id,
                    AuthSession.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            session.commit()
            return account.public() if revoked.rowcount else None

    def sign_out_everywhere(self, account_id: int) -> int:
        """Revoke every session of an account (all browsers and devices).

        Returns:
            How many sessions were revoked.
        """
        now = self._now()
        with self._session() as session:
            count = self._revoke_all(session, account_id, now)
            session.commit()
            return count

    @staticmethod
    def _revoke_all(session: Session, account_id: int, now: datetime) -> int:
        result = session.exec(
            sa.update(AuthSession)
            .where(
                AuthSession.account_id == account_id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return result.rowcount

    # -- housekeeping ------------------------------------------------------------------

    def prune(self) -> PruneCounts:
        """Delete sign-in attempts outside the rate-limit window and long-ended sessions.

        Sign-ins do this on their own at most once per `prune_interval`; call it from a
        scheduled job if sign-ins are rare.
        """
        now = self._now()
        with self._session() as session:
            counts = self._prune(session, now)
            session.commit()
        return counts

    def _maybe_prune(self, session: Session, now: datetime) -> None:
        if self._last_prune is None or now - self._last_prune >= self._prune_interval:
            self._prune(session, now)

    def _prune(self, session: Session, now: datetime) -> PruneCounts:
        self._last_prune = now
        attempts = session.exec(
            sa.delete(SignInAttempt).where(SignInAttempt.at <= now - self._rate_limit.window)
        )
        ended_before = now - ENDED_SESSION_RETENTION
        sessions = session.exec(
            sa.delete(AuthSession).where(
                sa.or_(
                    AuthSession.expires_at <= ended_before,
                    AuthSession.revoked_at <= ended_before,
                )
            )
        )
        return PruneCounts(attempts=attempts.rowcount, sessions=sessions.rowcount)
