"""The ChatAiWidget Reflex component and its JSX bridge, checked without a browser.

The component is rendered to its JSX call (`str(component)` / `component.render()`) and its
imports are inspected; the bridge's source is read as text and matched against the Python
class, so a renamed prop or trigger on either side fails here rather than in Chromium.
Needs the island bundle (`make island`, which `make test` runs first).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from reflex.state import reload_state_module
from reflex_base.event import EventHandler
from reflex_base.utils.format import to_camel_case
from reflex_base.vars.base import LiteralVar

import sample_app.components.chat_ai_widget as widget_module
from sample_app.components.chat_ai_widget import (
    CONNECTION_STATES,
    ChatAiWidget,
    IslandNotBuiltError,
    SessionErrorDetail,
    TokenReply,
    bridge_source,
    chat_ai_widget,
    clear_widget_cache_script,
    island_build,
    island_url,
)
from sample_app.config import PROJECT_ROOT
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import NO_REPLY, ChatSessionState

# The bridge's own props: not passed through to the widget.
BRIDGE_OWN_PROPS = {"island_url", "token_reply", "remount_key"}
FORBIDDEN_NAME = re.compile(r"api_?token|secret", re.IGNORECASE)


class WidgetTestState(rx.State):
    """Receives the widget's triggers in these tests."""

    @rx.event
    def token_required(self, request_id: int) -> None:
        """Answer a token request (unused)."""

    @rx.event
    def refreshed(self) -> None:
        """Note a refresh (unused)."""

    @rx.event
    def session_error(self, detail: SessionErrorDetail) -> None:
        """Note an error (unused)."""

    @rx.event
    def closed(self) -> None:
        """Note the end of the session (unused)."""

    @rx.event
    def island_status(self, state: str, detail: str) -> None:
        """Note the island's progress (unused)."""

    @rx.event
    def connection_status(self, state: str, detail: str) -> None:
        """Note the SDK's connection state (unused)."""


# Every documented widget prop with a value unlike its default.
WIDGET_VALUES: dict[str, Any] = {
    "application_id": "A1B2C3D4-app",
    "bot_id": "support-bot",
    "user_id": "sample-42",
    "session_token": "session-token-abc123",
    "user_nick_name": "Ada Lovelace",
    "auto_open": True,
    "enable_emoji_feedback": False,
    "enable_mention": True,
    "device_type": "mobile",
    "string_set": {"CHAT_WINDOW_HEADER": "Ask us", "INPUT_PLACEHOLDER": 'Type "here"'},
    "enable_reset_history_on_connect": True,
    "enable_hide_widget_for_deactivated_user": False,
    "enable_widget_expand_button": True,
    "message_input_controls": {"blockWhileBotResponding": 5000},
    "api_host": "https://api-A1B2C3D4-app.sendbird.com",
    "ws_host": "wss://ws-A1B2C3D4-app.sendbird.com",
}

# Trigger -> (handler, the argument names its event carries).
TRIGGERS: dict[str, tuple[EventHandler, tuple[str, ...]]] = {
    "on_session_token_required": (WidgetTestState.token_required, ("request_id",)),
    "on_session_refreshed": (WidgetTestState.refreshed, ()),
    "on_session_error": (WidgetTestState.session_error, ("detail",)),
    "on_session_closed": (WidgetTestState.closed, ()),
    "on_island_status": (WidgetTestState.island_status, ("state", "detail")),
    "on_connection_status": (WidgetTestState.connection_status, ("state", "detail")),
}


@pytest.fixture(scope="module", autouse=True)
def _forget_test_state() -> Iterator[None]:
    """Unregister WidgetTestState afterwards, so no app compiled later in this process has it."""
    yield
    reload_state_module(module=WidgetTestState.__module__)


def render_props(component: rx.Component) -> dict[str, str]:
    """The rendered JSX props as {camelName: JavaScript expression}."""
    rendered = component.render()
    assert rendered["name"] == "ChatAiWidgetBridge"
    props = {}
    for prop in rendered["props"]:
        name, _, value = prop.partition(":")
        props[name] = value
    return props


def event_handler_fields() -> set[str]:
    """The `on_*` fields ChatAiWidget declares as `rx.EventHandler[...]`."""
    names = set()
    for name, field in ChatAiWidget.get_props().items():
        hint = field.annotated_type
        if typing.get_origin(hint) is typing.Annotated and typing.get_args(hint)[0] is EventHandler:
            names.add(name)
    return names


