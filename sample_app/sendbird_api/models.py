"""Small immutable values returned by the client.

Only the fields the app needs are kept. In particular the user resource's
``access_token`` (a long-lived legacy credential Sendbird includes in user JSON) is
dropped on purpose so it cannot leak through these objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import SendbirdError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def datetime_to_unix_ms(value: datetime) -> int:
    """Convert an aware datetime to Unix milliseconds, exactly (no float rounding).

    Args:
        value: A timezone-aware datetime.

    Returns:
        Whole milliseconds since the Unix epoch (sub-millisecond parts truncated).

    Raises:
        ValueError: ``value`` is naive; a naive time would silently be read in the
            server's local zone and the token would expire hours early or late.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (use datetime.now(UTC))")
    return (value - _EPOCH) // _ONE_MS


def unix_ms_to_datetime(value: int) -> datetime:
    """Convert Unix milliseconds (Sendbird's time format) to an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=value)


@dataclass(frozen=True)
class SendbirdUser:
    """The parts of a Sendbird user resource this app uses.

    Attributes:
        user_id: Sendbird user id (the app derives it from the signed-in account).
        nickname: Display name shown in the widget.
        profile_url: Avatar URL, or ``""``.
        metadata: The user's string key/value metadata (``{}`` when it has none); the app
            marks the users it creates here, so it can tell them from users it did not.
    """

    user_id: str
    nickname: str
    profile_url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SendbirdUser:
        """Build a user from the JSON of ``GET``/``POST``/``PUT /v3/users``.

        Raises:
            SendbirdError: The JSON has no string ``user_id`` (not a user resource).
        """
        user_id = data.get("user_id")
        if not isinstance(user_id, str):
            raise SendbirdError("Sendbird returned a user without a user_id; unexpected response")
        raw_metadata = data.get("metadata")
        metadata = (
            {str(key): str(value) for key, value in raw_metadata.items()}
            if isinstance(raw_metadata, Mapping)
            else {}
        )
        return cls(
            user_id=user_id,
            nickname=str(data.get("nickname") or ""),
            profile_url=str(data.get("profile_url") or ""),
            metadata=metadata,
        )


@dataclass(frozen=True)
class SendbirdBot:
    """The parts of a bot resource (``GET /v3/bots/{bot_id}``) the set-up check uses.

    Sendbird nests the bot under ``"bot"`` (``bot_userid``, ``bot_nickname``...); the
    resource also holds the bot's own ``bot_token``, which is deliberately not kept.

    Attributes:
        bot_id: The bot's user id (what the widget gets as ``botId``).
        nickname: Its display name, or ``""``.
        app_id: The application the bot belongs to when the answer says so (the local
            sandbox does), else ``None``.
    """

    bot_id: str
    nickname: str = ""
    app_id: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SendbirdBot:
        """Build a bot from the JSON of ``GET /v3/bots/{bot_id}``.

        Raises:
            SendbirdError: The JSON has no string ``bot_userid`` (not a bot resource).
        """
        nested = data.get("bot")
        bot: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
        bot_id = bot.get("bot_userid", bot.get("bot_id"))
        if not isinstance(bot_id, str) or not bot_id:
            raise SendbirdError("Sendbird returned a bot without a bot_userid; unexpected response")
        app_id: object = None
        for source in (bot, data):
            for key in ("app_id", "application_id"):
                if app_id is None and isinstance(source.get(key), str) and source[key]:
                    app_id = source[key]
        return cls(
            bot_id=bot_id,
            nickname=str(bot.get("bot_nickname") or ""),
            app_id=app_id if isinstance(app_id, str) else None,
        )


@dataclass(frozen=True)
class SessionToken:
    """A session token as issued by ``POST /v3/users/{user_id}/token``.

    Attributes:
        token: The secret the widget presents to Sendbird; never shown in ``repr``.
        expires_at: When Sendbird will stop accepting it (aware, UTC).
    """

    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"SessionToken(token='[REDACTED]', expires_at={self.expires_at.isoformat()!r})"

    __str__ = __repr__

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SessionToken:
        """Build a token from ``{"token": "...", "expires_at": <unix ms>}``.

        Raises:
            SendbirdError: Either field is missing or has the wrong type.
        """
        token = data.get("token")
        expires_at = data.get("expires_at")
        if (
            not isinstance(token, str)
            or not token
            or isinstance(expires_at, bool)
            or not isinstance(expires_at, int)
        ):
            raise SendbirdError(
                "Sendbird's session-token response lacks 'token' or an integer 'expires_at'; "
                "unexpected response"
            )
        return cls(token=token, expires_at=unix_ms_to_datetime(expires_at))
