"""Configuration from the environment and `.env`, validated once at start.

Two modes, chosen by whether Sendbird credentials are present:

* **sandbox** (no `SENDBIRD_APP_ID` and no `SENDBIRD_API_TOKEN`): the app starts the local
  Sendbird sandbox inside its backend and points both the server and the widget at it; with
  `SANDBOX_EXTERNAL=1` it uses a sandbox started on its own (`make sandbox`, or the demo
  site's), which is the only way when several backend workers share one sandbox.
* **sendbird** (both set): the app talks to real Sendbird, or to the hosts in
  `SENDBIRD_API_HOST` / `SENDBIRD_WS_HOST` when those are set (a separately started sandbox).

Every problem is collected and reported together (`ConfigError`), each with what to do, so a
newcomer fixes their `.env` in one pass. Secrets are wrapped in `Secret`, whose `repr` and
`str` never show the value. Nothing here is imported into browser-facing state.

Run `python -m sample_app.config` to check a configuration without starting the app; with
Sendbird credentials it also checks the remote side (`sample_app.setup_check`) unless given
`--offline` or `SENDBIRD_SKIP_SETUP_CHECK=1`.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values, load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT_ROOT / ".env"

# The local Sendbird sandbox's defaults, defined only here: the embedded sandbox (`make run`
# without credentials), the standalone one (`make sandbox`), `SandboxConfig` and the
# "separately started sandbox" block of `.env.example` all use these values. This module
# never imports `sample_app.sandbox` (the app loads that package only in sandbox mode).
SANDBOX_APP_ID = "sandbox-app"
SANDBOX_BOT_ID = "sandbox-bot"
SANDBOX_BOT_NICKNAME = "Sandbox Bot"
DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8090
DEFAULT_SANDBOX_DB_PATH = PROJECT_ROOT / ".sandbox" / "sandbox.db"
DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS = 600
MIN_SANDBOX_API_TOKEN_LENGTH = 16

DEFAULT_TOKEN_TTL_SECONDS = 30 * 60  # a session token sits in the browser: keep it short
DEFAULT_REFRESH_MARGIN_SECONDS = 2 * 60
DEFAULT_USER_ID_PREFIX = "sample-"
# The session-token issuance budget (sample_app/issuance_budget.py holds the same defaults;
# this module imports nothing from the app). Sendbird's free trial allows 5 Platform API
# POSTs per second per application: the app stays one below.
DEFAULT_TOKEN_REUSE_SECONDS = 5
DEFAULT_TOKENS_PER_USER_PER_MINUTE = 10
DEFAULT_PLATFORM_POSTS_PER_SECOND = 4
# One token request (queueing for the budget, Sendbird's answers, retries, waits) ends after
# this long. Reflex's state lock must outlive the longest handler, so it is derived from it.
DEFAULT_TOKEN_REQUEST_DEADLINE_SECONDS = 15
MIN_TOKEN_REQUEST_DEADLINE_SECONDS = 2
MAX_TOKEN_REQUEST_DEADLINE_SECONDS = 60
TOKEN_REQUEST_DEADLINE_VARIABLE = "SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS"  # noqa: S105 - a name
# Platform API calls one process has at Sendbird at once (sample_app/sendbird_api/call_slots.py
# holds the same default); the rest wait in order. 0 leaves queueing to httpx's pool (the plain
# configuration the capacity benchmark compares against).
DEFAULT_CALLS_IN_FLIGHT = 16
MAX_CALLS_IN_FLIGHT = 256
# A resolved sign-in answers token requests from memory for this long (sample_app/sign_in_cache.py
# holds the same default, and says why 30); every sign-out clears it at once. 0 checks the
# database every time.
DEFAULT_SIGN_IN_CACHE_SECONDS = 30
MAX_SIGN_IN_CACHE_SECONDS = 60
# Reflex's Redis state manager: the variable that selects it and the one that sets workers.
REDIS_URL_VARIABLE = "REFLEX_REDIS_URL"
WORKERS_VARIABLE = "GRANIAN_WORKERS"
SANDBOX_EXTERNAL_VARIABLE = "SANDBOX_EXTERNAL"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

# Values copied from .env.example or docs that must never reach Sendbird.
_PLACEHOLDERS = {
    "your_app_id",
    "your_api_token",
    "your_bot_id",
    "changeme",
    "changethis",
    "todo",
    "xxx",
    "...",
    "none",
    "null",
}
_APP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,63}$")
_API_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_BOT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{0,40}$")

Mode = Literal["sandbox", "sendbird"]


# Set to 1 to leave the project's `.env` unread (the test suite does, so it is hermetic).
IGNORE_ENV_FILE_VARIABLE = "SAMPLE_APP_IGNORE_DOTENV"


def load_env_file(env_file: Path = ENV_FILE) -> None:
    """Copy `.env` into the process environment, never overriding what is already set.

    Every entry point calls this first (`rxconfig.py`, the seed command, the standalone
    sandbox), so a variable written in `.env` means the same thing everywhere, while the
    real environment (CI, tests, a deployment) still wins.
    """
    if env_file.exists() and not _project_env_file_ignored(env_file):
        load_dotenv(env_file, override=False)


def _project_env_file_ignored(env_file: Path | None) -> bool:
    """Whether the project's own `.env` must be left unread (the test suite sets this).

    A developer's `.env` may hold real Sendbird credentials or other settings; tests must
    neither send live traffic with them nor depend on them.
    """
    return env_file == ENV_FILE and os.environ.get(IGNORE_ENV_FILE_VARIABLE) == "1"


class ConfigError(ValueError):
    """The configuration cannot be used; `problems` lists every reason, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        bullet_list = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Configuration problems (see .env.example):\n{bullet_list}")


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret; call only where it is sent to Sendbird."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


