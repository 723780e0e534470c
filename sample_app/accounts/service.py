"""Register, sign in, resolve and end sign-ins of the app's own accounts.

`AccountService` is the only way the rest of the app touches accounts. It hands out
`AccountView` objects (never table rows), so a password hash cannot end up in Reflex
state by accident.

A sign-in gives an opaque bearer *sign-in token* (`secrets.token_urlsafe(32)`, 256
random bits), returned once to the person signing in. ("Session token" is reserved for
Sendbird's tokens, which are derived from the account this service resolves.) The
database keeps only the token's SHA-256 in a `SignInSession` row: the token has full
entropy, so a slow hash would add nothing, and a leaked table cannot be replayed. Lookups
are by that hash through a unique index, so there is no string comparison whose timing
could leak a prefix. Sign-in sessions expire after `session_ttl` and can be revoked
(`sign_out`, `sign_out_everywhere`); a revoked token never resolves again. An account
whose `disabled_at` is set (in the database; the app has no operation for it) can neither
sign in nor resolve its existing sign-in tokens.

Sign-in failures are limited by `SignInRateLimiter` (see `rate_limit` for what it counts),
registrations by `RegistrationRateLimiter`, before any password is hashed. A successful
sign-in also gives the browser a *device token* (random, stored as a SHA-256 in
`device_tokens`, bound to the account): presented with later sign-ins to that account, it
puts them in their own rate-limit bucket, so failures made by others cannot lock the
account's owner out of a browser that has signed in before. Unknown usernames cost the
same argon2 verification as wrong passwords and produce the same message, so neither
timing nor wording reveals which usernames exist.

The methods are synchronous (database I/O and a deliberately slow hash). Call `register`
and `sign_in` from async Reflex handlers on an executor of their own (see
`Services.hashing_executor`), so a flood of hashing cannot hold up the default executor
that `resolve_sign_in` and every token request run on.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypeGuard

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sample_app.accounts.errors import (
    ACCOUNT_DISABLED_MESSAGE,
    USERNAME_TAKEN_MESSAGE,
    WRONG_CREDENTIALS_MESSAGE,
    RegistrationError,
    SignInError,
    TooManyAttemptsError,
    TooManyRegistrationsError,
)
from sample_app.accounts.models import Account, AccountView, DeviceToken, SignInSession
from sample_app.accounts.passwords import (
    MAX_PASSWORD_LENGTH,
    Argon2Hasher,
    check_password_strength,
)
from sample_app.accounts.rate_limit import (
    AttemptKey,
    RateLimit,
    RegistrationLimit,
    RegistrationRateLimiter,
    SignInRateLimiter,
)
from sample_app.accounts.validation import (
    normalize_username,
    validate_display_name,
    validate_profile_url,
    validate_username,
)

__all__ = [
    "DEFAULT_DEVICE_TOKEN_TTL",
    "DEFAULT_SESSION_TTL",
    "AccountService",
    "PruneCounts",
    "ResolvedSignIn",
    "SignedIn",
    "hash_sign_in_token",
    "is_plausible_token",
    "utc_now",
]

# How long a sign-in session lasts unless `AccountService(session_ttl=...)` says otherwise.
DEFAULT_SESSION_TTL = timedelta(hours=12)
# A device token unused for this long no longer counts as a known browser (and is pruned).
DEFAULT_DEVICE_TOKEN_TTL = timedelta(days=90)
# `last_seen_at` is informative only; writing it on every request would turn every page
# view into a database write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Ended (expired or revoked) sign-in sessions are deleted this long after they ended.
ENDED_SESSION_RETENTION = timedelta(days=1)
# A token from `secrets.token_urlsafe(32)` has 43 characters; anything far off that is not
# one of ours and is refused before touching the database.
_TOKEN_MIN_LENGTH = 32
_TOKEN_MAX_LENGTH = 128
# Passwords longer than this cannot be right (the policy caps them at 256 characters), so
# they are refused without hashing megabytes of attacker-supplied input.
_MAX_VERIFIED_PASSWORD_LENGTH = 4 * MAX_PASSWORD_LENGTH


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def hash_sign_in_token(sign_in_token: str) -> str:
    """Return the SHA-256 hex digest under which a sign-in token is stored."""
    return hashlib.sha256(sign_in_token.encode("utf-8")).hexdigest()


def is_plausible_token(value: object) -> TypeGuard[str]:
    """Whether `value` has the shape of our tokens; others are refused before any hashing."""
    return isinstance(value, str) and _TOKEN_MIN_LENGTH <= len(value) <= _TOKEN_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in.

    Attributes:
        account: Who signed in.
        sign_in_token: The opaque sign-in token, returned only here (the database keeps
            only its hash); give it to this browser and nobody else.
        expires_at: When the sign-in session ends (aware UTC).
        device_token: The device token this browser should keep (and present with every
            later sign-in): the one it presented, if valid for this account, else a new one.
    """

    account: AccountView
    sign_in_token: str = field(repr=False)
    expires_at: datetime
    device_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedSignIn:
    """A sign-in token that resolved: whose it is, and until when it can.

    Attributes:
        account: Whose sign-in it is.
        expires_at: When the sign-in session ends (aware UTC): whoever keeps the answer
            (`sample_app.sign_in_cache`) must not keep it past this.
    """

    account: AccountView
    expires_at: datetime


