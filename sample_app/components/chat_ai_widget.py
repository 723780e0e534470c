"""The `ChatAiWidget` Reflex component: Sendbird's AI chatbot widget in a React 18 island.

Reflex 0.10 renders with React 19, and `@sendbird/chat-ai-widget` 1.7.10 crashes on import
under React 19, so this component does not import the widget. It renders a thin JSX bridge
(`chat_ai_widget.jsx`, beside this file) that lazily loads the island bundle built from
`widget-island/` and mounts the widget there with its own React 18 root.

The bundle's name carries its content hash (`manifest.json` names the current one), so it
can be cached as immutable. The page that contains the widget starts fetching it as soon
as its own script runs, and runs it once the page is idle (`preloadIsland`), while the
server is still issuing the first token; the widget mounts only once the token is there.

The props are the widget's documented props in snake_case. The four session callbacks are
event triggers; from them the bridge builds the widget's `configureSession`. The server
answers `on_session_token_required(request_id)` by setting `token_reply` to
`{"request_id": ..., "token": ...}` (or `"error"`), which the bridge turns into the widget's
`resolve(token)` / `reject(Error)`.

Example:
    chat_ai_widget(
        application_id=State.app_id, bot_id=State.bot_id, user_id=State.user_id,
        session_token=State.session_token, token_reply=State.token_reply,
        on_session_token_required=State.answer_token_request,
    )
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypedDict

import reflex as rx
from reflex.event import no_args_event_spec, passthrough_event_spec
from reflex.utils.imports import ImportDict
from reflex.vars import LiteralVar

from sample_app.config import PROJECT_ROOT

# Where `make island` writes the bundle (inside assets/, so Reflex serves it at the site's
# root: /widget-island/...), and the manifest that names the current build.
ISLAND_ASSET_DIR = "widget-island"
ISLAND_DIR = PROJECT_ROOT / "assets" / ISLAND_ASSET_DIR
ISLAND_MANIFEST = ISLAND_DIR / "manifest.json"
# `chat-ai-widget-island.<first 12 hex of the bundle's SHA-256>.js` (widget-island/build.mjs).
ISLAND_NAME = re.compile(r"chat-ai-widget-island\.(?P<hash>[0-9a-f]{12})\.js")

# Linked into assets/external/ by Reflex so Vite can import it as a module.
_BRIDGE_MODULE = rx.asset(path="chat_ai_widget.jsx", shared=True).importable_path


class IslandNotBuiltError(RuntimeError):
    """The widget island bundle is missing; it is built at set-up, never committed."""


@dataclass(frozen=True)
class IslandBuild:
    """One island build a manifest names: the current one, or the one before it.

    Attributes:
        file: The bundle (its `.br` and `.gz` siblings hold the same bytes, compressed).
        hash: The 12 hex digits in its name, the start of its SHA-256.
        previous: The build before it, kept on disk for pages loaded before this one was
            made (they name it); None when there is none.
    """

    file: Path
    hash: str
    previous: IslandBuild | None = None

    @property
    def asset(self) -> str:
        """Its path under assets/, which is also its URL path under the site's root."""
        return f"{ISLAND_ASSET_DIR}/{self.file.name}"

    def encoded(self, suffix: str) -> Path:
        """The precompressed sibling with this suffix (`.br`, `.gz`)."""
        return self.file.with_name(self.file.name + suffix)


_BUILD_IT = (
    "run `make island` (or `make run`, which builds it) to bundle the widget from widget-island/."
)


def _hashed_bundle(entry: object) -> re.Match[str] | None:
    """The bundle name in a manifest entry (`{"file": ...}`), if it is a hashed one."""
    name = entry.get("file") if isinstance(entry, dict) else None
    return ISLAND_NAME.fullmatch(name) if isinstance(name, str) else None


@lru_cache(maxsize=4)
def _manifest_entry(
    manifest: Path, _mtime_ns: int, _size: int
) -> tuple[str, str, tuple[str, str] | None]:
    """The bundle's name and hash in a manifest, and the previous build's, if it names one.

    Cached per version of the file (its stat).
    """
    data = json.loads(manifest.read_text(encoding="utf-8"))
    match = _hashed_bundle(data)
    if match is None:
        raise IslandNotBuiltError(f"{_shown(manifest)} names no hashed island bundle: {_BUILD_IT}")
    previous = _hashed_bundle(data.get("previous"))
    kept = (
        (previous[0], previous["hash"]) if previous and previous["hash"] != match["hash"] else None
    )
    return match[0], match["hash"], kept


