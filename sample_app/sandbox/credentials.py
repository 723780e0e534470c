"""Session tokens and session keys: issuing, checking and the error each failure maps to.

The two credentials of a Sendbird chat session behave differently and the SDK reacts to each
failure code in its own way, so the mapping lives in one place:

* session token (from ``POST /v3/users/{id}/token``): expired or unknown → 400302
  (the SDK asks ``onSessionTokenRequired`` for a new one), revoked → 400310 (session closed);
* session key (from LOGI or ``POST /v3/users/{id}/session_key``): expired → 400309 (the SDK
  refreshes the key with its token), revoked → 400310, unknown → 400303.

Session tokens have the shape Sendbird documents: HS256 JWTs with the payload
``{"e": <expiry, Unix seconds>, "u": <the user's token number>, "v": <the user's token
version>}``, signed with a random secret kept in the database (so they survive a restart on the
same file). They are stateless and deterministic: the same user, version and expiry second
always give the same string. Checking one needs no lookup of the token itself: signature,
expiry, and ``v`` equal to the user's current version. "Revoke all" increments the version
(older tokens answer 400310); the control surface's expire-token increments it too, but marks
the older versions as expired (400302) instead of revoked.

Plaintext values leave this module only in return values that go straight into a response.
Everything that is stored or logged is a SHA-256 digest.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import hs256
from .config import SandboxConfig
from .httputil import ApiError, now_ms
from .store import (
    CREDENTIAL_EXPIRED,
    CREDENTIAL_OK,
    CREDENTIAL_REVOKED,
    CREDENTIAL_UNKNOWN,
    CredentialCheck,
    Store,
    sha256_hex,
)

SESSION_KEY_BYTES = 30
SECRET_META_KEY = "session_token_secret"  # noqa: S105 - the name of a setting, not a secret

TOKEN_EXPIRED_MESSAGE = "Session token expired."  # noqa: S105 - not a secret
TOKEN_INVALID_MESSAGE = "Invalid session token."  # noqa: S105 - not a secret
SESSION_REVOKED_MESSAGE = "The session has been revoked."
KEY_EXPIRED_MESSAGE = "This session has expired."
KEY_INVALID_MESSAGE = "Invalid session key."


def short_hash(secret: str) -> str:
    """First 12 hex digits of the SHA-256 of a secret, the only form that may be logged."""
    return sha256_hex(secret)[:12]


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued session token (plaintext returned exactly once)."""

    token: str
    user_id: str
    expires_at: int


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued session key."""

    key: str
    key_sha256: str
    user_id: str
    expires_at: int


class Credentials:
    """Issues and checks credentials against the store.

    Args:
        store: Persistence.
        config: Supplies the default token lifetime and the session key TTL.
    """

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config
        self._secret = bytes.fromhex(store.meta_value(SECRET_META_KEY, secrets.token_hex(32)))

    def issue_token(self, user_id: str, expires_at: int | None = None) -> IssuedToken:
        """Mint a session token for an existing user and record the issuance.

        Args:
            user_id: Owner.
            expires_at: Unix milliseconds; ``None`` means now + ``default_token_ttl``. The
                token carries whole seconds, so the answer's ``expires_at`` is rounded down to
                a multiple of 1000.
        """
        now = now_ms()
        if expires_at is None:
            expires_at = now + int(self.config.default_token_ttl * 1000)
        expiry_seconds = expires_at // 1000
        subject = self.store.token_subject(user_id)
        token = hs256.encode(
            {"e": expiry_seconds, "u": subject["number"], "v": subject["version"]}, self._secret
        )
        self.store.add_token(
            user_id, sha256_hex(token), subject["version"], now, expiry_seconds * 1000
        )
        return IssuedToken(token=token, user_id=user_id, expires_at=expiry_seconds * 1000)

    def issue_session_key(self, user_id: str) -> IssuedKey:
        """Mint a session key valid for ``session_key_ttl`` seconds."""
        now = now_ms()
        key = secrets.token_urlsafe(SESSION_KEY_BYTES)
        digest = sha256_hex(key)
        expires_at = now + int(self.config.session_key_ttl * 1000)
        self.store.add_session_key(user_id, digest, now, expires_at)
        return IssuedKey(key=key, key_sha256=digest, user_id=user_id, expires_at=expires_at)

    def check_token(self, token: str) -> CredentialCheck:
        """Classify a session token without raising.

        ``unknown``: not a JWT signed by this sandbox, malformed claims, or a user number
        that no longer exists (deleted user); ``revoked``: a version from before the user's
        last revoke-all; ``expired``: ``e`` has passed or a version from before the last
        expire-token; ``ok`` otherwise.
        """
        try:
            claims = hs256.decode(token, self._secret)
        except hs256.TokenFormatError:
            return CredentialCheck(CREDENTIAL_UNKNOWN)
        expiry, number, version = claims.get("e"), claims.get("u"), claims.get("v")
        if not all(type(value) is int for value in (expiry, number, version)):
            return CredentialCheck(CREDENTIAL_UNKNOWN)
        assert isinstance(expiry, int) and isinstance(number, int) and isinstance(version, int)
        subject = self.store.subject_by_number(number)
        if subject is None or version > int(subject["version"]):
            return CredentialCheck(CREDENTIAL_UNKNOWN)
        user_id, expires_at = str(subject["user_id"]), expiry * 1000
        if version < int(subject["revoked_below"]):
            return CredentialCheck(CREDENTIAL_REVOKED, user_id, expires_at)
        if version < int(subject["version"]) or now_ms() >= expires_at:  # expire-token or `e`
            return CredentialCheck(CREDENTIAL_EXPIRED, user_id, expires_at)
        return CredentialCheck(CREDENTIAL_OK, user_id, expires_at)

    def check_session_key_digest(self, key_sha256: str) -> CredentialCheck:
        """Classify a session key by digest (sockets remember only the digest)."""
        return self.store.check_session_key(key_sha256, now_ms())

    def require_token(self, token: str | None, user_id: str | None = None) -> str:
        """Return the owner of a valid token.

        Args:
            token: The token presented by the client (may be missing).
            user_id: When given, the token must belong to this user.

        Raises:
            ApiError: 400302 (missing, unknown, expired, other user) or 400310 (revoked).
        """
        if not token or not isinstance(token, str):
            raise ApiError(400302, TOKEN_INVALID_MESSAGE)
        check = self.check_token(token)
        raise_for_token(check)
        if user_id is not None and check.user_id != user_id:
            raise ApiError(400302, TOKEN_INVALID_MESSAGE)
        return check.user_id

    def require_session_key(self, key: str) -> str:
        """Return the owner of a valid session key.

        Raises:
            ApiError: 400309 (expired), 400310 (revoked) or 400303 (unknown).
        """
        check = self.store.check_session_key(sha256_hex(key), now_ms())
        raise_for_session_key(check)
        return check.user_id


def token_row_state(row: Mapping[str, Any], now: int) -> tuple[bool, bool]:
    """``(revoked, expired)`` of an issuance row of :meth:`Store.list_tokens`.

    Revoked: its version is older than the user's last revoke-all. Expired: ``e`` has passed,
    or its version is older than the user's last expire-token.
    """
    version, revoked_below, expired_below = (
        row["version"],
        row["revoked_below"],
        row["expired_below"],
    )
    if revoked_below is None or expired_below is None:  # the user is gone
        return False, True
    revoked = int(version) < int(revoked_below)
    expired = now >= int(row["expires_at"]) or int(version) < int(expired_below)
    return revoked, expired


def raise_for_token(check: CredentialCheck) -> None:
    """Raise the error the SDK expects for a token that is not ``ok``."""
    if check.state == CREDENTIAL_OK:
        return
    if check.state == CREDENTIAL_REVOKED:
        raise ApiError(400310, SESSION_REVOKED_MESSAGE)
    if check.state == CREDENTIAL_EXPIRED:
        raise ApiError(400302, TOKEN_EXPIRED_MESSAGE)
    raise ApiError(400302, TOKEN_INVALID_MESSAGE)


def raise_for_session_key(check: CredentialCheck) -> None:
    """Raise the error the SDK expects for a session key that is not ``ok``."""
    if check.state == CREDENTIAL_OK:
        return
    if check.state == CREDENTIAL_REVOKED:
        raise ApiError(400310, SESSION_REVOKED_MESSAGE)
    if check.state == CREDENTIAL_EXPIRED:
        raise ApiError(400309, KEY_EXPIRED_MESSAGE)
    raise ApiError(400303, KEY_INVALID_MESSAGE)
