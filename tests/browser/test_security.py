"""What the browser can see: the API token never, the Platform API never, tokens in no log."""

from __future__ import annotations

import logging
import re

import pytest
from playwright.sync_api import Page

from sample_app.config import PROJECT_ROOT
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

BUILD_DIR = PROJECT_ROOT / ".web" / "build" / "client"


def test_api_token_never_reaches_the_browser_and_tokens_never_reach_a_log(
    page: Page, sandbox: SandboxHandle, traffic: Traffic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    register(page, unique_username("secret"), "Secret Keeper")
    wait_for_chat(page)
    user_id = sendbird_user_id(page)
    send_message(page, "first message")
    expect_bot_reply(page, "first message")
    sandbox.act(user_id, "expire-token")
    expect_timeline(page, "onSessionRefreshed")
    send_message(page, "second message")
    expect_bot_reply(page, "second message")

    # The first and the refreshed token were both issued by the server...
    assert len(sandbox.tokens(user_id)) == 2
    # ...and the browser never called the Platform API itself.
    assert not traffic.requested(r"/v3/users/[^/?]+/token"), traffic.requested("/v3/users")
    assert not traffic.requested(r"^(GET|POST) \S+/v3/users(\?|$)")
    assert not any("api-token" in {k.lower() for k in h} for h in traffic.request_headers)

    # The API token is nowhere in what the browser sent or received (HTTP bodies and
    # headers, Reflex's state deltas, Sendbird's WebSocket frames)...
    assert sandbox.api_token not in traffic.all_text()
    # ...nor in the built frontend that every visitor downloads.
    assert BUILD_DIR.is_dir()
    for path in BUILD_DIR.rglob("*"):
        if path.is_file() and path.suffix in {".js", ".html", ".json", ".css", ".txt"}:
            assert sandbox.api_token not in path.read_text(errors="ignore"), path

    # The session tokens the browser did receive (in Reflex's state deltas: the first one
    # as `session_token`, refreshed ones in `token_reply`) never appear in a server log line.
    everything = traffic.all_text()
    session_tokens = set(re.findall(r'"session_token_rx_state_":"([^"]+)"', everything))
    session_tokens |= set(re.findall(r'"token":"([^"]{20,})"', everything))
    assert len(session_tokens) >= 2, "expected the first and the refreshed session token"
    log_text = caplog.text
    assert sandbox.api_token not in log_text
    for token in session_tokens:
        assert token not in log_text
