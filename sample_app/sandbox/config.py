"""Configuration of the Sendbird sandbox.

One frozen dataclass holds every knob, so the same values drive the embedded server used by
tests, the lifespan task inside the Reflex backend and the ``python -m sample_app.sandbox`` CLI.
Its defaults (app id, bot id, bot nickname, session-key lifetime) are the constants of
:mod:`sample_app.config`, where the ``SANDBOX_*`` variables are read as well
(:func:`sample_app.config.read_sandbox_settings`); :meth:`SandboxConfig.from_settings` turns
what that function returns into a configuration.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field

from sample_app.config import (
    DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS,
    SANDBOX_APP_ID,
    SANDBOX_BOT_ID,
    SANDBOX_BOT_NICKNAME,
    SandboxSettings,
    sandbox_api_token_problem,
)

SEVEN_DAYS_SECONDS = 7 * 24 * 3600


def check_api_token_value(token: str) -> None:
    """Refuse an API token that is too short or malformed (the message never shows it).

    Every way of starting the sandbox passes here: :class:`SandboxConfig` on creation, and
    :func:`~sample_app.sandbox.app.create_sandbox_app` (so :class:`SandboxServer` and ``serve``)
    again, for a configuration that skipped ``__post_init__``.

    Raises:
        ValueError: Why the token cannot be used.
    """
    if problem := sandbox_api_token_problem("the sandbox API token (api_token)", token):
        raise ValueError(problem)


@dataclass(frozen=True)
class SandboxConfig:
    """Settings of one sandbox instance.

    Attributes:
        app_id: The Sendbird application id the sandbox pretends to be. The widget sends it in
            the ``widget_setting`` path and in the WebSocket query; unknown ids answer 400201.
        api_token: The secret expected in the ``Api-Token`` header of Platform API and control
            calls. Never logged. Defaults to a random value, so an instance reachable from a
            browser never runs with a well-known token. A pinned one must follow
            :func:`sample_app.config.sandbox_api_token_problem` (at least
            ``MIN_SANDBOX_API_TOKEN_LENGTH`` letters, digits, ``_`` or ``-``): a short token
            could be guessed, and it guards the control surface as well.
        bot_id: User id of the built-in bot. The bot user always exists and is a member of every
            channel the widget creates.
        bot_nickname: Display name of the bot.
        db_path: SQLite file that keeps users, channels and messages across restarts, or
            ``":memory:"`` for throw-away instances. The default is ``":memory:"`` so that a
            bare ``SandboxConfig()`` (tests, scripts) writes nothing; the embedded and the
            standalone sandbox use ``SANDBOX_DB_PATH`` (default ``.sandbox/sandbox.db`` in
            the project) through :meth:`from_settings`.
        session_key_ttl: Lifetime of a WebSocket session key in seconds (10 minutes unless
            ``SANDBOX_SESSION_KEY_TTL`` says otherwise). When it runs out the socket receives
            ``EXPR{"reason":400309}`` and the SDK refreshes the key with its session token.
        default_token_ttl: Lifetime in seconds of a session token issued without
            ``expires_at`` (Sendbird's default is 7 days).
        public_url: Base URL under which browsers reach the sandbox when it differs from the
            bound address (reverse proxy, demo site). Only used for display.
        bot_typing_delay: Seconds between a user's message and the bot's "typing" event.
        bot_reply_delay: Seconds between the "typing" event and the bot's reply.
        ws_max_payload: Largest WebSocket text frame (bytes) that is processed; larger frames
            are answered with ``EROR`` and dropped, the socket stays open.
        login_error_close_delay: Seconds a socket stays open after a failed login before the
            sandbox closes it (the SDK normally closes it first).
        rate_limits: Optional per-endpoint request limits of the Platform API, as
            ``{"GET": 10, "POST": 5, ...}`` requests per second (Sendbird's plan limits are per
            endpoint). ``None`` disables the limiter.
        widget_auto_open: Value of ``bot_style.auto_open`` in the widget settings.
        allow_login_without_token: ``False`` (the default) behaves like a Sendbird
            application with "Deny login from unauthenticated users" switched on: a WebSocket
            login must present a valid session token or session key. ``True`` behaves like
            one with it off: a login that carries only a user id is accepted, and an unknown
            user is created (``SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN=1``).
        credential_retention: Seconds a dead token issuance or session key (expired, revoked)
            is kept before it is pruned (a week by default; see :mod:`.store`).
    """

    app_id: str = SANDBOX_APP_ID
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    bot_id: str = SANDBOX_BOT_ID
    bot_nickname: str = SANDBOX_BOT_NICKNAME
    db_path: str = ":memory:"
    session_key_ttl: float = float(DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS)
    default_token_ttl: float = float(SEVEN_DAYS_SECONDS)
    public_url: str | None = None
    bot_typing_delay: float = 0.05
    bot_reply_delay: float = 0.15
    ws_max_payload: int = 64 * 1024
    login_error_close_delay: float = 0.5
    rate_limits: dict[str, int] | None = field(default=None, hash=False)
    widget_auto_open: bool = True
    allow_login_without_token: bool = False
    credential_retention: float = float(SEVEN_DAYS_SECONDS)

    def __post_init__(self) -> None:
        """Reject values that would make the sandbox misbehave in confusing ways."""
        if not self.app_id or not self.bot_id:
            raise ValueError("app_id and bot_id must not be empty")
        if not self.api_token:
            raise ValueError("api_token must not be empty")
        check_api_token_value(self.api_token)
        if self.session_key_ttl <= 0 or self.default_token_ttl <= 0:
            raise ValueError("session_key_ttl and default_token_ttl must be positive")
        if self.ws_max_payload < 1024:
            raise ValueError("ws_max_payload must be at least 1024 bytes")
        if self.credential_retention < 0:
            raise ValueError("credential_retention must not be negative")

    @classmethod
    def from_settings(cls, settings: SandboxSettings, **changes: object) -> SandboxConfig:
        """The configuration described by ``SANDBOX_*`` settings (embedded or standalone).

        Args:
            settings: What :func:`sample_app.config.read_sandbox_settings` read, or
                ``Settings.sandbox`` (whose API token is always set).
            **changes: Fields to set differently (for example, command-line options).

        Raises:
            ValueError: ``settings`` has no API token and ``changes`` gives none, or a value
                is out of range.
        """
        values: dict[str, object] = {
            "app_id": settings.app_id,
            "bot_id": settings.bot_id,
            "bot_nickname": settings.bot_nickname,
            "db_path": str(settings.db_path),
            "session_key_ttl": settings.session_key_ttl,
            "public_url": settings.public_url if settings.public_url_is_set else None,
        }
        if settings.api_token is not None:
            values["api_token"] = settings.api_token.reveal()
        values["allow_login_without_token"] = settings.allow_login_without_token
        values.update(changes)
        if not values.get("api_token"):
            raise ValueError("the sandbox needs an API token (SANDBOX_API_TOKEN)")
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> SandboxConfig:
        """Return a copy with some fields changed (handy for tests)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
