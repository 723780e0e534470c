"""Compact HS256 JSON Web Tokens (RFC 7519), just what the sandbox's session tokens need.

Sendbird's session tokens are HS256 JWTs whose payload is ``{"e": <expiry, Unix seconds>,
"u": <the user's internal number>, "v": <the user's token version>}``. The sandbox mints the
same shape with :func:`encode` and checks it with :func:`decode`. The encoding is canonical
(fixed key order, no whitespace), so the same payload and secret always give the same string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

HEADER: dict[str, str] = {"alg": "HS256", "typ": "JWT"}


class TokenFormatError(ValueError):
    """The value is not a well-formed HS256 JWT signed with the expected secret."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode`.

    Raises:
        TokenFormatError: Characters outside the base64url alphabet or an impossible length.
    """
    if not text or len(text) % 4 == 1 or not all(c.isalnum() or c in "-_" for c in text):
        raise TokenFormatError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise TokenFormatError("not base64url") from exc


def _canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode("utf-8")


def _sign(signing_input: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def encode(payload: dict[str, Any], secret: bytes) -> str:
    """Sign ``payload`` as a compact JWT with HS256.

    Args:
        payload: JSON-serialisable claims, serialised in their given order.
        secret: The HMAC key.
    """
    signing_input = (
        f"{b64url_encode(_canonical_json(HEADER))}.{b64url_encode(_canonical_json(payload))}"
    )
    signature = _sign(signing_input.encode("ascii"), secret)
    return f"{signing_input}.{b64url_encode(signature)}"


def decode(token: str, secret: bytes) -> dict[str, Any]:
    """Verify an HS256 JWT and return its payload (claims are not interpreted here).

    Raises:
        TokenFormatError: Not three base64url parts, a header other than HS256, a bad
            signature, or a payload that is not a JSON object.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenFormatError("a JWT has three parts")
    header_b64, payload_b64, signature_b64 = parts
    expected = _sign(f"{header_b64}.{payload_b64}".encode("ascii", "replace"), secret)
    if not hmac.compare_digest(expected, b64url_decode(signature_b64)):
        raise TokenFormatError("bad signature")
    try:
        header = json.loads(b64url_decode(header_b64))
        payload = json.loads(b64url_decode(payload_b64))
    except ValueError as exc:
        raise TokenFormatError("header or payload is not JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenFormatError("only HS256 is accepted")
    if not isinstance(payload, dict):
        raise TokenFormatError("the payload must be a JSON object")
    return payload


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a JWT without checking the signature (tests, inspection).

    Raises:
        TokenFormatError: Not a JWT with JSON header and payload.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenFormatError("a JWT has three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except ValueError as exc:
        raise TokenFormatError("header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenFormatError("header and payload must be JSON objects")
    return header, payload