def widget_prop_fields() -> set[str]:
    """The widget props ChatAiWidget declares (everything but triggers and bridge props)."""
    return set(ChatAiWidget.get_props()) - event_handler_fields() - BRIDGE_OWN_PROPS


def bridge_widget_props() -> list[str]:
    """The names in the bridge's `WIDGET_PROPS` array."""
    match = re.search(r"const WIDGET_PROPS = \[(.*?)\];", bridge_source(), re.DOTALL)
    assert match, "WIDGET_PROPS not found in chat_ai_widget.jsx"
    return re.findall(r'"(\w+)"', match.group(1))


@pytest.fixture
def component() -> ChatAiWidget:
    return chat_ai_widget(
        **WIDGET_VALUES,
        **{trigger: handler for trigger, (handler, _) in TRIGGERS.items()},
    )


# ------------------------------------------------------------------ rendering


def test_every_documented_prop_is_rendered_camel_cased(component: ChatAiWidget) -> None:
    props = render_props(component)

    for name, value in WIDGET_VALUES.items():
        camel = to_camel_case(name)
        assert camel in props, f"{name} is not rendered as {camel}"
        assert props[camel] == str(LiteralVar.create(value)), name
    # Spot checks that do not rely on Reflex's own literal formatting.
    assert props["applicationId"] == '"A1B2C3D4-app"'
    assert props["autoOpen"] == "true"
    assert props["enableEmojiFeedback"] == "false"
    assert props["enableHideWidgetForDeactivatedUser"] == "false"
    assert props["deviceType"] == '"mobile"'
    assert "5000" in props["messageInputControls"]
    assert '"blockWhileBotResponding"' in props["messageInputControls"]
    assert str(component).startswith("jsx(ChatAiWidgetBridge,{")
    assert 'userNickName:"Ada Lovelace"' in str(component)


def test_triggers_are_bound_to_the_state_handlers(component: ChatAiWidget) -> None:
    props = render_props(component)
    state_name = WidgetTestState.get_full_name()

    for trigger, (handler, arg_names) in TRIGGERS.items():
        rendered = props[to_camel_case(trigger)]
        assert f'ReflexEvent("{state_name}.{handler.fn.__name__}"' in rendered, trigger
        for position, arg in enumerate(arg_names):
            assert f'["{arg}"] : _ev_{position}' in rendered, (trigger, rendered)
        if not arg_names:
            assert "({  })" in rendered, rendered


def test_island_url_is_the_content_hashed_bundle_the_manifest_names(
    component: ChatAiWidget,
) -> None:
    manifest = json.loads(widget_module.ISLAND_MANIFEST.read_text())
    build = island_build()
    digest = hashlib.sha256(build.file.read_bytes()).hexdigest()

    assert widget_module.ISLAND_MANIFEST == PROJECT_ROOT / "assets/widget-island/manifest.json"
    assert build.file.name == manifest["file"] == f"chat-ai-widget-island.{digest[:12]}.js"
    assert build.hash == digest[:12]
    assert manifest["sha256"] == digest
    expected = f"/widget-island/{manifest['file']}"
    assert island_url() == expected  # no ?v= query: the name itself changes with the content
    assert render_props(component)["islandUrl"] == json.dumps(expected)


def test_island_url_can_be_overridden() -> None:
    props = render_props(chat_ai_widget(island_url="/elsewhere/island.js"))

    assert props["islandUrl"] == '"/elsewhere/island.js"'


def test_the_bridge_comes_with_the_page_and_preloads_the_island(component: ChatAiWidget) -> None:
    """No chunk of its own to fetch after the token; the island is fetched before it."""
    library = widget_module._BRIDGE_MODULE

    assert not isinstance(component, rx.NoSSRComponent)
    assert library == "$/public/external/sample_app/components/chat_ai_widget/chat_ai_widget.jsx"
    # Reflex serves shared assets through a link next to the app's own assets.
    linked = PROJECT_ROOT / "assets" / library.removeprefix("$/public/")
    assert linked.resolve() == (PROJECT_ROOT / "sample_app/components/chat_ai_widget.jsx")

    assert component._get_all_dynamic_imports() == set()
    imports = component._get_all_imports()
    assert {var.tag for var in imports[library] if var.render} == {
        "ChatAiWidgetBridge",
        "preloadIsland",
    }
    # Module-level code of the page: runs as the page's script does, before any token.
    assert list(component._get_all_custom_code()) == [f"preloadIsland({json.dumps(island_url())});"]
    assert "export function preloadIsland(url)" in bridge_source()


