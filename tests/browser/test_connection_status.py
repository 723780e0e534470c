"""The panel's status follows the Sendbird SDK's real connection, and Reconnect recovers.

The bridge reads the connection on the SDK instance the widget hands to configureSession
and reports it to the server (`ChatSessionState.connection_status`). These tests make the
sandbox refuse a login or delete the user under a live chat, and watch what the user sees.

Both use the sandbox's control surface: `refuse_login(user_id, code, count)` and
`delete_user(user_id)` (which drops the user's memberships and tokens). A sandbox without
them skips the test with that reason instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SandboxHandle
from tests.browser.helpers import (
    LAUNCHER,
    MESSAGE_INPUT,
    expect_bot_reply,
    expect_timeline,
    register,
    send_message,
    sendbird_user_id,
    unique_username,
    wait_for_chat,
)

# Records every text the status badge shows, from the first paint of each page load.
RECORD_STATUS = """
(() => {
  window.__statusHistory = [];
  const record = () => {
    const badge = document.querySelector('[data-testid="session-status"]');
    const text = badge ? badge.textContent.trim() : "";
    const history = window.__statusHistory;
    if (text && history[history.length - 1] !== text) history.push(text);
  };
  new MutationObserver(record).observe(document, {
    subtree: true, childList: true, characterData: true,
  });
})();
"""


def control_method(sandbox: SandboxHandle, name: str) -> Callable[..., Any]:
    """The sandbox control client's `name`, or skip: the sandbox owner adds it."""
    method = getattr(sandbox.control, name, None)
    if method is None:
        pytest.skip(f"the sandbox control client has no {name}() yet")
    return method


def status_history(page: Page) -> list[str]:
    return list(page.evaluate("window.__statusHistory || []"))


def test_a_refused_login_shows_the_failure_and_never_connected(
    page: Page, sandbox: SandboxHandle
) -> None:
    refuse_login = control_method(sandbox, "refuse_login")
    register(page, unique_username("refused"), "Refused Tester")
    wait_for_chat(page)
    user_id = sendbird_user_id(page)

    # Every login of this user is refused from now on (the SDK's own retries included).
    refuse_login(user_id, 400300, 50)
    page.add_init_script(RECORD_STATUS)
    page.reload()

    status = page.get_by_test_id("session-status")
    expect(status).to_have_text("Could not connect to Sendbird", timeout=30_000)
    expect(page.get_by_test_id("last-error")).to_contain_text("400300")
    expect_timeline(page, "SDK connection failed")
    page.wait_for_timeout(3_000)  # the SDK's retries and the bridge's poll have their say
    history = status_history(page)
    assert "Connected" not in history, history
    assert "Widget loaded; connecting…" in history, history
    expect(status).to_have_text("Could not connect to Sendbird")
    expect(page.get_by_role("button", name="Reconnect")).to_be_enabled()


def test_connected_appears_only_after_widget_loaded(page: Page, sandbox: SandboxHandle) -> None:
    page.add_init_script(RECORD_STATUS)
    register(page, unique_username("order"), "Order Tester")
    wait_for_chat(page)
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    expect_timeline(page, "SDK connected")
    history = status_history(page)
    assert "Widget loaded; connecting…" in history, history
    assert history.index("Widget loaded; connecting…") < history.index("Connected"), history


# The stale channel makes the widget's SDK throw "Not a member of this channel", which the
# page reports as a frontend exception: that is the broken widget this test recovers from.
@pytest.mark.allow_error_logs
def test_reconnect_recovers_a_widget_whose_user_was_deleted(
    page: Page, sandbox: SandboxHandle
) -> None:
    delete_user = control_method(sandbox, "delete_user")
    register(page, unique_username("stale"), "Stale Tester")
    wait_for_chat(page)
    user_id = sendbird_user_id(page)
    send_message(page, "before the deletion")
    expect_bot_reply(page, "before the deletion")

    # Deleted at Sendbird: its channel memberships and tokens go with it. The widget keeps
    # the channel URL in localStorage; the next page view re-creates the user (the server
    # issues on 400201), but the user is no longer a member of the cached channel.
    delete_user(user_id)
    page.reload()
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    page.wait_for_timeout(2_000)
    if not page.locator(MESSAGE_INPUT).is_visible() and page.locator(LAUNCHER).is_visible():
        page.locator(LAUNCHER).click()
    box = page.locator(MESSAGE_INPUT)
    # Blank, or the input disabled (the SDK refuses the non-member's reads).
    broken = not box.is_visible() or box.get_attribute("contenteditable") == "false"
    if not broken:
        send_message(page, "into the stale channel")
        page.wait_for_timeout(5_000)
        broken = not page.get_by_text('You said: "into the stale channel"').is_visible()
    assert broken, "the stale channel was expected to leave the widget blank or unanswered"

    page.get_by_role("button", name="Reconnect").click()
    expect_timeline(page, "widget cache cleared")
    expect(page.get_by_test_id("session-status")).to_have_text("Connected", timeout=30_000)
    wait_for_chat(page)
    send_message(page, "purple elephant")
    expect_bot_reply(page, "purple elephant", timeout=30_000)
