"""Database tables of the app's own accounts, and the public view the UI may hold.

The tables, all created by the hand-written migrations in `migrations/versions/`:

* `accounts`: who can sign in. The username is stored normalised (NFKC, lower-case) so
  `Alice`, `ALICE` and full-width `Alice` are one account, enforced by a unique index rather
  than by hoping every code path normalises the same way. `sendbird_key` is a random,
  never-changing key from which the account's Sendbird user id is derived. It is not the
  integer id, because ids start again at 1 whenever the database is recreated, and the
  next person to register would then get the previous person's Sendbird user and history.
* `auth_sessions` (model `SignInSession`): one row per sign-in. Only the SHA-256 of the
  opaque sign-in token is stored, so a leaked database (or backup) cannot be replayed as
  live sign-ins. (The table kept its first name; "session token" in this app means the
  Sendbird one.)
* `sign_in_attempts`: failed and successful sign-ins, kept for the rate-limit window. The
  limit lives in the database, not in process memory, so it survives restarts and is
  shared by every worker process.
* `device_tokens` (model `DeviceToken`, migration `0003`): browsers that have signed in
  to an account before. A browser gets a random device token after a successful sign-in
  and presents it with later sign-ins, whose failures then count in that device's own
  bucket (see `rate_limit`). Only the token's SHA-256 is stored.
* `registration_attempts` (migration `0003`): registrations that reached password
  hashing, kept for the registration-limit window, per client key.

The tables use their own SQLAlchemy registry and `MetaData` instead of SQLModel's global
one. Reflex registers `rx.Model` against the global metadata; keeping ours apart means
`reflex db makemigrations` never folds these tables into Reflex's own migration chain,
and our Alembic history (version table `accounts_alembic_version`) stays independent.

Times are timezone-aware UTC datetimes everywhere in Python. `UTCDateTime` stores them as
naive UTC (SQLite has no time zones; PostgreSQL gets a plain `timestamp`) and re-attaches
UTC when loading, so comparisons never mix naive and aware values. On PostgreSQL that is
deliberate: a `timestamp` is stored and returned as sent, whatever the session's
`TimeZone` setting, so no server or connection setting can shift the stored instants
(`timestamptz` would read naive values in the session's zone). Operators writing times by
hand in SQL must write UTC (`now() AT TIME ZONE 'UTC'`).

`Account.password_hash` is excluded from every Pydantic dump and from `repr`. The UI
layer holds `AccountView` (from `Account.public()`), a small frozen dataclass that has no
such field at all: Reflex serialises state to the browser, and a hash must never get there.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "SENDBIRD_KEY_LENGTH",
    "Account",
    "AccountView",
    "AccountsTable",
    "DeviceToken",
    "RegistrationAttempt",
    "SignInAttempt",
    "SignInSession",
    "UTCDateTime",
    "accounts_metadata",
    "new_sendbird_key",
]

# Named constraints let Alembic alter or drop them later (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

accounts_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
_accounts_registry = registry(metadata=accounts_metadata)

USERNAME_MAX_LENGTH = 32
DISPLAY_NAME_MAX_LENGTH = 80
PROFILE_URL_MAX_LENGTH = 2048
PASSWORD_HASH_MAX_LENGTH = 255
# Sign-in attempts record what was typed (normalised), which may be longer than a real
# username; it is cut to this length so a huge input cannot bloat the table.
ATTEMPT_USERNAME_MAX_LENGTH = 64
CLIENT_KEY_MAX_LENGTH = 128
TOKEN_HASH_LENGTH = 64  # SHA-256, hex
SENDBIRD_KEY_BYTES = 10
SENDBIRD_KEY_LENGTH = 2 * SENDBIRD_KEY_BYTES  # hex


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A `DateTime` column that takes and returns aware UTC datetimes, stored as naive UTC.

    Naive datetimes are refused on the way in: their meaning depends on the machine's
    time zone, which is exactly the ambiguity this type exists to remove.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Convert an aware datetime to naive UTC for storage.

        Raises:
            ValueError: if `value` is naive.
        """
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Re-attach UTC to a stored naive UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is not None:  # a driver that returns aware values
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)


def new_sendbird_key() -> str:
    """A fresh random key for an account's Sendbird user id: 20 lowercase hex digits.

    80 random bits make a collision with any key ever issued, in this database or in a
    previous one that shared the Sendbird application, practically impossible. Hex keeps
    the id within the characters Sendbird accepts in user ids and URL paths.
    """
    return secrets.token_hex(SENDBIRD_KEY_BYTES)