def island_build(manifest: Path | None = None) -> IslandBuild:
    """The island build `make island` made last (read again whenever the manifest changes).

    Args:
        manifest: The manifest to read; `ISLAND_MANIFEST` by default.

    Raises:
        IslandNotBuiltError: when the manifest or the bundle it names is missing.
    """
    manifest = manifest or ISLAND_MANIFEST
    try:
        stat = manifest.stat()
        name, digest, previous = _manifest_entry(manifest, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as error:
        raise IslandNotBuiltError(
            f"{_shown(manifest)} is missing or unreadable ({type(error).__name__}): {_BUILD_IT}"
        ) from None
    file = manifest.with_name(name)
    if not file.is_file():
        # The manifest is make's target: with it in place, `make island` would do nothing.
        raise IslandNotBuiltError(
            f"{_shown(file)}, named by {_shown(manifest)}, is missing: delete "
            f"{_shown(manifest.parent)}/ and run `make island`."
        )
    kept = None
    if previous is not None and (previous_file := manifest.with_name(previous[0])).is_file():
        kept = IslandBuild(file=previous_file, hash=previous[1])
    return IslandBuild(file=file, hash=digest, previous=kept)


def _shown(path: Path) -> str:
    """A path as the error messages show it: relative to the project when inside it."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


class TokenReply(TypedDict):
    """The server's answer to one `onSessionTokenRequired` call."""

    request_id: int
    token: str
    error: str


class SessionErrorDetail(TypedDict):
    """What the widget reported through `onSessionError` (a SendbirdError)."""

    message: str
    code: int


#: The states `on_connection_status` reports, from the SDK's connect() and its connection
#: handler: connecting (connect() called), connected (it resolved, or a reconnect
#: succeeded), reconnecting (the socket dropped; the SDK retries), disconnected (the SDK
#: gave up or was disconnected), failed (the first connection was refused; detail says why).
CONNECTION_STATES = ("connecting", "connected", "reconnecting", "disconnected", "failed")


class MessageInputControls(TypedDict, total=False):
    """Message input behaviour (`blockWhileBotResponding`: bool or a timeout in ms)."""

    blockWhileBotResponding: bool | int


def island_url() -> str:
    """The island bundle's URL; its name changes with its content, so it is never stale.

    Raises:
        IslandNotBuiltError: when `make island` has not been run.
    """
    return rx.config.get_config().prepend_frontend_path(f"/{island_build().asset}")


def clear_widget_cache_script(app_id: str, bot_id: str) -> str:
    """JavaScript that forgets the widget's cached channel for this app and bot.

    Used on sign-out, so the next account on this browser never probes the previous
    account's channel. The island module is already loaded, so import() returns it at once.
    """
    return (
        f"import({json.dumps(island_url())})"
        f".then((island) => island.clearSessionCache({json.dumps(app_id)}, {json.dumps(bot_id)}))"
    )


def _looks_secret(prop_name: str) -> bool:
    """Whether a prop name looks like a server secret, in any spelling (apiToken, API_TOKEN)."""
    letters = re.sub(r"[^a-z]", "", prop_name.lower())
    return "apitoken" in letters or "secret" in letters or "password" in letters


class ChatAiWidget(rx.Component):
    """Sendbird's ChatAiWidget, rendered client-side in its own React 18 root.

    A plain component, not a `NoSSRComponent`: the bridge is safe to prerender (a `<div>`;
    it touches the browser only in effects), so it is imported with the page's own script
    instead of as a separate chunk fetched once the token has arrived.
    """

    library = _BRIDGE_MODULE
    tag = "ChatAiWidgetBridge"

    # --- The widget's props (camelCased by Reflex) ---
    application_id: rx.Var[str]
    """Sendbird application id."""
    bot_id: rx.Var[str]
    """The AI chatbot's user id."""
    user_id: rx.Var[str]
    """Sendbird user id; with `session_token` and the session callbacks, selects the widget's
    manual session strategy. Changing it remounts the widget."""
    session_token: rx.Var[str]
    """The first session token, issued by the server before the widget mounts."""
    user_nick_name: rx.Var[str]
    """Nickname; pass the server-side nickname, the widget's default "User" overwrites it."""
    auto_open: rx.Var[bool]
    """Open the chat window on load (desktop only)."""
    enable_emoji_feedback: rx.Var[bool]
    """Show feedback icons under bot messages."""
    enable_mention: rx.Var[bool]
    """Allow @mentions in the input."""
    device_type: rx.Var[Literal["desktop", "mobile"]]
    """Force the desktop or mobile layout."""
    string_set: rx.Var[dict[str, str]]
    """Overrides of the widget's UI strings."""
    enable_reset_history_on_connect: rx.Var[bool]
    """Start a new channel on every connect."""
    enable_hide_widget_for_deactivated_user: rx.Var[bool]
    """Hide the widget when the user is deactivated."""
    enable_widget_expand_button: rx.Var[bool]
    """Show the expand button on the chat window."""
    message_input_controls: rx.Var[MessageInputControls]
    """Input behaviour while the bot responds."""
    api_host: rx.Var[str]
    """Sendbird REST host (`https://api-{app_id}.sendbird.com`, or the sandbox)."""
    ws_host: rx.Var[str]
    """Sendbird WebSocket host (`wss://ws-{app_id}.sendbird.com`, or the sandbox)."""

    # --- The bridge's own props ---
    island_url: rx.Var[str]
    """URL of the island bundle; set by `create`."""
    token_reply: rx.Var[TokenReply]
    """The server's answer to the latest token request."""
    remount_key: rx.Var[int]
    """Bump to remount the widget (e.g. reconnect after the session closed). A remount for a
    new key first forgets the widget's cached channel (see the bridge), so a channel that
    no longer exists at Sendbird cannot leave the remounted widget blank."""

    # --- Session callbacks (configureSession) and island status ---
    # Reflex reads these annotations at runtime (the spec says what the trigger passes);
    # mypy cannot, hence the ignores.
    on_session_token_required: rx.EventHandler[passthrough_event_spec(int)]  # type: ignore[type-arg, valid-type]
    """The widget needs a new token; the handler must answer through `token_reply`."""
    on_session_refreshed: rx.EventHandler[no_args_event_spec]  # type: ignore[type-arg, valid-type]
    """The SDK refreshed its session with a new token or key."""
    on_session_error: rx.EventHandler[passthrough_event_spec(SessionErrorDetail)]  # type: ignore[type-arg, valid-type]
    """Refreshing the session failed (e.g. the token request was rejected)."""
    on_session_closed: rx.EventHandler[no_args_event_spec]  # type: ignore[type-arg, valid-type]
    """The session is over (revoked, or resolved with null); remount to reconnect."""
    on_island_status: rx.EventHandler[passthrough_event_spec(str, str)]  # type: ignore[type-arg, valid-type]
    """`("loading" | "mounted" | "error", detail)` as the island loads; "mounted" (detail:
    the island's React version) comes once the page is idle after the mount, and before
    any other report of that widget."""
    on_connection_status: rx.EventHandler[passthrough_event_spec(str, str)]  # type: ignore[type-arg, valid-type]
    """`(state, detail)`: the Sendbird SDK's own connection state, observed by the bridge on
    the instance `configureSession` receives. `state` is one of `CONNECTION_STATES`;
    `detail` carries `"code: message"` when the first connection fails."""

    @classmethod
    def create(cls, *children: Any, **props: Any) -> ChatAiWidget:
        """Create the widget; the island URL is filled in from the built bundle.

        Raises:
            IslandNotBuiltError: when the island bundle has not been built.
            ValueError: when a prop that must stay on the server (an API token) is passed.
        """
        forbidden = {name for name in props if _looks_secret(name)}
        if forbidden:
            raise ValueError(
                f"{sorted(forbidden)}: the Sendbird API token must never reach the browser; "
                "issue session tokens on the server instead"
            )
        props.setdefault("island_url", island_url())
        return super().create(*children, **props)

    def add_imports(self) -> ImportDict:
        """The bridge's `preloadIsland`, for the custom code below."""
        return {_BRIDGE_MODULE: "preloadIsland"}

    def add_custom_code(self) -> list[str]:
        """Start fetching the island when the page's script runs, not when the widget mounts.

        The widget mounts only once the server has issued the first token; the island (the
        biggest download of the page) is fetched meanwhile, and run once the page is idle.
        Only for a URL known at compile time: module-level code cannot read state.
        """
        if not isinstance(self.island_url, LiteralVar):
            return []
        return [f"preloadIsland({self.island_url!s});"]


class WidgetSettingsPreload(rx.Component):
    """Preloads the widget's settings request while the first token is being issued.

    The widget fetches `{api_host}/v3/bots/{bot_id}/{app_id}/widget_setting?` only after
    it has mounted and shows its launcher only once the answer is there; rendered outside
    the widget's condition, this starts the same request as soon as the ids are known
    (see `WidgetSettingsPreload` in the bridge). Renders nothing.
    """

    library = _BRIDGE_MODULE
    tag = "WidgetSettingsPreload"

    api_host: rx.Var[str]
    """Sendbird REST host, as passed to the widget."""
    bot_id: rx.Var[str]
    """The AI chatbot's user id."""
    application_id: rx.Var[str]
    """Sendbird application id."""


chat_ai_widget = ChatAiWidget.create
widget_settings_preload = WidgetSettingsPreload.create


def bridge_source() -> str:
    """The bridge's JavaScript source (tests check it against the Python triggers)."""
    return (Path(__file__).parent / "chat_ai_widget.jsx").read_text(encoding="utf-8")
