"""AuthState's handlers, called directly: sign-in, registration, sign-out, and what is callable."""

from __future__ import annotations

import asyncio

import pytest
import reflex as rx

from sample_app import routes
from sample_app.accounts import RateLimit
from sample_app.signed_in import end_sign_in
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import SIGNED_OUT_REPLY, ChatSessionState
from sample_app.state.session_phase import SessionPhase
from tests.state.conftest import (
    PASSWORD,
    StateHarness,
    has_script,
    has_toast,
    redirect_target,
    run,
)

# ---- what the browser can call ----------------------------------------------------------


def test_only_the_intended_handlers_are_events() -> None:
    """Every public method of a Reflex state is an event the browser can send: keep the list short.

    Helpers that check the sign-in or issue tokens are private, so no page can call them with
    arguments of its choosing.
    """
    auth_events = {
        "redirect_if_signed_in",
        "sign_in",
        "register",
        "sign_out",
        "sign_out_everywhere",
    }
    chat_events = {
        "open_chat",
        "answer_token_request",
        "session_refreshed",
        "session_error",
        "session_closed",
        "island_status",
        "connection_status",
        "reconnect",
        "end_session",
        "sandbox_expire_token",
        "sandbox_expire_session_key",
        "sandbox_revoke",
    }
    # `setvar` is Reflex's own; with automatic setters off it can set nothing (below).
    assert set(AuthState.event_handlers) == auth_events | {"setvar"}
    assert set(ChatSessionState.event_handlers) == chat_events | {"setvar"}


def test_the_browser_cannot_set_state_vars(tab: StateHarness) -> None:
    """Reflex's generic `setvar` event finds no setter for any var of these states."""
    for state in (tab.auth, tab.chat):
        for name in type(state).base_vars:
            with pytest.raises(AttributeError):
                type(state).setvar.fn(state, name, "attacker's value")


# ---- redirect_if_signed_in ---------------------------------------------------------------


async def test_sign_in_page_sends_a_signed_in_browser_to_the_chat(tab: StateHarness) -> None:
    tab.sign_in_tab("alice")
    tab.auth.form_error = "left over"

    updates = await run(tab.auth.redirect_if_signed_in())

    assert redirect_target(updates) == routes.CHAT
    assert tab.auth.form_error == ""


@pytest.mark.parametrize("how", ["signed out", "expired", "revoked", "forged"])
async def test_sign_in_page_stays_without_a_valid_sign_in(tab: StateHarness, how: str) -> None:
    token = tab.sign_in_tab("alice")
    if how == "signed out":
        tab.auth.sign_in_token = ""
    elif how == "expired":
        tab.clock.advance(hours=13)
    elif how == "revoked":
        tab.accounts.sign_out(token)
    else:
        tab.auth.sign_in_token = "forged-" + "x" * 40

    updates = await run(tab.auth.redirect_if_signed_in())

    assert redirect_target(updates) is None
    assert tab.auth.sign_in_token == ""
    assert tab.auth.username == ""


# ---- sign_in -----------------------------------------------------------------------------


async def test_sign_in_keeps_the_token_and_goes_to_the_chat(tab: StateHarness) -> None:
    tab.register("alice")

    updates = await run(tab.auth.sign_in({"username": "Alice", "password": PASSWORD}))

    assert redirect_target(updates) == routes.CHAT
    assert tab.auth.sign_in_token
    assert tab.accounts.resolve_sign_in(tab.auth.sign_in_token) is not None
    assert (tab.auth.username, tab.auth.display_name) == ("alice", "Alice")
    assert not tab.auth.submitting


async def test_a_new_sign_in_drops_the_widget_of_the_previous_one(tab: StateHarness) -> None:
    """Signed out in another tab, this tab still holds a (now revoked) token and a mounted
    widget; the chat page it is sent to after signing in again must not mount the widget
    with that token (the widget reads it once), but wait for the one open_chat issues."""
    await tab.open_chat("alice")
    old_token = tab.chat.session_token
    assert tab.chat.widget_visible and old_token
    await end_sign_in(tab.auth.sign_in_token)  # the other tab's sign-out

    updates = await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))

    assert redirect_target(updates) == routes.CHAT
    assert not tab.chat.widget_visible
    assert tab.chat.session_token == ""
    await run(tab.chat.open_chat())
    assert tab.chat.widget_visible and tab.chat.session_token


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "alice", "password": "wrong password!"}, "Wrong username or password."),
        ({"username": "nobody", "password": PASSWORD}, "Wrong username or password."),
        ({"username": " ", "password": PASSWORD}, "Enter your username and password."),
        ({"username": "alice"}, "Enter your username and password."),
    ],
)
async def test_sign_in_refusals_say_why(
    tab: StateHarness, form: dict[str, str], message: str
) -> None:
    tab.register("alice")

    updates = await run(tab.auth.sign_in(form))

    assert redirect_target(updates) is None
    assert tab.auth.form_error == message
    assert tab.auth.sign_in_token == ""
    assert not tab.auth.submitting


