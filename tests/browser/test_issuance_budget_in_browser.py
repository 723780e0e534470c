"""A signed-in user flooding token events cannot spend the other users' Sendbird budget.

The attack needs no browser: with devtools (or a script) a signed-in user sends the widget's
`answer_token_request` and the Reconnect button's `reconnect` over the tab's Reflex socket
in a loop. Each would mint a session token, a Platform API POST, and a Sendbird free trial
allows 5 of those per second for the whole application. The sandbox is set to that limit
here; while the flood runs, another person registers in a real browser and must still get
a first token and chat with the bot.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Browser, Page, expect
from reflex.testing import AppHarness

from sample_app.state.chat_session import ChatSessionState
from tests.browser.conftest import SandboxHandle
from tests.browser.helpers import (
    expect_bot_reply,
    register,
    send_message,
    sendbird_user_id,
    timeline,
    unique_username,
    wait_for_chat,
)
from tests.browser.reflex_socket import ReflexSocket

TOKEN_EVENT = f"{ChatSessionState.get_full_name()}.answer_token_request"
RECONNECT_EVENT = f"{ChatSessionState.get_full_name()}.reconnect"
PER_USER_BUDGET = 10  # SENDBIRD_TOKENS_PER_USER_PER_MINUTE's default
FREE_TRIAL_LIMITS = {"POST": 5}  # Platform API POSTs per second
MAX_FLOOD_SECONDS = 90  # the flood stops then even if the bystander is not done
ANSWERED = re.compile(r'"request_id":(\d+),"token":"[^"]+"')


async def flood(backend_url: str, tab_token: str, stop: threading.Event) -> tuple[int, str]:
    """Send token requests and reconnects as the tab until `stop` is set.

    Returns:
        How many events were sent, and every state update received, as one string.
    """
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_FLOOD_SECONDS
    async with ReflexSocket(backend_url, token=tab_token) as socket:
        request_id = 1_000
        while not stop.is_set() and loop.time() < deadline:
            await socket.send_event(TOKEN_EVENT, {"request_id": request_id})
            await socket.send_event(RECONNECT_EVENT)
            request_id += 1
            sent += 2
            await socket.next_delta(timeout=0.01)  # read answers (and pings) as they come
            await asyncio.sleep(0.01)  # about a hundred events a second, for as long as it takes
        await socket.collect(3)
        assert socket.reassigned_token is None, "the flood must act as the attacker's own tab"
        return sent, socket.delta_text().replace(" ", "")


def test_a_flooding_tab_leaves_other_users_their_first_token(
    page: Page, sandbox: SandboxHandle, browser: Browser, app: AppHarness, backend_url: str
) -> None:
    # The attacker signs in and hands the tab's server state to a raw socket.
    attacker_context = browser.new_context(base_url=app.frontend_url)
    attacker_context.set_default_timeout(20_000)
    attacker = attacker_context.new_page()
    register(attacker, unique_username("flooder"), "Flooder")
    wait_for_chat(attacker)
    attacker_id = sendbird_user_id(attacker)
    tab_token = attacker.evaluate("() => sessionStorage.getItem('token')")
    assert tab_token
    attacker.goto("about:blank")  # one connection per tab: let the socket take over
    attacker.wait_for_timeout(500)

    sandbox.control.set_rate_limits(FREE_TRIAL_LIMITS)
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            flooding = pool.submit(asyncio.run, flood(backend_url, tab_token, stop))
            try:
                attacker.wait_for_timeout(1_000)  # the flood is under way
                # Meanwhile a bystander signs up, gets a first token and chats.
                register(page, unique_username("bystander"), "Bystander")
                wait_for_chat(page)
                bystander_id = sendbird_user_id(page)
                send_message(page, "still here during the flood")
                expect_bot_reply(page, "still here during the flood")
                assert not flooding.done(), "the flood must last as long as the bystander"
            finally:
                stop.set()
            sent, deltas = flooding.result(timeout=60)
    finally:
        sandbox.control.set_rate_limits({})
        attacker_context.close()

    # The flood's tokens stayed within the attacker's own budget...
    assert len(sandbox.tokens(attacker_id)) <= PER_USER_BUDGET
    # ...while its requests were answered (mostly with a token reused from seconds before),
    assert len(set(ANSWERED.findall(deltas))) >= 20, f"{sent} events sent, few answered"
    # and the bystander's first token came at the first try.
    assert len(sandbox.tokens(bystander_id)) == 1
    expect(timeline(page)).not_to_contain_text("error")
