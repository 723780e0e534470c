"""The demo site at scale: nginx, two workers, Redis, PostgreSQL and the sandbox, for real.

Every test goes through the proxy the way a visitor does, with the real widget in
Chromium where a person would be, and checks what they would see; the sandbox's control
surface and the workers' own ports are used only to count and to choose a worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from deploy.demo_site import DemoSite
from sample_app import routes
from sample_app.accounts import AccountService
from sample_app.sandbox.control_client import SandboxControlClient
from tests.browser.helpers import (
    PASSWORD,
    expect_bot_reply,
    expect_timeline,
    register,
    send_message,
    sendbird_user_id,
    sign_in,
    sign_out,
    unique_username,
    wait_for_chat,
)
from tests.browser.reflex_socket import run_outside_playwright
from tests.deploy.conftest import open_sockets
from tests.sandbox.wsclient import WidgetClient

SESSION_TOKEN_PATH = "/api/sendbird/session-token"
SESSION_PATH = "/api/sendbird/session"
TOKEN_ROUTE = "POST /v3/users/{user_id}/token"


def reflex_tab_token(page: Page) -> str | None:
    """The tab's Reflex client token (it names the tab's state on the server)."""
    return page.evaluate("() => sessionStorage.getItem('token')")


def widget_logins(sandbox: SandboxControlClient) -> int:
    """How many widget logins (`LOGI`) the sandbox has answered so far."""
    return int(sandbox.stats()["websocket"]["LOGI"])


def wait_until(condition: Any, timeout: float = 15.0, message: str = "") -> None:
    """Poll `condition` until it is true (a worker starting, a socket moving)."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(message or "condition never became true")
        time.sleep(0.1)


def chatting(page: Page, stem: str) -> str:
    """Register through the proxy, chat once, and return the Sendbird user id."""
    register(page, unique_username(stem), f"{stem.title()} Visitor")
    wait_for_chat(page)
    send_message(page, f"first words of {stem}")
    expect_bot_reply(page, f"first words of {stem}")
    return sendbird_user_id(page)


def signed_in_token(accounts: AccountService, stem: str) -> tuple[str, str]:
    """A new account straight in PostgreSQL, signed in: (username, sign-in token)."""
    username = unique_username(stem)
    accounts.register(username, PASSWORD, f"{stem.title()} Tester")
    return username, accounts.sign_in(username, PASSWORD, client_key="").sign_in_token


def platform_calls(sandbox: SandboxControlClient) -> dict[str, int]:
    """Platform API calls the sandbox answered so far, per route."""
    return dict(sandbox.stats()["platform_api"])


def test_a_new_visitor_registers_and_chats_through_the_proxy(
    page: Page, site: DemoSite, sandbox: SandboxControlClient
) -> None:
    user_id = chatting(page, "visitor")

    assert sandbox.tokens(user_id), "the server issued the widget's token"
    # Everything the browser loaded came from the proxy and the proxied sandbox.
    ready = httpx.get(f"{site.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"]["ok"]


def test_sign_out_on_one_worker_then_a_page_view_on_the_other_gets_a_fresh_token(
    context: BrowserContext, site: DemoSite, sandbox: SandboxControlClient
) -> None:
    """The revoked token must not be served by the worker that did not handle the sign-out.

    Two tabs of one browser: nginx gives each new socket to the worker with the fewest, so
    the tabs are served by different workers (checked). The first tab signs out (its
    worker revokes every token); the second signs in again and opens the chat on its own
    worker, which must issue a fresh token instead of a cached, revoked one (the widget
    would close with 400310).
    """
    first = context.new_page()
    username = unique_username("twotabs")
    register(first, username, "Two Tabs")
    wait_for_chat(first)
    user_id = sendbird_user_id(first)
    second = context.new_page()
    second.goto(routes.CHAT)
    wait_for_chat(second)
    wait_until(lambda: open_sockets(site) == [1, 1], message=f"sockets: {open_sockets(site)}")
    tokens_before = len(sandbox.tokens(user_id))

    sign_out(first)
    expect(second.locator("#aichatbot-widget-button")).to_be_hidden(timeout=20_000)
    sign_in(second, username)
    wait_for_chat(second)
    send_message(second, "after the other tab signed out")
    expect_bot_reply(second, "after the other tab signed out")

    fresh = sandbox.tokens(user_id)[tokens_before:]
    assert fresh, "the page view after the sign-out got a newly issued token"
    assert not any(token["revoked"] for token in fresh)
    expect(second.get_by_test_id("session-status")).to_have_text("Connected")
    expect(second.get_by_test_id("last-error")).to_have_text("—")


def test_a_burst_of_token_requests_over_both_workers_costs_one_sendbird_call(
    site: DemoSite, accounts: AccountService, sandbox: SandboxControlClient
) -> None:
    _, token = signed_in_token(accounts, "burst")
    headers = {"Authorization": f"Bearer {token}"}
    # The first view creates the Sendbird user; revoking forgets the token on every worker.
    warm = httpx.post(f"{site.url}{SESSION_TOKEN_PATH}", headers=headers, timeout=20)
    assert warm.status_code == 200, warm.text
    gone = httpx.delete(f"{site.url}{SESSION_PATH}", headers=headers, timeout=20)
    assert gone.status_code == 204, gone.text
    before = platform_calls(sandbox)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{site.worker_urls[i % 2]}{SESSION_TOKEN_PATH}", headers=headers)
                    for i in range(100)
                )
            )

    answers = run_outside_playwright(burst())

    assert [answer.status_code for answer in answers] == [200] * 100
    assert len({answer.json()["token"] for answer in answers}) == 1
    after = platform_calls(sandbox)
    spent = {route: after[route] - before.get(route, 0) for route in after}
    assert {route: n for route, n in spent.items() if n} == {TOKEN_ROUTE: 1}