@dataclass(frozen=True)
class SandboxSettings:
    """The local sandbox's settings, from the `SANDBOX_*` variables (`read_sandbox_settings`).

    The embedded sandbox (`Settings.sandbox`) and `python -m sample_app.sandbox` read the same
    variables through the same function, so each name means the same thing for both.

    Attributes:
        host: Interface the sandbox binds (`SANDBOX_HOST`).
        port: Its TCP port (`SANDBOX_PORT`).
        db_path: SQLite file keeping users, channels and messages (`SANDBOX_DB_PATH`).
        public_url: The base URL browsers use to reach the sandbox: `SANDBOX_PUBLIC_URL`, or
            `http://{host}:{port}` (they differ behind a proxy on a demo site).
        app_id: The application id the sandbox answers to (`SANDBOX_APP_ID`).
        bot_id: The user id of its bot (`SANDBOX_BOT_ID`; in `Settings.sandbox`, falls back
            to `SENDBIRD_BOT_ID` when only that one is set).
        bot_nickname: The bot's display name (`SANDBOX_BOT_NICKNAME`).
        api_token: The secret callers send in the `Api-Token` header (`SANDBOX_API_TOKEN`);
            None when unset. `Settings.sandbox` always holds one (random per process unless
            pinned); the standalone sandbox refuses to start without one.
        session_key_ttl: Lifetime of a WebSocket session key in seconds
            (`SANDBOX_SESSION_KEY_TTL`).
        public_url_is_set: Whether `SANDBOX_PUBLIC_URL` gave `public_url` (otherwise it
            follows `host` and `port`).
        allow_login_without_token: `SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN` (1/true/yes/on):
            accept chat logins that carry no session token, as Sendbird does unless the
            dashboard's "Deny login" is set; off by default.
        external: `SANDBOX_EXTERNAL` (1/true/yes/on): the sandbox runs as its own process at
            `host:port` (`make sandbox`, the demo site) and the app does not start one; its
            `api_token` must then be pinned, since both processes must agree on it.
    """

    host: str
    port: int
    db_path: Path
    public_url: str
    app_id: str
    bot_id: str
    bot_nickname: str
    api_token: Secret | None
    session_key_ttl: float
    public_url_is_set: bool
    allow_login_without_token: bool = False
    external: bool = False

    @property
    def url(self) -> str:
        """The base URL our own server uses to reach the sandbox (`http://{host}:{port}`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def public_ws_url(self) -> str:
        """The WebSocket base URL browsers use (http -> ws, https -> wss)."""
        parts = urlsplit(self.public_url)
        scheme = "wss" if parts.scheme.lower() == "https" else "ws"
        return parts._replace(scheme=scheme).geturl()


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to talk to Sendbird (or the sandbox)."""

    mode: Mode
    app_id: str
    api_token: Secret = field(repr=True)
    bot_id: str
    # Base URLs our server uses for the Platform API.
    api_host: str
    # Base URLs the widget in the browser uses (the same as api_host except behind a proxy).
    widget_api_host: str
    widget_ws_host: str
    token_ttl: timedelta
    refresh_margin: timedelta
    user_id_prefix: str
    sandbox: SandboxSettings | None
    # The issuance budget (see sample_app/issuance_budget.py): a refresh (force_new) this
    # soon after the previous refresh's token reuses it; new tokens per user per minute;
    # Platform API POSTs per second for the whole app.
    token_reuse_window: timedelta = timedelta(seconds=DEFAULT_TOKEN_REUSE_SECONDS)
    tokens_per_user_per_minute: int = DEFAULT_TOKENS_PER_USER_PER_MINUTE
    platform_posts_per_second: int = DEFAULT_PLATFORM_POSTS_PER_SECOND
    # Longest one token request may take, queueing and retries included.
    token_request_deadline: timedelta = timedelta(seconds=DEFAULT_TOKEN_REQUEST_DEADLINE_SECONDS)
    # Platform API calls in flight per process; None: unbounded (httpx's own pool queue).
    calls_in_flight: int | None = DEFAULT_CALLS_IN_FLIGHT
    # How long a resolved sign-in is reused without the database (0: never).
    sign_in_cache_ttl: timedelta = timedelta(seconds=DEFAULT_SIGN_IN_CACHE_SECONDS)
    # Reflex's Redis (`REFLEX_REDIS_URL`): the token cache and the issuance budget are shared
    # there by every worker; None keeps them in this process. Never shown (it may hold a
    # password).
    redis_url: Secret | None = None

    @property
    def is_sandbox(self) -> bool:
        """Whether the app runs on its embedded local sandbox."""
        return self.mode == "sandbox"


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDERS or (lowered.startswith("<") and lowered.endswith(">"))