async def test_sign_in_after_too_many_failures_says_when_to_retry(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tab of the harness has no IP; give it one, as every real connection has.
    monkeypatch.setattr(AuthState, "_client_key", lambda self: "203.0.113.7")
    tab.register("alice")
    for _ in range(RateLimit().free_failures):  # the harness's service uses the defaults
        await run(tab.auth.sign_in({"username": "alice", "password": "wrong password!"}))

    await run(tab.auth.sign_in({"username": "alice", "password": "wrong password!"}))

    assert tab.auth.form_error.startswith("Too many failed sign-in attempts. Try again in")


# ---- register ----------------------------------------------------------------------------


async def test_register_creates_the_account_and_signs_in(tab: StateHarness) -> None:
    form = {
        "username": "carol",
        "password": PASSWORD,
        "confirm_password": PASSWORD,
        "display_name": "Carol C.",
    }

    updates = await run(tab.auth.register(form))

    assert redirect_target(updates) == routes.CHAT
    account = tab.accounts.resolve_sign_in(tab.auth.sign_in_token)
    assert account is not None
    assert account.display_name == "Carol C."


async def test_register_with_mismatched_passwords_creates_nothing(tab: StateHarness) -> None:
    form = {"username": "carol", "password": PASSWORD, "confirm_password": PASSWORD + "!"}

    await run(tab.auth.register(form))

    assert tab.auth.field_errors == {"confirm_password": "The passwords do not match."}
    assert tab.auth.sign_in_token == ""
    assert await run(tab.auth.sign_in({"username": "carol", "password": PASSWORD})) == []


async def test_register_shows_every_field_problem(tab: StateHarness) -> None:
    tab.register("alice")
    form = {"username": "alice", "password": "short", "confirm_password": "short"}

    await run(tab.auth.register(form))

    assert set(tab.auth.field_errors) >= {"username", "password"}
    assert "taken" in tab.auth.field_errors["username"]
    assert tab.auth.form_error == "Please correct the highlighted fields."
    assert tab.auth.sign_in_token == ""


# ---- sign_out / sign_out_everywhere ------------------------------------------------------


async def test_sign_out_ends_the_sign_in_then_the_sendbird_session(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    token = tab.auth.sign_in_token
    user_id = tab.chat.sendbird_user_id

    updates = await run(tab.auth.sign_out())

    assert redirect_target(updates) == routes.SIGN_IN
    assert has_script(updates)  # the widget's cached channel is forgotten
    assert tab.accounts.resolve_sign_in(token) is None
    assert tab.auth.sign_in_token == ""
    assert [t["revoked"] for t in await tab.control.tokens(user_id)] == [True]
    chat = tab.chat
    assert not chat.widget_visible
    assert (chat.session_token, chat.sendbird_user_id, chat.timeline) == ("", "", [])
    assert chat.phase == SessionPhase.NOT_STARTED


async def test_sign_out_with_an_expired_sign_in_still_revokes(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    tab.clock.advance(hours=13)

    updates = await run(tab.auth.sign_out())

    assert redirect_target(updates) == routes.SIGN_IN
    assert has_script(updates)
    assert [t["revoked"] for t in await tab.control.tokens(user_id)] == [True]


async def test_sign_out_when_sendbird_fails_still_signs_out(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    token = tab.auth.sign_in_token
    await tab.control.fault(method="DELETE", path="/v3/users/*/token", count=5, status=500)

    updates = await run(tab.auth.sign_out())

    assert redirect_target(updates) == routes.SIGN_IN
    assert tab.accounts.resolve_sign_in(token) is None
    assert tab.auth.sign_in_token == ""


async def test_sign_out_of_a_signed_out_tab_unmounts_and_revokes_nobody(tab: StateHarness) -> None:
    """With no sign-in token nobody can be named: the widget goes, no one's tokens are touched."""
    await tab.open_chat("alice")
    tab.auth.sign_in_token = ""

    updates = await run(tab.auth.sign_out())

    assert redirect_target(updates) == routes.SIGN_IN
    assert not tab.chat.widget_visible
    assert not any(token["revoked"] for token in await tab.control.tokens())


async def test_sign_out_revokes_the_sign_in_before_the_session_tokens(tab: StateHarness) -> None:
    """While the Sendbird tokens are being revoked, no tab of this browser may get a new one."""
    await tab.open_chat("alice")
    token = tab.auth.sign_in_token
    tokens = tab.services.tokens
    revoke = tokens.revoke
    seen: list[bool] = []

    async def revoke_and_observe(user_id: str) -> None:
        seen.append(tab.accounts.resolve_sign_in(token) is None)
        await revoke(user_id)

    tokens.revoke = revoke_and_observe  # type: ignore[method-assign]

    await run(tab.auth.sign_out())

    assert seen == [True]


async def test_a_failed_revocation_at_sign_out_is_logged(
    tab: StateHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    await tab.control.fault(method="DELETE", path="/v3/users/*/token", count=5, status=500)

    await run(tab.auth.sign_out())

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(user_id in message and "failed" in message for message in warnings)


async def test_sign_out_everywhere_ends_every_browsers_sign_in(tab: StateHarness) -> None:
    await tab.open_chat("alice")
    other_browser = tab.accounts.sign_in("alice", PASSWORD, "laptop").sign_in_token
    user_id = tab.chat.sendbird_user_id

    updates = await run(tab.auth.sign_out_everywhere())

    assert redirect_target(updates) == routes.SIGN_IN
    assert tab.accounts.resolve_sign_in(other_browser) is None
    assert [t["revoked"] for t in await tab.control.tokens(user_id)] == [True]


async def test_sign_out_everywhere_with_a_stale_sign_in_ends_only_that_one(
    tab: StateHarness,
) -> None:
    """An expired sign-in token cannot end the account's other, valid sign-ins."""
    await tab.open_chat("alice")
    other_browser = tab.accounts.sign_in("alice", PASSWORD, "laptop").sign_in_token
    tab.clock.advance(hours=13)
    fresh = tab.accounts.sign_in("alice", PASSWORD, "laptop").sign_in_token

    await run(tab.auth.sign_out_everywhere())

    assert tab.accounts.resolve_sign_in(other_browser) is None  # expired on its own
    assert tab.accounts.resolve_sign_in(fresh) is not None


async def test_sign_out_in_one_tab_refuses_the_other_tabs_token_requests(
    tab: StateHarness,
) -> None:
    """Tabs of one browser share the sign-in token: once it is revoked, no tab gets a token."""
    await tab.open_chat("alice")
    token = tab.auth.sign_in_token
    user_id = tab.chat.sendbird_user_id
    await end_sign_in(token)  # what the other tab's sign_out does first

    await run(tab.chat.answer_token_request(3))

    assert tab.chat.token_reply["token"] == ""
    assert len(await tab.control.tokens(user_id)) == 1


def second_tab() -> ChatSessionState:
    """Another tab of the same browser: its own state tree (the sign-in token is shared)."""
    root = rx.State(_reflex_internal_init=True)
    chat = root.substates[AuthState.get_name()].substates[ChatSessionState.get_name()]
    assert isinstance(chat, ChatSessionState)
    return chat


async def test_a_token_issued_during_sign_out_never_reaches_the_browser(
    tab: StateHarness,
) -> None:
    """Tab B asks for a token; Sendbird is slow; tab A signs out meanwhile.

    Tab B must drop the token Sendbird finally issues: its reply is a refusal and its state
    holds no session token. The sign-out's revocation waits for that issuance, so the late
    token is revoked with the others rather than left valid at Sendbird.
    """
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    tab_b = second_tab()
    tab_b.sign_in_token = tab.auth.sign_in_token
    await run(tab_b.open_chat())
    assert tab_b.widget_visible
    await tab.control.fault(method="POST", path="/v3/users/*/token", count=1, delay=0.5)

    request = asyncio.create_task(run(tab_b.answer_token_request(5)))
    await asyncio.sleep(0.1)  # tab B's issuance is now waiting at the sandbox
    await run(tab.auth.sign_out())
    tab_b.sign_in_token = ""  # localStorage sync: the other tab sees the sign-out
    await request

    assert tab_b.token_reply == {"request_id": 5, "token": "", "error": SIGNED_OUT_REPLY}
    assert tab_b.session_token == ""
    assert not tab_b.widget_visible
    issued = await tab.control.tokens(user_id)
    assert len(issued) == 2  # the first token (tab B's page view reused it), the late one
    assert issued[-1]["revoked"]  # issued before the revocation went out, so revoked too


async def test_the_late_token_is_dropped_even_before_the_other_tab_syncs(
    tab: StateHarness,
) -> None:
    """The re-check uses the server's view of the sign-in, not the tab's copy of the token."""
    await tab.open_chat("alice")
    tab_b = second_tab()
    tab_b.sign_in_token = tab.auth.sign_in_token
    await run(tab_b.open_chat())
    await tab.control.fault(method="POST", path="/v3/users/*/token", count=1, delay=0.5)

    request = asyncio.create_task(run(tab_b.answer_token_request(6)))
    await asyncio.sleep(0.1)
    await run(tab.auth.sign_out())  # tab B still holds the (now revoked) sign-in token
    await request

    assert tab_b.token_reply["token"] == ""
    assert tab_b.session_token == ""


async def test_a_revocation_that_keeps_failing_is_shown(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sample_app.state.chat_session.REVOCATION_RETRY_PAUSE_SECONDS", 0.01)
    await tab.open_chat("alice")
    await tab.control.fault(method="DELETE", path="/v3/users/*/token", count=5, status=500)

    updates = await run(tab.auth.sign_out())

    assert has_toast(updates)


async def test_a_revocation_that_fails_once_is_retried(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sample_app.state.chat_session.REVOCATION_RETRY_PAUSE_SECONDS", 0.01)
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    await tab.control.fault(method="DELETE", path="/v3/users/*/token", count=1, status=500)

    updates = await run(tab.auth.sign_out())

    assert not has_toast(updates)
    assert [t["revoked"] for t in await tab.control.tokens(user_id)] == [True]
