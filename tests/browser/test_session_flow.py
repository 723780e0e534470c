"""The session-token lifecycle with the real widget against the sandbox.

Each test signs up a new account (fresh browser storage), chats with the bot, then makes
the sandbox do what Sendbird does over a session's life and checks what the user sees.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.browser.conftest import SandboxHandle, Traffic
from tests.browser.helpers import (
    expect_bot_reply,
    expect_timeline,
    register,
    send_message,
    sendbird_user_id,
    unique_username,
    wait_for_chat,
)


def start_chat(page: Page, stem: str) -> str:
    """Register, open the chat, and return the Sendbird user id the server derived."""
    register(page, unique_username(stem), f"{stem.title()} Tester")
    wait_for_chat(page)
    return sendbird_user_id(page)


def test_user_chats_with_the_bot(page: Page, sandbox: SandboxHandle, traffic: Traffic) -> None:
    user_id = start_chat(page, "chat")

    send_message(page, "what does the bot say")
    expect_bot_reply(page, "what does the bot say")

    # The server issued exactly one token for the first page view; the widget used it.
    assert len(sandbox.tokens(user_id)) == 1
    expect(page.get_by_test_id("session-status")).to_have_text("Connected")
    # The widget got the server's nickname, so it never overwrote it (PUT /v3/users/{id}).
    assert not traffic.requested(r"^PUT \S+/v3/users/"), traffic.requested("/v3/users")
    # The bot's suggested replies are offered as chips.
    expect(page.get_by_text("How are session tokens issued?")).to_be_visible()
    # The panel says when that token expires, relative and in the browser's own time zone.
    expires_at_ms = sandbox.tokens(user_id)[0]["expires_at"]
    time_zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    local = datetime.fromtimestamp(expires_at_ms / 1000, ZoneInfo(time_zone))
    expected = rf"^in 30 minutes \({local:%H:%M:%S}\)$"
    expect(page.get_by_test_id("token-expiry")).to_have_text(re.compile(expected))


def test_expired_token_is_refreshed_through_the_server(page: Page, sandbox: SandboxHandle) -> None:
    user_id = start_chat(page, "refresh")
    send_message(page, "first message")
    expect_bot_reply(page, "first message")

    sandbox.act(user_id, "expire-token")

    # onSessionTokenRequired -> server event -> resolve(new token) -> onSessionRefreshed.
    expect_timeline(page, "onSessionRefreshed")
    expect(page.get_by_test_id("last-refresh")).not_to_have_text("—")
    tokens = sandbox.tokens(user_id)
    assert len(tokens) == 2, "the refresh must mint a new token on the server"
    assert tokens[0]["expired"] and not tokens[1]["expired"]

    send_message(page, "second message")
    expect_bot_reply(page, "second message")


def test_failed_refresh_is_shown_and_the_next_attempt_recovers(
    page: Page, sandbox: SandboxHandle
) -> None:
    user_id = start_chat(page, "failing")

    # Every attempt of the next refresh fails (the client retries 5xx twice).
    sandbox.fault(method="POST", path="/v3/users/*/token", count=3, status=500, code=500901)
    sandbox.act(user_id, "expire-token")

    expect_timeline(page, "onSessionError")
    expect(page.get_by_test_id("last-error")).to_contain_text("Failed to get the session token")
    expect(page.get_by_test_id("session-status")).to_have_text("Session error")

    # The next attempt (the fault is used up) succeeds: reconnect with a fresh token.
    page.get_by_role("button", name="Reconnect").click()
    expect_timeline(page, "reconnect")
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    send_message(page, "message after the error")
    expect_bot_reply(page, "message after the error")


def test_expired_session_key_is_refreshed_without_a_new_token(
    page: Page, sandbox: SandboxHandle
) -> None:
    user_id = start_chat(page, "sessionkey")
    # The chat first loads its channel: a key that expires during that load fails one of its
    # requests with 400309, which the widget leaves as an unhandled rejection (its own code).
    send_message(page, "first message")
    expect_bot_reply(page, "first message")
    sandbox.act(user_id, "expire-session-key")

    # The SDK re-logs in with its still-valid token: refreshed, and no token minted.
    expect_timeline(page, "onSessionRefreshed")
    assert len(sandbox.tokens(user_id)) == 1
    send_message(page, "third message")
    expect_bot_reply(page, "third message")


def test_revoked_session_closes_and_reconnect_starts_a_new_one(
    page: Page, sandbox: SandboxHandle, traffic: Traffic
) -> None:
    user_id = start_chat(page, "revoked")

    sandbox.act(user_id, "revoke")

    expect_timeline(page, "onSessionClosed")
    expect(page.get_by_test_id("session-status")).to_have_text("Session closed")

    page.get_by_role("button", name="Reconnect").click()
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    send_message(page, "message after closing")
    expect_bot_reply(page, "message after closing")
    assert len(sandbox.tokens(user_id)) == 2


def test_dropped_connection_reconnects_with_the_session_key(
    page: Page, sandbox: SandboxHandle
) -> None:
    user_id = start_chat(page, "dropped")
    send_message(page, "first message")
    expect_bot_reply(page, "first message")

    # The sandbox drops the WebSocket but keeps the session key valid.
    sandbox.act(user_id, "disconnect")

    # The SDK reconnects with its session key: no callback, no new token.
    send_message(page, "message after the drop")
    expect_bot_reply(page, "message after the drop", timeout=30_000)
    assert len(sandbox.tokens(user_id)) == 1
    expect(page.get_by_test_id("session-timeline")).not_to_contain_text("onSession")


def test_end_session_revokes_and_unmounts_and_reconnect_starts_again(
    page: Page, sandbox: SandboxHandle
) -> None:
    user_id = start_chat(page, "ending")

    page.get_by_role("button", name="End session").click()

    expect(page.get_by_test_id("session-status")).to_have_text("Session ended")
    expect(page.get_by_test_id("chat-ai-widget-host")).to_have_count(0)
    expect_timeline(page, "tokens revoked")
    assert all(token["revoked"] for token in sandbox.tokens(user_id))
    # Still signed in: reconnect mounts the widget again with a new token.
    page.get_by_role("button", name="Reconnect").click()
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    send_message(page, "message after ending")
    expect_bot_reply(page, "message after ending")
    assert len(sandbox.tokens(user_id)) == 2