def test_no_preload_for_an_island_url_known_only_at_run_time() -> None:
    """Module-level code cannot read state; the import() at mount still loads the island."""
    widget = chat_ai_widget(island_url=WidgetTestState.router.page.path, **WIDGET_VALUES)

    assert widget._get_all_custom_code() == {}
    overridden = chat_ai_widget(island_url="/elsewhere/island.js", **WIDGET_VALUES)
    assert list(overridden._get_all_custom_code()) == ['preloadIsland("/elsewhere/island.js");']


def test_nothing_rendered_names_an_api_token(component: ChatAiWidget) -> None:
    rendered = " ".join(
        [
            str(component),
            repr(component.render()),
            repr(dict(component._get_all_imports())),
            repr(component._get_all_dynamic_imports()),
            repr(component._get_all_custom_code()),
            repr(component._get_all_hooks()),
        ]
    )

    assert not re.search(r"api[_-]?token", rendered, re.IGNORECASE)
    assert not any(FORBIDDEN_NAME.search(name) for name in ChatAiWidget.get_fields())


@pytest.mark.parametrize("name", ["api_token", "sendbird_api_token", "secret"])
def test_passing_an_api_token_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must never reach the browser") as caught:
        chat_ai_widget(**{name: "0123456789abcdef0123456789abcdef01234567"}, **WIDGET_VALUES)

    assert name in str(caught.value)
    assert "0123456789abcdef" not in str(caught.value)


@pytest.mark.parametrize("name", ["apiToken", "API_TOKEN", "sendbird_secret"])
def test_other_spellings_of_an_api_token_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must never reach the browser"):
        chat_ai_widget(**{name: "leaked-api-token-value"}, **WIDGET_VALUES)


# ------------------------------------------------- bridge <-> Python contract


def test_python_triggers_are_called_by_the_bridge() -> None:
    source = bridge_source()
    triggers = event_handler_fields()

    assert set(TRIGGERS) <= triggers  # the enumeration sees the known ones
    assert triggers == set(TRIGGERS), "a new trigger needs a binding in TRIGGERS above"
    for trigger in triggers:
        camel = to_camel_case(trigger)
        assert f"latest.current.{camel}?.(" in source, f"the bridge never calls {camel}"


def test_bridge_calls_no_unknown_trigger() -> None:
    called = set(re.findall(r"latest\.current\.(on\w+)\?\.\(", bridge_source()))

    assert called == {to_camel_case(name) for name in event_handler_fields()}


def test_widget_props_match_between_bridge_and_python() -> None:
    in_bridge = bridge_widget_props()
    in_python = widget_prop_fields()

    assert len(in_bridge) == len(set(in_bridge)), "duplicate names in WIDGET_PROPS"
    assert set(in_bridge) == {to_camel_case(name) for name in in_python}
    assert set(WIDGET_VALUES) == in_python, "the rendering test must cover every prop"


def test_bridge_reads_its_own_props() -> None:
    source = bridge_source()

    assert "props.tokenReply" in source
    destructured = re.search(r"const \{([^}]*)\} = props;", source)
    assert destructured
    names = {name.strip() for name in destructured.group(1).split(",")}
    assert {"islandUrl", "remountKey"} <= names
    for name in BRIDGE_OWN_PROPS:
        assert to_camel_case(name) not in bridge_widget_props()


def test_token_reply_keys_are_what_the_bridge_reads() -> None:
    read = set(re.findall(r"\breply\??\.(\w+)", bridge_source()))

    assert set(TokenReply.__annotations__) == {"request_id", "token", "error"}
    assert read == set(TokenReply.__annotations__)
    assert set(TokenReply.__required_keys__) == read
    assert set(NO_REPLY) == read


def test_session_error_detail_keys_are_what_the_bridge_sends() -> None:
    match = re.search(
        r"function errorDetail\(error\) \{\s*return \{(.*?)\};", bridge_source(), re.S
    )
    assert match
    sent = set(re.findall(r"^\s*(\w+):", match.group(1), re.MULTILINE))

    assert sent == set(SessionErrorDetail.__annotations__) == {"message", "code"}


# ----------------------------------------------------------------- island_url