def _check_url(name: str, value: str, schemes: tuple[str, ...], problems: list[str]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        problems.append(
            f"{name}={value!r} is not a URL starting with {' or '.join(s + '://' for s in schemes)}"
        )
    if parts.query or parts.fragment:
        problems.append(f"{name} must not carry a query or fragment")
    return value.rstrip("/")


def _strip_v3(url: str) -> str:
    """`url` without trailing `/v3` segments and slashes (Sendbird documents `.../v3`)."""
    while url.lower().endswith("/v3"):
        url = url[: -len("/v3")].rstrip("/")
    return url


def _int_setting(
    env: Mapping[str, str], name: str, default: int, low: int, high: int, problems: list[str]
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a whole number")
        return default
    if not low <= value <= high:
        problems.append(f"{name}={value} is out of range ({low}..{high})")
        return default
    return value


def _credential(
    env: Mapping[str, str],
    name: str,
    pattern: re.Pattern[str],
    what: str,
    problems: list[str],
    *,
    show_value: bool,
) -> str:
    value = env.get(name, "").strip()
    if not value:
        return ""
    if _is_placeholder(value):
        problems.append(f"{name} still holds a placeholder; put your {what} there")
    elif not pattern.match(value):
        shown = f"={value!r}" if show_value else ""
        problems.append(f"{name}{shown} is malformed: expected {what}")
    return value


def sandbox_api_token_problem(name: str, value: str) -> str | None:
    """Why `value` cannot be the sandbox's API token, or None when it can.

    The same rule as `SENDBIRD_API_TOKEN` (16 to 256 letters, digits, `_` or `-`), since a
    separately started sandbox's token is what the app then sends as `SENDBIRD_API_TOKEN`.

    Args:
        name: What to call the value in the message (`SANDBOX_API_TOKEN`, `--api-token`).
        value: The candidate token (never echoed).
    """
    if len(value) < MIN_SANDBOX_API_TOKEN_LENGTH:
        return (
            f"{name} is too short ({len(value)} characters): use at least "
            f"{MIN_SANDBOX_API_TOKEN_LENGTH}, for example {secrets.token_hex(20)}"
        )
    if not _API_TOKEN_RE.match(value):
        return (
            f"{name} may hold only letters, digits, _ and - (at most 256), like a Sendbird "
            "API token: the app sends it as SENDBIRD_API_TOKEN, which is checked that way"
        )
    return None


def read_sandbox_settings(env: Mapping[str, str], problems: list[str]) -> SandboxSettings:
    """The local sandbox's settings from the `SANDBOX_*` variables in `env`.

    The one reader of these variables: `load_settings` uses it for the embedded sandbox and
    `python -m sample_app.sandbox` for its defaults. Unset or blank variables take the
    defaults defined at the top of this module; a malformed one adds a line to `problems`
    and takes its default too.

    Args:
        env: The variables (`.env` values overlaid by the environment).
        problems: Receives one line per malformed variable, naming it.

    Returns:
        The settings; `api_token` is None when `SANDBOX_API_TOKEN` is unset.
    """

    def text(name: str) -> str:
        return env.get(name, "").strip()

    host = text("SANDBOX_HOST") or DEFAULT_SANDBOX_HOST
    port = _int_setting(env, "SANDBOX_PORT", DEFAULT_SANDBOX_PORT, 1, 65535, problems)
    app_id = text("SANDBOX_APP_ID") or SANDBOX_APP_ID
    if not _APP_ID_RE.match(app_id):
        problems.append(
            f"SANDBOX_APP_ID={app_id!r} is malformed: expected 3 to 64 letters, digits and -"
        )
    bot_id = text("SANDBOX_BOT_ID") or SANDBOX_BOT_ID
    if not _BOT_ID_RE.match(bot_id):
        problems.append(
            f"SANDBOX_BOT_ID={bot_id!r} is malformed: expected up to 80 letters, digits and _ . : -"
        )
    token = text("SANDBOX_API_TOKEN")
    if token and (problem := sandbox_api_token_problem("SANDBOX_API_TOKEN", token)):
        problems.append(problem)
    ttl = _int_setting(
        env,
        "SANDBOX_SESSION_KEY_TTL",
        DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS,
        1,
        7 * 24 * 3600,
        problems,
    )
    configured_url = text("SANDBOX_PUBLIC_URL")
    public_url = configured_url or f"http://{host}:{port}"
    public_url = _check_url("SANDBOX_PUBLIC_URL", public_url, ("http", "https"), problems)
    return SandboxSettings(
        host=host,
        port=port,
        db_path=Path(text("SANDBOX_DB_PATH") or DEFAULT_SANDBOX_DB_PATH),
        public_url=public_url,
        app_id=app_id,
        bot_id=bot_id,
        bot_nickname=text("SANDBOX_BOT_NICKNAME") or SANDBOX_BOT_NICKNAME,
        api_token=Secret(token) if token else None,
        session_key_ttl=float(ttl),
        public_url_is_set=bool(configured_url),
        external=text(SANDBOX_EXTERNAL_VARIABLE).lower() in _TRUE_WORDS,
        allow_login_without_token=text("SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN").lower()
        in {"1", "true", "yes", "on"},
    )


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = ENV_FILE
) -> Settings:
    """Build settings from `environ` (default: the process) over the values in `env_file`.

    Variables already in the environment win over `.env`, so CI and tests can override it.

    Raises:
        ConfigError: listing every problem found.
    """
    readable = env_file is not None and env_file.exists()
    file_values = (
        dotenv_values(env_file) if readable and not _project_env_file_ignored(env_file) else {}
    )
    env: dict[str, str] = {k: v for k, v in file_values.items() if v is not None}
    env.update(os.environ if environ is None else environ)
    problems: list[str] = []

    app_id = _credential(
        env,
        "SENDBIRD_APP_ID",
        _APP_ID_RE,
        "your Sendbird application id (Dashboard > Settings > Application)",
        problems,
        show_value=True,
    )
    api_token = _credential(
        env,
        "SENDBIRD_API_TOKEN",
        _API_TOKEN_RE,
        "a Sendbird master or secondary API token (letters and digits)",
        problems,
        show_value=False,
    )
    bot_id = _credential(
        env,
        "SENDBIRD_BOT_ID",
        _BOT_ID_RE,
        "the id of your AI chatbot (Dashboard > AI chatbot > Bots)",
        problems,
        show_value=True,
    )
    ttl_seconds = _int_setting(
        env, "SENDBIRD_TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_SECONDS, 60, 7 * 24 * 3600, problems
    )
    margin_seconds = _int_setting(
        env,
        "SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS",
        DEFAULT_REFRESH_MARGIN_SECONDS,
        0,
        24 * 3600,
        problems,
    )
    if margin_seconds * 2 > ttl_seconds:
        problems.append(
            "SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS must be at most half of "
            "SENDBIRD_TOKEN_TTL_SECONDS, or every page view would mint a token"
        )
    reuse_seconds = _int_setting(
        env, "SENDBIRD_TOKEN_REUSE_SECONDS", DEFAULT_TOKEN_REUSE_SECONDS, 0, 60, problems
    )
    if reuse_seconds >= ttl_seconds - margin_seconds:
        problems.append(
            "SENDBIRD_TOKEN_REUSE_SECONDS must be shorter than SENDBIRD_TOKEN_TTL_SECONDS "
            "minus SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS, or a reused token would be stale"
        )
    tokens_per_user = _int_setting(
        env,
        "SENDBIRD_TOKENS_PER_USER_PER_MINUTE",
        DEFAULT_TOKENS_PER_USER_PER_MINUTE,
        1,
        1000,
        problems,
    )
    posts_per_second = _int_setting(
        env,
        "SENDBIRD_PLATFORM_POSTS_PER_SECOND",
        DEFAULT_PLATFORM_POSTS_PER_SECOND,
        1,
        10_000,
        problems,
    )
    deadline_seconds = _int_setting(
        env,
        TOKEN_REQUEST_DEADLINE_VARIABLE,
        DEFAULT_TOKEN_REQUEST_DEADLINE_SECONDS,
        MIN_TOKEN_REQUEST_DEADLINE_SECONDS,
        MAX_TOKEN_REQUEST_DEADLINE_SECONDS,
        problems,
    )
    calls_in_flight = _int_setting(
        env, "SENDBIRD_CALLS_IN_FLIGHT", DEFAULT_CALLS_IN_FLIGHT, 0, MAX_CALLS_IN_FLIGHT, problems
    )
    sign_in_cache_seconds = _int_setting(
        env,
        "SIGN_IN_CACHE_SECONDS",
        DEFAULT_SIGN_IN_CACHE_SECONDS,
        0,
        MAX_SIGN_IN_CACHE_SECONDS,
        problems,
    )
    redis_url = env.get(REDIS_URL_VARIABLE, "").strip()
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        problems.append(
            f"{REDIS_URL_VARIABLE} must start with redis://, rediss:// or unix:// "
            "(Reflex's Redis state manager, shared by every backend worker)"
        )
    prefix = env.get("SENDBIRD_USER_ID_PREFIX", DEFAULT_USER_ID_PREFIX)
    if not _PREFIX_RE.match(prefix):
        problems.append("SENDBIRD_USER_ID_PREFIX may hold up to 40 letters, digits and _ . : -")

    has_app_id = bool(env.get("SENDBIRD_APP_ID", "").strip())
    has_token = bool(env.get("SENDBIRD_API_TOKEN", "").strip())
    mode: Mode = "sendbird" if (has_app_id or has_token) else "sandbox"
    sandbox: SandboxSettings | None = None

    if mode == "sendbird":
        if not has_app_id:
            problems.append(
                "SENDBIRD_APP_ID is missing: set both SENDBIRD_APP_ID and SENDBIRD_API_TOKEN "
                "for real Sendbird, or neither to use the local sandbox"
            )
        if not has_token:
            problems.append(
                "SENDBIRD_API_TOKEN is missing: set both SENDBIRD_APP_ID and SENDBIRD_API_TOKEN "
                "for real Sendbird, or neither to use the local sandbox"
            )
        if not bot_id:
            problems.append("SENDBIRD_BOT_ID is missing: the widget needs your AI chatbot's id")
        api_host = env.get("SENDBIRD_API_HOST", "").strip() or f"https://api-{app_id}.sendbird.com"
        ws_host = env.get("SENDBIRD_WS_HOST", "").strip() or f"wss://ws-{app_id}.sendbird.com"
        # Normalised once, here, so our server and the widget get the same base: without
        # this a documented ".../v3" base made the widget request /v3/v3/...
        api_host = _strip_v3(_check_url("SENDBIRD_API_HOST", api_host, ("https", "http"), problems))
        ws_host = _check_url("SENDBIRD_WS_HOST", ws_host, ("wss", "ws"), problems)
        widget_api_host, widget_ws_host = api_host, ws_host
    else:
        sandbox = read_sandbox_settings(env, problems)
        # SANDBOX_BOT_ID names the sandbox's bot; without it, SENDBIRD_BOT_ID (if set) does,
        # so a `.env` with only a bot id keeps it; otherwise the default.
        if env.get("SANDBOX_BOT_ID", "").strip() or not bot_id:
            bot_id = sandbox.bot_id
        if sandbox.external and sandbox.api_token is None:
            problems.append(
                f"{SANDBOX_EXTERNAL_VARIABLE}=1 needs SANDBOX_API_TOKEN: the separately "
                "started sandbox and this app must use the same token (`make sandbox` "
                "without one prints a fresh value to paste)"
            )
        elif not sandbox.external and (reason := _several_workers(env)):
            problems.append(
                f"The embedded Sendbird sandbox lives inside one backend process, but {reason}, "
                "so several workers would each start their own sandbox on "
                f"{sandbox.host}:{sandbox.port} with its own API token. Run the sandbox on its "
                f"own (`make sandbox`) and set {SANDBOX_EXTERNAL_VARIABLE}=1 with the same "
                "SANDBOX_API_TOKEN, or use `make demo-site`, which does all of this"
            )
        # A fresh random token per process unless pinned: the embedded sandbox and this
        # server share the process, and nothing else should be able to call its API.
        api_token = sandbox.api_token.reveal() if sandbox.api_token else secrets.token_hex(20)
        sandbox = replace(sandbox, bot_id=bot_id, api_token=Secret(api_token))
        app_id = sandbox.app_id
        api_host = sandbox.url
        widget_api_host, widget_ws_host = sandbox.public_url, sandbox.public_ws_url

    if problems:
        raise ConfigError(problems)
    return Settings(
        mode=mode,
        app_id=app_id,
        api_token=Secret(api_token),
        bot_id=bot_id,
        api_host=api_host,
        widget_api_host=widget_api_host,
        widget_ws_host=widget_ws_host,
        token_ttl=timedelta(seconds=ttl_seconds),
        refresh_margin=timedelta(seconds=margin_seconds),
        user_id_prefix=prefix,
        sandbox=sandbox,
        token_reuse_window=timedelta(seconds=reuse_seconds),
        tokens_per_user_per_minute=tokens_per_user,
        platform_posts_per_second=posts_per_second,
        token_request_deadline=timedelta(seconds=deadline_seconds),
        calls_in_flight=calls_in_flight or None,
        sign_in_cache_ttl=timedelta(seconds=sign_in_cache_seconds),
        redis_url=Secret(redis_url) if redis_url else None,
    )


def _several_workers(env: Mapping[str, str]) -> str:
    """Why this backend may run as several processes, or "" when it runs as one.

    With Redis configured Reflex starts several workers by default (and Redis is what lets
    several processes share one app), and `GRANIAN_WORKERS` above 1 asks for them outright.
    """
    if env.get(REDIS_URL_VARIABLE, "").strip():
        return f"{REDIS_URL_VARIABLE} is set (Reflex then shares state between workers)"
    workers = env.get(WORKERS_VARIABLE, "").strip()
    if workers.isdigit() and int(workers) > 1:
        return f"{WORKERS_VARIABLE}={workers}"
    return ""


def state_lock_expiration_ms(environ: Mapping[str, str] | None = None) -> int:
    """How long Reflex's Redis state lock lasts, in milliseconds (rxconfig's setting).

    Reflex holds a tab's state lock for the whole of an event handler and discards the
    handler's writes if the lock expired meanwhile (`LockExpiredError`). The longest handlers
    here are bounded by the token-request deadline: one token request (open_chat, reconnect,
    a refresh), or a revocation tried twice (sign-out, end session), each within the deadline,
    plus the sign-in checks. Twice the deadline plus ten seconds covers both with room.

    Args:
        environ: Where to read `SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS` (default: the
            process). An invalid value counts as the default here; `load_settings` reports it.
    """
    env = os.environ if environ is None else environ
    raw = env.get(TOKEN_REQUEST_DEADLINE_VARIABLE, "").strip()
    seconds = DEFAULT_TOKEN_REQUEST_DEADLINE_SECONDS
    if raw.isdigit() and (
        MIN_TOKEN_REQUEST_DEADLINE_SECONDS <= int(raw) <= MAX_TOKEN_REQUEST_DEADLINE_SECONDS
    ):
        seconds = int(raw)
    return (2 * seconds + 10) * 1000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call `get_settings.cache_clear()` after changing env)."""
    return load_settings()


def describe(settings: Settings) -> str:
    """One line saying where the app sends its Sendbird traffic (no secrets)."""
    if settings.is_sandbox:
        where = "separately started" if settings.sandbox and settings.sandbox.external else "local"
        return (
            f"{where} Sendbird sandbox at {settings.widget_api_host} "
            f"(app {settings.app_id}, bot {settings.bot_id})"
        )
    return f"Sendbird at {settings.api_host} (app {settings.app_id}, bot {settings.bot_id})"


OFFLINE_FLAG = "--offline"
SKIP_SETUP_CHECK_VARIABLE = "SENDBIRD_SKIP_SETUP_CHECK"


def setup_check_skipped(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether `--offline` or `SENDBIRD_SKIP_SETUP_CHECK=1` asks to skip the remote check."""
    flag = environ.get(SKIP_SETUP_CHECK_VARIABLE, "").strip().lower()
    return OFFLINE_FLAG in argv or flag in {"1", "true", "yes"}


