"""Session tokens and session keys: issuing, checking and the error each failure maps to.

The two credentials of a Sendbird chat session behave differently and the SDK reacts to each
failure code in its own way, so the mapping lives in one place:

* session token (from ``POST /v3/users/{id}/token``): expired or unknown → 400302
  (the SDK asks ``onSessionTokenRequired`` for a new one), revoked → 400310 (session closed);
* session key (from LOGI or ``POST /v3/users/{id}/session_key``): expired → 400309 (the SDK
  refreshes the key with its token), revoked → 400310, unknown → 400303.

Plaintext values leave this module only in return values that go straight into a response.
Everything that is stored or logged is a SHA-256 digest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .config import SandboxConfig
from .httputil import ApiError, now_ms
from .store import (
    CREDENTIAL_EXPIRED,
    CREDENTIAL_OK,
    CREDENTIAL_REVOKED,
    CredentialCheck,
    Store,
    sha256_hex,
)

TOKEN_BYTES = 96  # 128 URL-safe characters, inside the 119-168 range Sendbird documents.
SESSION_KEY_BYTES = 30

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

    def issue_token(self, user_id: str, expires_at: int | None = None) -> IssuedToken:
        """Mint a session token for an existing user.

        Args:
            user_id: Owner.
            expires_at: Unix milliseconds; ``None`` means now + ``default_token_ttl``.
        """
        now = now_ms()
        if expires_at is None:
            expires_at = now + int(self.config.default_token_ttl * 1000)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.store.add_token(user_id, sha256_hex(token), now, expires_at)
        return IssuedToken(token=token, user_id=user_id, expires_at=expires_at)

    def issue_session_key(self, user_id: str) -> IssuedKey:
        """Mint a session key valid for ``session_key_ttl`` seconds."""
        now = now_ms()
        key = secrets.token_urlsafe(SESSION_KEY_BYTES)
        digest = sha256_hex(key)
        expires_at = now + int(self.config.session_key_ttl * 1000)
        self.store.add_session_key(user_id, digest, now, expires_at)
        return IssuedKey(key=key, key_sha256=digest, user_id=user_id, expires_at=expires_at)

    def check_token(self, token: str) -> CredentialCheck:
        """Classify a session token without raising."""
        return self.store.check_token(sha256_hex(token), now_ms())

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