def test_missing_island_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = PROJECT_ROOT / "assets" / "widget-island" / "not-built-yet.json"
    assert not missing.exists()
    monkeypatch.setattr(widget_module, "ISLAND_MANIFEST", missing)

    with pytest.raises(IslandNotBuiltError, match="make island") as caught:
        island_url()
    assert "assets/widget-island/not-built-yet.json is missing" in str(caught.value)

    with pytest.raises(IslandNotBuiltError):
        chat_ai_widget(**WIDGET_VALUES)
    with pytest.raises(IslandNotBuiltError):
        clear_widget_cache_script("app", "bot")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"file": "chat-ai-widget-island.0123456789ab.js"}, "0123456789ab.js, named by"),
        # What builds before content-hashed names wrote: rebuild.
        ({"file": "chat-ai-widget-island.js"}, "names no hashed island bundle"),
        ({"file": "../../etc/passwd"}, "names no hashed island bundle"),
        (["not", "an", "object"], "names no hashed island bundle"),
    ],
)
def test_manifest_that_names_no_usable_bundle(
    tmp_path: Path, manifest: object, message: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))

    with pytest.raises(IslandNotBuiltError, match="make island") as caught:
        island_build(path)
    assert message in str(caught.value)
    if "named by" in message:  # make's target is in place: it must go for a rebuild
        assert f"delete {tmp_path}/" in str(caught.value)


def test_a_rebuild_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    """The manifest is read again when it changes (the embed route serves the new build)."""
    path = tmp_path / "manifest.json"
    for digest in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        (tmp_path / f"chat-ai-widget-island.{digest}.js").write_text("export {};\n")
        path.write_text(json.dumps({"file": f"chat-ai-widget-island.{digest}.js", "pad": digest}))
        os.utime(path, ns=(time.time_ns(), time.time_ns()))

        assert island_build(path).hash == digest


# ---------------------------------------------------------- clear-cache script


@pytest.mark.parametrize(
    ("app_id", "bot_id"),
    [
        ("sandbox-app", "sandbox-bot"),
        ('a"); alert(1); ("', "b'); alert(2); ('"),
        ("</script><script>alert(1)</script>", "<!--"),
        ("back\\slash\\", '\\"quote'),
        ("line\nbreak\u2028sep", "`${alert(1)}`"),
        ("", "é✓"),
    ],
)
def test_clear_widget_cache_script_escapes_ids(app_id: str, bot_id: str) -> None:
    script = clear_widget_cache_script(app_id, bot_id)

    prefix = f"import({json.dumps(island_url())}).then((island) => island.clearSessionCache("
    assert script.startswith(prefix)
    assert script.endswith("))")
    arguments = json.loads(f"[{script[len(prefix) : -2]}]")
    assert arguments == [app_id, bot_id]
    # json.dumps escapes raw newlines and non-ASCII, so nothing breaks the string literal.
    assert "\n" not in script
    assert "\u2028" not in script


# --------------------------------------------------------------------- state


@pytest.mark.parametrize(
    ("state", "known_var"), [(AuthState, "username"), (ChatSessionState, "session_token")]
)
def test_state_never_holds_the_api_token(state: type[rx.State], known_var: str) -> None:
    public = {name for name in state.vars if not name.startswith("_")}
    every_field = set(state.get_fields())  # backend (underscore) fields included
    computed = set(state.computed_vars)  # derived from fields (the panel's status)

    assert known_var in public  # the listing is real
    assert public <= every_field | computed | {"router"}
    for name in every_field | public:
        assert not FORBIDDEN_NAME.search(name), f"{state.__name__}.{name}"


def test_bridge_reports_exactly_the_connection_states_python_knows() -> None:
    reported = set(re.findall(r'\bsay\(\s*"(\w+)"', bridge_source()))
    reported |= set(re.findall(r'\? "(\w+)" : "(\w+)"', bridge_source())[0])
    assert reported == set(CONNECTION_STATES)


def test_bridge_observes_the_sdk_instance_configure_session_receives() -> None:
    source = bridge_source()
    # connect() on the instance (the first connection and why it failed) ...
    assert "sdk.connect = function" in source
    # ... the SDK's own ConnectionHandler class, registered on the same instance ...
    for callback in (
        "onConnected",
        "onReconnectStarted",
        "onReconnectSucceeded",
        "onReconnectFailed",
        "onDisconnected",
    ):
        assert f"{callback}: () => say(" in source
    assert "sdk.removeConnectionHandler" in source
    # ... and its connectionState as a safety net.
    assert "sdk.connectionState" in source


def test_a_remount_forgets_the_cached_channel_first() -> None:
    source = bridge_source()
    clear = source.index("island.clearSessionCache(applicationId, botId)")
    assert source.index("remountKey !== firstRemountKey.current") < clear
    assert clear < source.index("island.mountChatAiWidget(")
