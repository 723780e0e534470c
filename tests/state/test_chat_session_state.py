"""ChatSessionState's handlers, called directly: who gets a session token, and what the panel shows.

The sandbox's list of issued tokens is the proof that a refusal issued nothing.
"""

from __future__ import annotations

import pytest

from sample_app import routes
from sample_app.redis_shared import SharedStateUnavailableError
from sample_app.signed_in import end_sign_in
from sample_app.state.chat_session import (
    MAX_REPORTED_TEXT,
    MAX_TIMELINE_EVENTS,
    SIGNED_OUT_REPLY,
    ChatSessionState,
)
from sample_app.state.session_phase import PHASE_DISPLAY, SessionPhase
from tests.state.conftest import APP_ID, BOT_ID, StateHarness, has_script, redirect_target, run

TOKEN_FAULT = {"method": "POST", "path": "/v3/users/*/token", "count": 5, "status": 500}


def kinds(chat: ChatSessionState) -> list[str]:
    """The timeline's event kinds, newest first."""
    return [event["kind"] for event in chat.timeline]


# ---- open_chat -------------------------------------------------------------------------


async def test_open_chat_issues_the_first_token_and_shows_the_widget(tab: StateHarness) -> None:
    updates = await tab.open_chat("alice")

    chat = tab.chat
    assert redirect_target(updates) is None
    assert chat.widget_visible
    assert chat.session_token
    assert chat.sendbird_user_id.startswith("sample-")
    assert chat.nickname == "Alice"
    assert (chat.app_id, chat.bot_id) == (APP_ID, BOT_ID)
    assert chat.widget_api_host == tab.services.settings.widget_api_host
    assert chat.widget_ws_host == tab.services.settings.widget_ws_host
    assert chat.on_sandbox
    assert chat.phase == SessionPhase.CONNECTING
    assert chat.status == "Token issued; connecting the widget"
    assert chat.status_tone == "blue"
    assert await tab.issued(chat.sendbird_user_id) == 1
    assert tab.auth.username == "alice"


async def test_open_chat_shows_issuing_only_when_sendbird_is_asked(tab: StateHarness) -> None:
    """A first view pushes "issuing" before the Sendbird call; a view with a cached token
    pushes nothing before it has the token (one update, one render of the page)."""

    async def phases_pushed() -> list[str]:
        """The phase at each push of open_chat, and at its end."""
        pushed = [tab.chat.phase async for _ in tab.chat.open_chat()]
        return [*pushed, tab.chat.phase]

    tab.sign_in_tab("alice")
    assert await phases_pushed() == [SessionPhase.ISSUING_FIRST_TOKEN, SessionPhase.CONNECTING]
    assert await phases_pushed() == [SessionPhase.CONNECTING]
    assert await tab.issued(tab.chat.sendbird_user_id) == 1


async def test_open_chat_signed_out_redirects_and_issues_nothing(tab: StateHarness) -> None:
    updates = await run(tab.chat.open_chat())

    assert redirect_target(updates) == routes.SIGN_IN
    assert not tab.chat.widget_visible
    assert await tab.control.tokens() == []


async def test_open_chat_with_an_expired_sign_in_redirects_and_drops_it(tab: StateHarness) -> None:
    tab.sign_in_tab("alice")
    tab.clock.advance(hours=13)

    updates = await run(tab.chat.open_chat())

    assert redirect_target(updates) == routes.SIGN_IN
    assert tab.auth.sign_in_token == ""
    assert tab.auth.username == ""
    assert await tab.control.tokens() == []


async def test_open_chat_with_a_revoked_sign_in_redirects(tab: StateHarness) -> None:
    token = tab.sign_in_tab("alice")
    tab.accounts.sign_out(token)  # signed out in another tab

    updates = await run(tab.chat.open_chat())

    assert redirect_target(updates) == routes.SIGN_IN
    assert await tab.control.tokens() == []