class PruneCounts(NamedTuple):
    """How many rows `AccountService.prune` deleted.

    Attributes:
        attempts: Sign-in attempts that had left the rate-limit window.
        sessions: Sign-in sessions that had ended more than a day before.
        registrations: Registration attempts that had left the registration windows.
        devices: Device tokens unused for longer than the device-token lifetime.
    """

    attempts: int
    sessions: int
    registrations: int = 0
    devices: int = 0


class AccountService:
    """The app's own accounts: registration, sign-in, sign-in sessions and the rate limit.

    Args:
        engine: Where the accounts tables live (see `create_engine_for`), already migrated
            with `upgrade_database`.
        hasher: Password hashing; the default uses argon2-cffi's recommended cost. Tests
            pass `Argon2Hasher(argon2.profiles.CHEAPEST)`.
        clock: Returns the current aware datetime; tests inject a controllable one.
        session_ttl: How long a sign-in session (and so its sign-in token) lasts.
        rate_limit: The sign-in failure limits.
        registration_limit: How many registrations may reach password hashing.
        device_token_ttl: How long an unused device token keeps its browser known.
        prune_interval: How often (at most) sign-ins delete attempts that left the window
            and sign-in sessions that ended over a day ago.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        hasher: Argon2Hasher | None = None,
        clock: Callable[[], datetime] = utc_now,
        session_ttl: timedelta = DEFAULT_SESSION_TTL,
        rate_limit: RateLimit | None = None,
        registration_limit: RegistrationLimit | None = None,
        device_token_ttl: timedelta = DEFAULT_DEVICE_TOKEN_TTL,
        prune_interval: timedelta = timedelta(minutes=1),
    ) -> None:
        if session_ttl <= timedelta(0):
            raise ValueError("session_ttl must be positive")
        self._engine = engine
        self._hasher = hasher or Argon2Hasher()
        self._clock = clock
        self._session_ttl = session_ttl
        self._limiter = SignInRateLimiter(rate_limit or RateLimit())
        self._registrations = RegistrationRateLimiter(registration_limit or RegistrationLimit())
        self._device_token_ttl = device_token_ttl
        self._prune_interval = prune_interval
        self._last_prune: datetime | None = None

    @property
    def engine(self) -> Engine:
        """The accounts database's engine (the readiness check pings it)."""
        return self._engine

    def now(self) -> datetime:
        """The current time on this service's clock (aware UTC), the one sign-ins expire by."""
        return self._now()

    # -- helpers -----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime; it must be timezone-aware")
        return now.astimezone(UTC)

    def _db(self) -> Session:
        """Open a database session (unrelated to sign-in sessions)."""
        return Session(self._engine, expire_on_commit=False)

    @staticmethod
    def _username_taken(db: Session, username: str) -> bool:
        return db.exec(select(Account.id).where(Account.username == username)).first() is not None

    # -- accounts ----------------------------------------------------------------------

    def register(
        self,
        username: str,
        password: str,
        display_name: str,
        profile_url: str = "",
        *,
        client_key: str = "",
    ) -> AccountView:
        """Create an account after checking every field.

        The username is stored normalised. The password is hashed only once everything
        else is valid and the registration limit has admitted it, and the account is one
        row inserted in one transaction, so a failure leaves nothing behind.

        Args:
            username: As typed.
            password: As typed.
            display_name: As typed.
            profile_url: As typed; "" for none.
            client_key: Who is registering, usually the client IP; "" means unknown (then
                only the overall limit applies).

        Raises:
            RegistrationError: listing every problem at once, per field; a taken
                username (including one taken concurrently) is "That username is taken.".
            TooManyRegistrationsError: too many registrations from this client or from
                everyone just now; nothing was hashed or created.
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
            with self._db() as db:
                if self._username_taken(db, clean_username):
                    errors["username"] = [USERNAME_TAKEN_MESSAGE]
        if errors:
            raise RegistrationError(errors)
        with self._db() as db:
            retry_after, per_client = self._registrations.admit(db, client_key, self._now())
        if retry_after:
            raise TooManyRegistrationsError(retry_after, per_client)

        account = Account(
            username=clean_username,
            display_name=clean_name,
            profile_url=clean_url,
            password_hash=self._hasher.hash_password(password),
            created_at=self._now(),
        )
        with self._db() as db:
            db.add(account)
            try:
                db.commit()
            except IntegrityError:
                # Someone registered the same name between our check and our insert.
                db.rollback()
                if self._username_taken(db, clean_username):
                    raise RegistrationError({"username": [USERNAME_TAKEN_MESSAGE]}) from None
                raise
            return account.public()

    # -- signing in --------------------------------------------------------------------

    def sign_in(
        self, username: str, password: str, client_key: str, device_token: str = ""
    ) -> SignedIn:
        """Check the credentials and start a sign-in session.

        Args:
            username: As typed; it is normalised like at registration.
            password: As typed.
            client_key: Who is signing in, usually the client IP. "" means unknown: then
                only the per-username limit applies (unless a device token is valid).
            device_token: The device token this browser got from an earlier sign-in, or
                "". When it is valid for this username, the attempt counts in that
                device's own bucket (see `rate_limit`); anything else is ignored.

        Returns:
            The account, the new sign-in token (the only time it is ever available) and
            the device token the browser should keep.

        Raises:
            TooManyAttemptsError: too many recent failures in this attempt's buckets;
                the password was not checked and nothing was recorded.
            SignInError: wrong username or password (one message for both), or a
                disabled account.
        """
        now = self._now()
        with self._db() as db:
            device = self._find_device(db, normalize_username(username), device_token, now)
            key = AttemptKey.of(username, client_key, None if device is None else device.id)
            # Written first, then the others are counted: a concurrent burst cannot pass
            # together (see `rate_limit`).
            attempt_id = self._limiter.begin(db, key, now)
            retry_after = self._limiter.retry_after(db, key, now, attempt_id)
            if retry_after:
                self._limiter.withdraw(db, attempt_id)
                db.commit()
                raise TooManyAttemptsError(retry_after)
            account = None
            if key.username:
                account = db.exec(select(Account).where(Account.username == key.username)).first()

        # From here on the attempt is already recorded as a failure; only success changes it.
        if account is None or len(password) > _MAX_VERIFIED_PASSWORD_LENGTH:
            self._hasher.burn_verify(password[:_MAX_VERIFIED_PASSWORD_LENGTH])
            raise self._failed(now, WRONG_CREDENTIALS_MESSAGE)
        check = self._hasher.verify_password(account.password_hash, password)
        if not check:
            raise self._failed(now, WRONG_CREDENTIALS_MESSAGE)
        if account.disabled_at is not None:
            # Only someone who knows the password learns that the account is disabled.
            raise self._failed(now, ACCOUNT_DISABLED_MESSAGE)

        assert account.id is not None  # loaded from the database
        new_hash = self._hasher.hash_password(password) if check.needs_rehash else None
        sign_in_token = secrets.token_urlsafe(32)
        expires_at = now + self._session_ttl
        with self._db() as db:
            if new_hash is not None:
                db.exec(
                    sa.update(Account)
                    .where(col(Account.id) == account.id)
                    .values(password_hash=new_hash)
                )
            db.add(
                SignInSession(
                    token_hash=hash_sign_in_token(sign_in_token),
                    account_id=account.id,
                    created_at=now,
                    expires_at=expires_at,
                    last_seen_at=now,
                )
            )
            if device is not None:
                kept_device_token = device_token
                db.exec(
                    sa.update(DeviceToken)
                    .where(col(DeviceToken.id) == device.id)
                    .values(last_used_at=now)
                )
            else:
                kept_device_token = secrets.token_urlsafe(32)
                db.add(
                    DeviceToken(
                        token_hash=hash_sign_in_token(kept_device_token),
                        account_id=account.id,
                        created_at=now,
                        last_used_at=now,
                    )
                )
            self._limiter.succeed(db, attempt_id)
            self._maybe_prune(db, now)
            db.commit()
        return SignedIn(
            account=account.public(),
            sign_in_token=sign_in_token,
            expires_at=expires_at,
            device_token=kept_device_token,
        )

    def _find_device(
        self, db: Session, username: str, device_token: object, now: datetime
    ) -> DeviceToken | None:
        """The device token row, if `device_token` is a live one of the account `username`."""
        if not isinstance(device_token, str) or not (
            _TOKEN_MIN_LENGTH <= len(device_token) <= _TOKEN_MAX_LENGTH
        ):
            return None
        return db.exec(
            select(DeviceToken)
            .join(Account, col(Account.id) == col(DeviceToken.account_id))
            .where(
                DeviceToken.token_hash == hash_sign_in_token(device_token),
                Account.username == username,
                col(DeviceToken.last_used_at) > now - self._device_token_ttl,
            )
        ).first()

    def _failed(self, now: datetime, message: str) -> SignInError:
        """Return the error for an attempt already recorded as a failure (and maybe prune)."""
        with self._db() as db:
            self._maybe_prune(db, now)
            db.commit()
        return SignInError(message)

    # -- sign-in sessions --------------------------------------------------------------

    def _find_sign_in(
        self, db: Session, sign_in_token: object
    ) -> tuple[SignInSession, Account] | None:
        if not is_plausible_token(sign_in_token):
            return None
        row = db.exec(
            select(SignInSession, Account)
            .join(Account, col(Account.id) == col(SignInSession.account_id))
            .where(SignInSession.token_hash == hash_sign_in_token(sign_in_token))
        ).first()
        return None if row is None else (row[0], row[1])

    def resolve_sign_in(self, sign_in_token: str) -> AccountView | None:
        """Return the account a sign-in token belongs to, if its sign-in is still valid.

        Returns:
            The account, or None for an unknown, expired or revoked token, or when the
            account has been disabled or deleted.
        """
        resolved = self.resolve_sign_in_session(sign_in_token)
        return None if resolved is None else resolved.account

    def resolve_sign_in_session(self, sign_in_token: str) -> ResolvedSignIn | None:
        """Like `resolve_sign_in`, with the sign-in's expiry, for callers that keep the answer.

        Returns:
            The account and when its sign-in ends, or None as for `resolve_sign_in`.
        """
        now = self._now()
        with self._db() as db:
            found = self._find_sign_in(db, sign_in_token)
            if found is None:
                return None
            sign_in, account = found
            if (
                sign_in.revoked_at is not None
                or sign_in.expires_at <= now
                or account.disabled_at is not None
            ):
                return None
            if now - sign_in.last_seen_at >= LAST_SEEN_RESOLUTION:
                db.exec(
                    sa.update(SignInSession)
                    .where(col(SignInSession.id) == sign_in.id)
                    .values(last_seen_at=now)
                )
                db.commit()
            return ResolvedSignIn(account.public(), sign_in.expires_at)

    def sign_out(self, sign_in_token: str) -> AccountView | None:
        """Revoke one sign-in token (this browser's).

        Returns:
            Whose sign-in it was, so the caller can revoke that user's Sendbird session
            tokens too; None when the token is unknown or was already revoked. An expired
            sign-in is still revoked and reported, since Sendbird tokens may outlive it.
        """
        now = self._now()
        with self._db() as db:
            found = self._find_sign_in(db, sign_in_token)
            if found is None:
                return None
            sign_in, account = found
            revoked = db.exec(
                sa.update(SignInSession)
                .where(
                    col(SignInSession.id) == sign_in.id,
                    col(SignInSession.revoked_at).is_(None),
                )
                .values(revoked_at=now)
            )
            db.commit()
            return account.public() if revoked.rowcount else None

    def sign_out_everywhere(self, account_id: int) -> int:
        """Revoke every sign-in token of an account (all browsers and devices).

        Returns:
            How many sign-in sessions were revoked.
        """
        now = self._now()
        with self._db() as db:
            revoked = db.exec(
                sa.update(SignInSession)
                .where(
                    col(SignInSession.account_id) == account_id,
                    col(SignInSession.revoked_at).is_(None),
                )
                .values(revoked_at=now)
            )
            db.commit()
            return revoked.rowcount

    # -- housekeeping ------------------------------------------------------------------

    def prune(self) -> PruneCounts:
        """Delete attempts the limits no longer count, long-ended sign-ins, stale devices.

        Sign-ins do this on their own at most once per `prune_interval`; call it from a
        scheduled job if sign-ins are rare.
        """
        now = self._now()
        with self._db() as db:
            counts = self._prune(db, now)
            db.commit()
        return counts

    def _maybe_prune(self, db: Session, now: datetime) -> None:
        if self._last_prune is None or now - self._last_prune >= self._prune_interval:
            self._prune(db, now)

    def _prune(self, db: Session, now: datetime) -> PruneCounts:
        self._last_prune = now
        attempts = self._limiter.prune(db, now)
        registrations = self._registrations.prune(db, now)
        devices = db.exec(
            sa.delete(DeviceToken).where(
                col(DeviceToken.last_used_at) <= now - self._device_token_ttl
            )
        )
        ended_before = now - ENDED_SESSION_RETENTION
        sessions = db.exec(
            sa.delete(SignInSession).where(
                sa.or_(
                    col(SignInSession.expires_at) <= ended_before,
                    col(SignInSession.revoked_at) <= ended_before,
                )
            )
        )
        return PruneCounts(
            attempts=attempts,
            sessions=sessions.rowcount,
            registrations=registrations,
            devices=devices.rowcount,
        )