class AccountsTable(SQLModel, registry=_accounts_registry):
    """Base of the accounts tables: binds them to `accounts_metadata`, not SQLModel's global."""


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the UI layer may know about an account; safe to keep in Reflex state.

    Attributes:
        id: The account's database id (never part of the Sendbird user id: ids are
            reused when the database is recreated).
        username: The normalised username.
        display_name: The name shown in the chat (the Sendbird nickname).
        profile_url: The avatar URL, or "" when the account has none.
        sendbird_key: The account's random, never-changing key; the Sendbird user id is
            derived from it (see `sample_app.identity`).
    """

    id: int
    username: str
    display_name: str
    profile_url: str = ""
    # Keyword-only and required: an empty key would give every account one shared user id.
    sendbird_key: str = field(kw_only=True)


class Account(AccountsTable, table=True):
    """A person who can sign in to this app."""

    __tablename__ = "accounts"
    __table_args__ = (
        sa.Index("ix_accounts_username", "username", unique=True),
        sa.Index("ix_accounts_sendbird_key", "sendbird_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=USERNAME_MAX_LENGTH, nullable=False)
    # Set once at creation and never changed: changing it would orphan the Sendbird user.
    sendbird_key: str = Field(
        default_factory=new_sendbird_key, max_length=SENDBIRD_KEY_LENGTH, nullable=False
    )
    display_name: str = Field(max_length=DISPLAY_NAME_MAX_LENGTH, nullable=False)
    profile_url: str | None = Field(default=None, max_length=PROFILE_URL_MAX_LENGTH)
    # Never serialised (see `model_dump`) and never shown in repr / tracebacks.
    password_hash: str = Field(
        max_length=PASSWORD_HASH_MAX_LENGTH, nullable=False, exclude=True, repr=False
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Set to disable the account: its sign-in tokens stop resolving and it cannot sign in.
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def public(self) -> AccountView:
        """The view of this account the UI layer may hold (no password hash).

        Raises:
            ValueError: if the account has not been saved yet (it has no id).
        """
        if self.id is None:
            raise ValueError("the account has no id yet: save it first")
        return AccountView(
            id=self.id,
            username=self.username,
            display_name=self.display_name,
            profile_url=self.profile_url or "",
            sendbird_key=self.sendbird_key,
        )

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """Dump the fields, never including `password_hash` (even if asked to).

        Reflex serialises SQLModel objects with `model_dump`; this keeps the hash out of
        anything that could reach the browser or a log, whatever `include` says.
        """
        data = super().model_dump(**kwargs)
        data.pop("password_hash", None)
        return data

    def model_dump_json(self, **kwargs: Any) -> str:
        """Dump to JSON without `password_hash` (see `model_dump`)."""
        exclude = kwargs.pop("exclude", None)
        if exclude is None:
            exclude = {"password_hash"}
        elif isinstance(exclude, dict):
            exclude = {**exclude, "password_hash": True}
        else:
            exclude = {*exclude, "password_hash"}
        return super().model_dump_json(exclude=exclude, **kwargs)


@sa.event.listens_for(Account, "before_update")
def _refuse_sendbird_key_change(_mapper: Any, _connection: Any, target: Account) -> None:
    """Refuse to save an account whose `sendbird_key` was changed after it was stored.

    A new key would silently move the account to another Sendbird user (losing its chat
    history), and copying another account's key would hand over that account's user.
    """
    if sa.inspect(target).attrs.sendbird_key.history.deleted:
        raise ValueError("an account's sendbird_key never changes once it is stored")


class SignInSession(AccountsTable, table=True):
    """One sign-in of one account: a revocable, expiring sign-in session.

    The browser holds the opaque sign-in token; the database holds only its SHA-256, found
    by an indexed equality lookup (so no timing-sensitive string comparison is involved).
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (
        sa.Index("ix_auth_sessions_token_hash", "token_hash", unique=True),
        sa.Index("ix_auth_sessions_account_id", "account_id"),
        sa.Index("ix_auth_sessions_expires_at", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=TOKEN_HASH_LENGTH, nullable=False)
    account_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        )
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SignInAttempt(AccountsTable, table=True):
    """One sign-in attempt, kept only for the rate-limit window.

    Attributes:
        username: What was typed, normalised like a username (it may match no account).
        client_key: Who typed it, usually the client IP; "" when unknown.
        at: When.
        succeeded: Whether the password was right.
    """

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        sa.Index("ix_sign_in_attempts_username_at", "username", "at"),
        sa.Index("ix_sign_in_attempts_client_key_at", "client_key", "at"),
        sa.Index("ix_sign_in_attempts_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=ATTEMPT_USERNAME_MAX_LENGTH, nullable=False)
    client_key: str = Field(max_length=CLIENT_KEY_MAX_LENGTH, nullable=False)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    succeeded: bool = Field(nullable=False)


class DeviceToken(AccountsTable, table=True):
    """A browser that has signed in to an account: its device token's hash, bound to it.

    The token itself is a random bearer value kept by the browser; like sign-in tokens it
    has full entropy, so its SHA-256 (looked up through a unique index) is all that is
    stored. It proves nothing but "this browser signed in as this account before", which
    is what lets its sign-ins escape other clients' failures.
    """

    __tablename__ = "device_tokens"
    __table_args__ = (
        sa.Index("ix_device_tokens_token_hash", "token_hash", unique=True),
        sa.Index("ix_device_tokens_account_id", "account_id"),
        sa.Index("ix_device_tokens_last_used_at", "last_used_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=TOKEN_HASH_LENGTH, nullable=False)
    account_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        )
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_used_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RegistrationAttempt(AccountsTable, table=True):
    """One registration that got as far as hashing its password, kept for the limit window.

    Attributes:
        client_key: Who registered, usually the client IP; "" when unknown.
        at: When.
    """

    __tablename__ = "registration_attempts"
    __table_args__ = (
        sa.Index("ix_registration_attempts_client_key_at", "client_key", "at"),
        sa.Index("ix_registration_attempts_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_key: str = Field(max_length=CLIENT_KEY_MAX_LENGTH, nullable=False)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