async def test_open_chat_when_sendbird_fails_shows_why_and_no_widget(tab: StateHarness) -> None:
    await tab.control.fault(**TOKEN_FAULT)

    await tab.open_chat("alice")

    chat = tab.chat
    assert not chat.widget_visible
    assert chat.session_token == ""
    assert chat.phase == SessionPhase.START_FAILED
    assert chat.status_tone == "red"
    assert "HTTP 500" in chat.last_error
    assert kinds(chat)[0] == "error"
    assert chat.reconnect_offered


async def test_open_chat_with_the_token_store_down_shows_why(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis (the shared token store) not answering is shown on the panel, not raised."""

    async def unavailable(_user_id: str) -> None:
        raise SharedStateUnavailableError("Redis did not answer")

    monkeypatch.setattr(tab.services.tokens._store, "get", unavailable)

    await tab.open_chat("alice")

    chat = tab.chat
    assert not chat.widget_visible
    assert chat.phase == SessionPhase.START_FAILED
    assert "shared token cache (Redis) is unavailable" in chat.last_error
    assert kinds(chat)[0] == "error"


async def test_open_chat_for_another_account_starts_a_clean_panel(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    alice_id = tab.chat.sendbird_user_id
    tab.sign_in_tab("bob")

    await run(tab.chat.open_chat())

    chat = tab.chat
    assert chat.sendbird_user_id != alice_id
    assert chat.nickname == "Bob"
    assert len(chat.timeline) == 1  # only bob's first token
    assert await tab.issued(chat.sendbird_user_id) == 1


# ---- answer_token_request ----------------------------------------------------------------


async def test_token_request_is_answered_for_the_signed_in_user(tab: StateHarness) -> None:
    await tab.open_chat("alice")

    await run(tab.chat.answer_token_request(7))

    chat = tab.chat
    assert chat.token_reply["request_id"] == 7
    assert chat.token_reply["error"] == ""
    assert chat.token_reply["token"] == chat.session_token
    assert await tab.issued(chat.sendbird_user_id) == 2


@pytest.mark.parametrize("how", ["signed out", "expired", "revoked", "another account"])
async def test_token_request_is_refused_and_issues_nothing(tab: StateHarness, how: str) -> None:
    await tab.open_chat("alice")
    alice_id = tab.chat.sendbird_user_id
    if how == "signed out":
        tab.auth.sign_in_token = ""
    elif how == "expired":
        tab.clock.advance(hours=13)
    elif how == "revoked":
        await end_sign_in(tab.auth.sign_in_token)  # signed out in another tab
    else:
        tab.sign_in_tab("bob")  # bob signed in in another tab of this browser

    await run(tab.chat.answer_token_request(8))

    assert tab.chat.token_reply == {"request_id": 8, "token": "", "error": SIGNED_OUT_REPLY}
    assert kinds(tab.chat)[0] == "token refused"
    assert await tab.issued(alice_id) == 1
    assert len(await tab.control.tokens()) == 1  # nobody else got one either


async def test_token_request_from_a_tab_without_a_chat_leaves_no_trace(tab: StateHarness) -> None:
    """A raw event from a signed-out tab gets a refusal and does not grow the tab's state."""
    for request_id in range(100):
        await run(tab.chat.answer_token_request(request_id))

    assert tab.chat.token_reply["error"] == SIGNED_OUT_REPLY
    assert tab.chat.timeline == []
    assert await tab.control.tokens() == []


async def test_token_request_after_the_session_ended_issues_nothing(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    await run(tab.chat.end_session())

    await run(tab.chat.answer_token_request(4))

    assert tab.chat.token_reply["token"] == ""
    assert tab.chat.phase == SessionPhase.ENDED
    assert len(await tab.control.tokens(user_id)) == 1


async def test_token_request_when_sendbird_fails_rejects_with_the_reason(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    await tab.control.fault(**TOKEN_FAULT)

    await run(tab.chat.answer_token_request(9))

    chat = tab.chat
    assert chat.token_reply["request_id"] == 9
    assert chat.token_reply["token"] == ""
    assert "HTTP 500" in chat.token_reply["error"]
    assert chat.phase == SessionPhase.REFRESH_FAILED
    assert chat.last_error == chat.token_reply["error"]


# ---- the widget's other callbacks ----------------------------------------------------------


async def test_callbacks_move_the_phase_and_the_timeline(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat

    chat.island_status("mounted", "18.3.1")
    assert (chat.phase, chat.status) == (SessionPhase.WIDGET_LOADED, "Widget loaded; connecting…")
    chat.connection_status("connected", "")
    assert (chat.phase, chat.status) == (SessionPhase.CONNECTED, "Connected")
    chat.session_error({"message": "Failed to get the session token", "code": 800500})
    assert chat.phase == SessionPhase.SESSION_ERROR
    assert chat.last_error == "Failed to get the session token (800500)"
    assert chat.reconnect_offered
    chat.session_refreshed()
    assert chat.status == "Connected (session refreshed)"
    assert chat.last_error == ""
    assert chat.last_refresh_at
    assert chat.reconnect_offered  # a blank widget reports nothing: Reconnect stays offered
    chat.session_closed()
    chat.session_closed()  # the SDK reports a revocation twice
    assert chat.phase == SessionPhase.CLOSED
    assert kinds(chat)[:3] == ["onSessionClosed", "onSessionRefreshed", "onSessionError"]
    chat.island_status("error", "the island failed to load")
    assert chat.phase == SessionPhase.WIDGET_ERROR
    assert chat.last_error == "the island failed to load"


async def test_browser_sent_text_is_bounded(tab: StateHarness) -> None:
    await tab.open_chat("alice")

    tab.chat.session_error({"message": "x" * 100_000, "code": 1})
    tab.chat.island_status("error", "y" * 100_000)
    tab.chat.connection_status("failed", "z" * 100_000)

    assert len(tab.chat.last_error) == MAX_REPORTED_TEXT
    assert all(len(event["detail"]) <= MAX_REPORTED_TEXT + 20 for event in tab.chat.timeline)


async def test_the_timeline_keeps_the_newest_events_only(tab: StateHarness) -> None:
    await tab.open_chat("alice")

    reported = 3 * MAX_TIMELINE_EVENTS
    for number in range(reported):
        tab.chat.session_error({"message": f"error {number}", "code": 0})

    details = [event["detail"] for event in tab.chat.timeline]
    # Newest first: the last MAX_TIMELINE_EVENTS reports, and nothing older.
    newest = range(reported - 1, reported - 1 - MAX_TIMELINE_EVENTS, -1)
    assert details == [f"error {number}" for number in newest]


async def test_callbacks_from_a_tab_without_a_widget_change_nothing(tab: StateHarness) -> None:
    chat = tab.chat
    chat.session_refreshed()
    chat.session_error({"message": "spoofed", "code": 1})
    chat.session_closed()
    chat.island_status("mounted", "spoofed")
    chat.connection_status("failed", "spoofed")
    chat.connection_status("connected", "spoofed")

    assert chat.timeline == []
    assert chat.last_error == ""
    assert chat.phase == SessionPhase.NOT_STARTED


# ---- reconnect -----------------------------------------------------------------------------


async def test_reconnect_remounts_with_a_new_token(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    tab.chat.session_closed()

    updates = await run(tab.chat.reconnect())

    chat = tab.chat
    assert redirect_target(updates) is None
    assert chat.remount_key == 1
    assert chat.widget_visible
    assert kinds(chat)[0] == "reconnect"
    assert await tab.issued(chat.sendbird_user_id) == 2


@pytest.mark.parametrize("how", ["signed out", "expired", "revoked"])
async def test_reconnect_without_a_valid_sign_in_goes_to_sign_in(
    tab: StateHarness, how: str
) -> None:
    await tab.open_chat("alice")
    if how == "signed out":
        tab.auth.sign_in_token = ""
    elif how == "expired":
        tab.clock.advance(hours=13)
    else:
        await end_sign_in(tab.auth.sign_in_token)  # signed out in another tab

    updates = await run(tab.chat.reconnect())

    assert redirect_target(updates) == routes.SIGN_IN
    assert not tab.chat.widget_visible
    assert tab.chat.session_token == ""
    assert len(await tab.control.tokens()) == 1


async def test_reconnect_after_another_account_signed_in_reopens_the_chat(
    tab: StateHarness,
) -> None:
    await tab.open_chat("alice")
    tab.chat.session_closed()
    tab.sign_in_tab("bob")

    updates = await run(tab.chat.reconnect())

    assert redirect_target(updates) == routes.CHAT
    assert not tab.chat.widget_visible
    assert len(await tab.control.tokens()) == 1  # bob's first token comes from open_chat


async def test_reconnect_when_sendbird_fails_says_so(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    tab.chat.session_closed()
    await tab.control.fault(**TOKEN_FAULT)

    await run(tab.chat.reconnect())

    assert tab.chat.phase == SessionPhase.RECONNECT_FAILED
    assert tab.chat.remount_key == 0
    assert "HTTP 500" in tab.chat.last_error


# ---- end_session ---------------------------------------------------------------------------


async def test_end_session_unmounts_revokes_and_clears_the_widget_cache(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id

    updates = await run(tab.chat.end_session())

    chat = tab.chat
    assert not chat.widget_visible
    assert chat.session_token == ""
    assert chat.phase == SessionPhase.ENDED
    assert has_script(updates)
    assert [token["revoked"] for token in await tab.control.tokens(user_id)] == [True]
    assert tab.auth.sign_in_token  # still signed in


async def test_end_session_for_another_account_revokes_nobody(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    tab.sign_in_tab("bob")

    await run(tab.chat.end_session())

    assert not tab.chat.widget_visible
    assert not any(token["revoked"] for token in await tab.control.tokens())


async def test_end_session_when_revocation_fails_shows_it(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    await tab.control.fault(method="DELETE", path="/v3/users/*/token", count=5, status=500)

    await run(tab.chat.end_session())

    assert tab.chat.last_error.startswith("Revoking the Sendbird tokens failed")
    assert not tab.chat.widget_visible


# ---- sandbox demo controls -----------------------------------------------------------------


async def test_sandbox_controls_act_on_this_chats_user(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id

    await run(tab.chat.sandbox_expire_token())
    assert [token["expired"] for token in await tab.control.tokens(user_id)] == [True]
    await run(tab.chat.sandbox_expire_session_key())
    await run(tab.chat.sandbox_revoke())
    assert [token["revoked"] for token in await tab.control.tokens(user_id)] == [True]
    assert kinds(tab.chat)[:3] == ["sandbox", "sandbox", "sandbox"]


async def test_after_a_sandbox_revocation_the_next_page_view_gets_a_new_token(
    tab: StateHarness,
) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id

    await run(tab.chat.sandbox_revoke())
    await run(tab.chat.open_chat())

    assert [token["revoked"] for token in await tab.control.tokens(user_id)] == [True, False]


def test_every_phase_has_a_display() -> None:
    assert set(PHASE_DISPLAY) == set(SessionPhase)


async def test_sandbox_controls_do_nothing_for_a_signed_out_tab(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    tab.auth.sign_in_token = ""

    await run(tab.chat.sandbox_revoke())

    assert not any(token["revoked"] for token in await tab.control.tokens(user_id))


async def test_sign_in_expiry_is_checked_on_every_request(tab: StateHarness) -> None:
    """A sign-in that expires while the chat is open stops the next refresh."""
    await tab.open_chat("alice")
    tab.clock.advance(hours=11, minutes=59)
    await run(tab.chat.answer_token_request(1))
    assert tab.chat.token_reply["token"]

    tab.clock.advance(minutes=2)
    await run(tab.chat.answer_token_request(2))

    assert tab.chat.token_reply["error"] == SIGNED_OUT_REPLY
    assert tab.auth.sign_in_token == ""


# ---- the SDK's connection state --------------------------------------------------------------


async def test_connected_only_once_the_sdk_connects(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    assert chat.phase == SessionPhase.CONNECTING

    chat.island_status("mounted", "18.3.1")
    assert chat.status == "Widget loaded; connecting…"
    assert not chat.reconnect_offered
    chat.connection_status("connecting", "")
    assert chat.phase == SessionPhase.WIDGET_LOADED
    chat.connection_status("connected", "")
    assert (chat.phase, chat.status) == (SessionPhase.CONNECTED, "Connected")
    assert kinds(chat)[:3] == ["SDK connected", "SDK connecting", "widget mounted"]


async def test_a_refused_first_connection_shows_the_reason(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    chat.island_status("mounted", "18.3.1")

    chat.connection_status("failed", "400300: The user is deactivated.")

    assert (chat.phase, chat.status) == (
        SessionPhase.CONNECTION_FAILED,
        "Could not connect to Sendbird",
    )
    assert chat.last_error == "400300: The user is deactivated."
    assert chat.reconnect_offered
    assert kinds(chat)[0] == "SDK connection failed"
    # A later success (the SDK or a reconnect) clears the failure.
    chat.connection_status("connected", "")
    assert (chat.phase, chat.last_error) == (SessionPhase.CONNECTED, "")


async def test_reconnecting_and_disconnected_are_shown(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    chat.connection_status("connected", "")

    chat.connection_status("reconnecting", "")
    assert chat.phase == SessionPhase.RECONNECTING_SDK
    assert not chat.reconnect_offered
    chat.connection_status("connected", "")
    assert chat.phase == SessionPhase.CONNECTED
    chat.connection_status("disconnected", "the SDK could not reconnect")
    assert (chat.phase, chat.status) == (SessionPhase.DISCONNECTED, "Disconnected")
    assert chat.reconnect_offered


async def test_the_disconnect_after_a_closed_session_keeps_it_closed(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    chat.connection_status("connected", "")
    chat.session_closed()

    chat.connection_status("disconnected", "")

    assert chat.phase == SessionPhase.CLOSED
    assert chat.last_error == ""


async def test_a_login_refused_as_deactivated_shows_the_refusal_not_closed(
    tab: StateHarness,
) -> None:
    """400300 makes the SDK close the session and reject connect(): the reason stays."""
    await tab.open_chat("alice")
    chat = tab.chat
    chat.session_closed()
    chat.connection_status("failed", "400300: User is deactivated.")
    assert (chat.phase, chat.last_error) == (
        SessionPhase.CONNECTION_FAILED,
        "400300: User is deactivated.",
    )
    chat.session_closed()  # in the other order too
    assert chat.phase == SessionPhase.CONNECTION_FAILED


async def test_a_refreshed_session_stays_refreshed_when_the_sdk_reconnects(
    tab: StateHarness,
) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    chat.session_refreshed()
    chat.connection_status("connected", "")
    assert chat.status == "Connected (session refreshed)"


async def test_unknown_connection_states_are_ignored(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    chat = tab.chat
    before = (chat.phase, list(chat.timeline))
    chat.connection_status("hacked", "x")
    chat.connection_status("", "")
    assert (chat.phase, chat.timeline) == before


async def test_reconnect_notes_that_the_widget_cache_is_cleared(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    key = tab.chat.remount_key
    await run(tab.chat.reconnect())
    assert tab.chat.remount_key == key + 1
    assert "widget cache cleared" in tab.chat.timeline[0]["detail"]
    tab.chat.island_status("mounted", "18.3.1")
    assert tab.chat.phase == SessionPhase.WIDGET_LOADED