def main(argv: Sequence[str] | None = None) -> int:
    """Check the configuration and say what the app will use; exit 1 with the problems.

    With Sendbird credentials the remote side is checked too (`sample_app.setup_check`: the
    API token, the application, the bot and the widget's settings), one line per problem,
    unless `--offline` is given or `SENDBIRD_SKIP_SETUP_CHECK=1` is set.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    load_env_file()  # so SENDBIRD_SKIP_SETUP_CHECK may be written in .env too
    unknown = [arg for arg in args if arg != OFFLINE_FLAG]
    if unknown:
        print(f"usage: python -m sample_app.config [{OFFLINE_FLAG}]")  # noqa: T201
        return 2
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error)  # noqa: T201 - command-line output
        return 1
    if not settings.is_sandbox:
        if setup_check_skipped(args, os.environ):
            print(  # noqa: T201
                f"Set-up check skipped ({OFFLINE_FLAG} or {SKIP_SETUP_CHECK_VARIABLE}=1): "
                "Sendbird was not contacted"
            )
        else:
            from sample_app.setup_check import run_setup_check  # only with credentials

            problems = run_setup_check(settings)
            if problems:
                print("Set-up check failed (Sendbird side; see README, 'Before you start'):")  # noqa: T201
                for problem in problems:
                    print(f"  - {problem}")  # noqa: T201
                return 1
    print(f"Configuration OK: {describe(settings)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
