"""A widget that cached its channel keeps working after the sandbox restarts."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from sample_app.sandbox import SandboxServer
from tests.browser.conftest import APP_ID, BOT_ID, SandboxHandle
from tests.browser.helpers import (
    expect_bot_reply,
    register,
    send_message,
    unique_username,
    wait_for_chat,
)

CACHE_KEY = f"@sendbird/chat-ai-widget/{APP_ID}/{BOT_ID}"


def widget_cache(page: Page) -> dict:
    """The widget's localStorage entry: {strategy, userId, channelUrl, expireAt}."""
    return json.loads(page.evaluate(f"() => localStorage.getItem({json.dumps(CACHE_KEY)})"))


def test_cached_channel_still_loads_after_a_sandbox_restart(
    page: Page, sandbox: SandboxHandle
) -> None:
    register(page, unique_username("restart"), "Restart Tester")
    wait_for_chat(page)
    send_message(page, "written before the restart")
    expect_bot_reply(page, "written before the restart")
    channel_url = widget_cache(page)["channelUrl"]

    # Same port, same database file: what `make run` does after a restart.
    port = sandbox.server.port
    sandbox.server.stop()
    sandbox.server = SandboxServer(sandbox.server.config, host="127.0.0.1", port=port).start()

    page.reload()
    wait_for_chat(page)
    # The widget reopened the cached channel (no new one) with its history.
    expect(page.get_by_text('You said: "written before the restart"')).to_be_visible()
    assert widget_cache(page)["channelUrl"] == channel_url
    send_message(page, "written after the restart")
    expect_bot_reply(page, "written after the restart")