def test_a_killed_worker_leaves_the_tab_chatting_on_the_other(
    page: Page, site: DemoSite, sandbox: SandboxControlClient, accounts: AccountService
) -> None:
    user_id = chatting(page, "survivor")
    wait_until(lambda: sum(open_sockets(site)) == 1, message=f"sockets: {open_sockets(site)}")
    serving = open_sockets(site).index(1)
    tab_token = reflex_tab_token(page)
    assert tab_token, "the tab has no Reflex token in sessionStorage"
    logins = widget_logins(sandbox)

    site.kill_worker(serving)
    try:
        # The tab's socket comes back through nginx, on the other worker.
        wait_until(
            lambda: open_sockets(site)[1 - serving] == 1,
            timeout=30,
            message=f"the tab did not reconnect: {open_sockets(site)}",
        )
        # Redis still holds the killed worker's record of the tab's socket, so Reflex
        # takes the tab for a duplicate and gives it a new token: a fresh state, signed
        # back in from the browser's sign-in token, with a remounted widget that logs in
        # again. Only once it has is the refresh below a refresh of a live session.
        wait_until(
            lambda: reflex_tab_token(page) != tab_token,
            timeout=30,
            message="the tab kept its Reflex token on the other worker",
        )
        wait_until(
            lambda: widget_logins(sandbox) > logins,
            timeout=30,
            message="the remounted widget never logged in",
        )
        expect_timeline(page, "SDK connected")
        # A token refresh now needs the other worker: the widget asks, the server answers.
        sandbox.act(user_id, "expire-token")
        expect_timeline(page, "onSessionRefreshed", timeout=30_000)
        send_message(page, "after the worker died")
        expect_bot_reply(page, "after the worker died")
    finally:
        site.start_worker(serving)

    # Nothing was lost: the account signs in again, the conversation is still there.
    page.reload()
    wait_for_chat(page)
    expect(page.get_by_text('You said: "first words of survivor"')).to_be_visible(timeout=20_000)
    assert sendbird_user_id(page) == user_id


def test_the_app_recovers_when_redis_restarts(
    page: Page, site: DemoSite, sandbox: SandboxControlClient
) -> None:
    user_id = chatting(page, "redis")

    site.restart_redis()

    for url in site.worker_urls:
        assert httpx.get(f"{url}/ping", timeout=5).status_code == 200, f"{url} died"
    assert not site.exited_unexpectedly()
    # The tab's state survived (Redis keeps an append-only file): a refresh is answered.
    sandbox.act(user_id, "expire-token")
    expect_timeline(page, "onSessionRefreshed", timeout=30_000)
    send_message(page, "after redis came back")
    expect_bot_reply(page, "after redis came back")
    ready = httpx.get(f"{site.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text


def test_a_user_cannot_read_another_users_channel_through_the_proxy(
    page: Page, site: DemoSite, accounts: AccountService, sandbox: SandboxControlClient
) -> None:
    owner_id = chatting(page, "owner")
    assert site.sandbox_url is not None and site.sandbox_internal_url is not None
    platform = httpx.get(
        f"{site.sandbox_internal_url}/v3/users/{owner_id}/my_group_channels",
        headers={"Api-Token": site.sandbox_api_token().reveal()},
        timeout=10,
    )
    channel_url = platform.json()["channels"][0]["channel_url"]

    # Another signed-in account gets its own session token, as the embed page would...
    _, sign_in_token = signed_in_token(accounts, "intruder")
    issued = httpx.post(
        f"{site.url}{SESSION_TOKEN_PATH}",
        headers={"Authorization": f"Bearer {sign_in_token}"},
        timeout=20,
    )
    assert issued.status_code == 200, issued.text
    intruder = issued.json()

    async def log_in() -> None:
        ws_url = site.sandbox_url.replace("http://", "ws://")  # type: ignore[union-attr]
        client = await WidgetClient.open(
            ws_url, intruder["app_id"], token=intruder["token"], user_id=intruder["user_id"]
        )
        async with client:
            await client.read_login(timeout=10)

    run_outside_playwright(log_in())

    # ...and reads the owner's channel through the proxy with it: refused, nothing leaks.
    for path in (f"/v3/group_channels/{channel_url}", f"/v3/group_channels/{channel_url}/messages"):
        response = httpx.get(
            f"{site.sandbox_url}{path}",
            params={"prev_limit": 20, "message_ts": 9007199254740991},
            headers={"Access-Token": intruder["token"]},
            timeout=10,
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 400108
        assert "first words of owner" not in response.text
    # The control surface is not published through the proxy at all.
    assert httpx.get(f"{site.sandbox_url}/__sandbox__/tokens", timeout=10).status_code == 404
