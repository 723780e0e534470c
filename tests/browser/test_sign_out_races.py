"""Sign-out leaves nothing alive: other tabs, tokens issued meanwhile, failed revocations."""

from __future__ import annotations

import hashlib
import json
import re

from playwright.sync_api import Page, expect
from reflex.state import UpdateVarsInternalState

from sample_app.state.auth import SIGN_IN_TOKEN_STORAGE_KEY, AuthState
from tests.browser.conftest import SandboxHandle
from tests.browser.helpers import (
    register,
    sendbird_user_id,
    sign_out,
    unique_username,
    wait_for_chat,
)
from tests.browser.reflex_socket import ReflexSocket, run_outside_playwright

SIGN_IN_KEY = json.dumps(SIGN_IN_TOKEN_STORAGE_KEY)
UPDATE_VARS_EVENT = f"{UpdateVarsInternalState.get_full_name()}.update_vars_internal"
SIGN_OUT_EVENT = f"{AuthState.get_full_name()}.sign_out"
TOKEN_IN_FRAME = re.compile(r'"(?:token|session_token_rx_state_)":"([^"]{20,})"')


def _widget_host(page: Page):
    return page.get_by_test_id("chat-ai-widget-host")


def _record_frames(page: Page, frames: list[str]) -> None:
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))),
    )


def test_sign_out_in_one_tab_drops_the_widget_in_the_other(page: Page) -> None:
    register(page, unique_username("twotabs"), "Two Tabs")
    wait_for_chat(page)
    other = page.context.new_page()
    other.goto("/")
    wait_for_chat(other)

    sign_out(page)

    expect(_widget_host(other)).to_have_count(0, timeout=10_000)
    other.close()


def test_a_token_issued_while_signing_out_reaches_no_browser(
    page: Page, sandbox: SandboxHandle, backend_url: str
) -> None:
    """The widget's refresh waits at Sendbird while another tab of the browser signs out.

    The sign-out's revocation waits for that issuance (Sendbird revokes all of a user's
    tokens, so it must go out after the token exists): the sandbox's token list names the
    late token as revoked with the others, and no frame the widget's tab received carries
    it. (The signing-out
    tab is a raw socket holding the browser's sign-in token: Reflex runs one tab's events in
    order, so a second real tab would queue its sign-out behind its own widget's refresh.)
    """
    frames: list[str] = []
    _record_frames(page, frames)
    register(page, unique_username("race"), "Race Condition")
    wait_for_chat(page)
    user_id = sendbird_user_id(page)
    sign_in_token = page.evaluate(f"() => localStorage.getItem({SIGN_IN_KEY})")

    sandbox.fault(method="POST", path="/v3/users/*/token", count=1, delay=3)
    sandbox.act(user_id, "expire-token")  # the widget asks for a new token now
    page.wait_for_timeout(500)  # its refresh is waiting at the sandbox

    async def sign_out_in_another_tab() -> None:
        async with ReflexSocket(backend_url) as socket:
            await socket.send_event(
                UPDATE_VARS_EVENT,
                {"vars": {f"{AuthState.get_full_name()}.sign_in_token": sign_in_token}},
            )
            await socket.send_event(SIGN_OUT_EVENT)
            await socket.collect(4)  # the revocation waits for the slow issuance

    run_outside_playwright(sign_out_in_another_tab())
    page.wait_for_timeout(1_000)

    issued = sandbox.tokens(user_id)
    assert len(issued) >= 2, "the sandbox issued the delayed token"
    assert all(token["revoked"] for token in issued), "no token outlives the sign-out"
    late = issued[1:]
    received = {
        hashlib.sha256(token.encode()).hexdigest()
        for frame in frames
        for token in TOKEN_IN_FRAME.findall(frame)
    }
    assert received, "the tab did receive its first token"
    assert not received & {token["token_sha256"] for token in late}
    expect(_widget_host(page)).to_have_count(0, timeout=10_000)


def test_a_revocation_that_keeps_failing_is_shown(page: Page, sandbox: SandboxHandle) -> None:
    register(page, unique_username("revokefail"), "Revoke Fail")
    wait_for_chat(page)
    sandbox.fault(method="DELETE", path="/v3/users/*/token", count=20, status=500)
    try:
        sign_out(page)

        notice = page.get_by_text("Sendbird did not confirm the end of your chat session")
        expect(notice).to_be_visible(timeout=15_000)
    finally:
        sandbox.control.clear_faults()
