"""The embed page (/embed): the real widget mounted by a plain script, tokens from the HTTP API.

The page finds the sign-in token the Reflex pages keep in localStorage, which needs one
origin: a single-port deployment (`make run RUN_ARGS="--env prod"`) serves both from it. The
test stack serves the Reflex pages and the backend on two ports, so after signing in on the
Reflex page these tests carry the sign-in token over to the backend's origin, as the one
shared localStorage of a single-port deployment would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect
from reflex.testing import AppHarness

from sample_app.state.auth import SIGN_IN_TOKEN_STORAGE_KEY
from tests.browser.conftest import (
    APP_ID,
    ARTIFACTS,
    BOT_ID,
    SandboxHandle,
    Traffic,
    _record,
)
from tests.browser.helpers import (
    LAUNCHER,
    MESSAGE_INPUT,
    expect_bot_reply,
    register,
    send_message,
    sendbird_user_id,
    unique_username,
)

SESSION_TOKEN_API = r"^POST \S+/api/sendbird/session-token$"
SIGN_OUT_API = r"^DELETE \S+/api/sendbird/session\?sign_out=true$"
SIGN_IN_KEY = json.dumps(SIGN_IN_TOKEN_STORAGE_KEY)  # as a JS string literal
WIDGET_CACHE_KEY = json.dumps(f"@sendbird/chat-ai-widget/{APP_ID}/{BOT_ID}")


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors of the current test's page (CSP violations show up here)."""
    return []


@pytest.fixture
def embed_tab(
    browser: Browser,
    app: AppHarness,
    traffic: Traffic,
    console_errors: list[str],
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """Like `page` (relative URLs go to the Reflex pages), also recording console errors."""
    context = browser.new_context(
        base_url=app.frontend_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    _record(page, traffic)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", on_console)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.nodeid)[-120:]
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert traffic.page_errors == [], f"uncaught errors in the page: {traffic.page_errors}"
    violations = [text for text in console_errors if "Content Security Policy" in text]
    assert violations == [], f"the page broke its own Content-Security-Policy: {violations}"


def _status(page: Page) -> Locator:
    return page.get_by_test_id("embed-status")


def _token_requests(traffic: Traffic) -> list[dict[str, object]]:
    """The JSON bodies of the page's session-token requests, in order."""
    bodies = []
    for body in traffic.request_bodies:
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, dict) and set(data) == {"refresh"}:
            bodies.append(data)
    return bodies


def _register_and_open_embed(page: Page, stem: str, backend_url: str) -> str:
    """Create an account on the Reflex page, open /embed signed in; the Sendbird user id."""
    register(page, unique_username(stem), f"Embed {stem.title()}")
    user_id = sendbird_user_id(page)
    sign_in_token = page.evaluate(f"() => localStorage.getItem({SIGN_IN_KEY})")
    assert sign_in_token
    page.goto(f"{backend_url}/embed")
    page.evaluate(f"(token) => localStorage.setItem({SIGN_IN_KEY}, token)", sign_in_token)
    page.reload()
    expect(page.get_by_role("heading", name="Embedded chat")).to_be_visible()
    expect(page.get_by_test_id("embed-user-id")).to_have_text(user_id)
    return user_id


def _open_chat(page: Page) -> None:
    """Wait for the widget, then open its chat window."""
    expect(page.locator(LAUNCHER)).to_be_visible(timeout=30_000)
    expect(_status(page)).to_have_text("connected", timeout=30_000)
    if not page.locator(MESSAGE_INPUT).is_visible():
        page.locator(LAUNCHER).click()
    expect(page.locator(MESSAGE_INPUT)).to_be_visible(timeout=30_000)


def test_embed_page_chats_and_refreshes_its_token_through_the_http_api(
    embed_tab: Page, sandbox: SandboxHandle, traffic: Traffic, backend_url: str
) -> None:
    page = embed_tab
    user_id = _register_and_open_embed(page, "embedchat", backend_url)
    _open_chat(page)
    expiry = page.get_by_test_id("embed-expiry").get_attribute("datetime")
    assert expiry, "the panel shows when the session token expires"
    assert page.evaluate("() => document.getElementById('sample-chat').dataset.userId") == user_id

    send_message(page, "a first note through the embed page")
    expect_bot_reply(page, "a first note through the embed page")
    # The first token came from the HTTP API (not a refresh).
    assert traffic.requested(SESSION_TOKEN_API)
    assert _token_requests(traffic) == [{"refresh": False}]

    # The token expires at Sendbird: the widget asks onSessionTokenRequired, which asks the
    # HTTP API for a new one ({"refresh": true}), and the chat goes on.
    issued_before = len(sandbox.tokens(user_id))
    sandbox.act(user_id, "expire-token")
    expect(_status(page)).to_have_text("refreshed", timeout=30_000)
    assert {"refresh": True} in _token_requests(traffic)
    assert len(traffic.requested(SESSION_TOKEN_API)) >= 2
    assert len(sandbox.tokens(user_id)) > issued_before, "the refresh minted a new token"
    expect(page.get_by_test_id("embed-expiry")).not_to_have_attribute("datetime", expiry or "")
    expect(page.get_by_test_id("embed-error")).to_have_text("none")

    send_message(page, "a second note with new credentials")
    expect_bot_reply(page, "a second note with new credentials")

    # The browser never called the Platform API; only the widget's own surface.
    assert not traffic.requested(r"/v3/users/[^/?]+/token"), traffic.requested("/v3/users")
    assert not any("api-token" in {k.lower() for k in h} for h in traffic.request_headers)


def test_sign_out_from_the_embed_page_revokes_unmounts_and_ends_the_sign_in(
    embed_tab: Page, sandbox: SandboxHandle, traffic: Traffic, backend_url: str
) -> None:
    page = embed_tab
    user_id = _register_and_open_embed(page, "embedout", backend_url)
    _open_chat(page)
    send_message(page, "one last note before leaving")
    expect_bot_reply(page, "one last note before leaving")
    sign_in_token = page.evaluate(f"() => localStorage.getItem({SIGN_IN_KEY})")
    assert sign_in_token
    assert page.evaluate(f"() => localStorage.getItem({WIDGET_CACHE_KEY})")

    page.get_by_role("button", name="Sign out").click()

    expect(_status(page)).to_have_text("signed out")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("embed-notice")).to_contain_text("revoked")
    assert traffic.requested(SIGN_OUT_API)
    # The widget is unmounted, its cached channel and the sign-in token are gone...
    expect(page.locator(LAUNCHER)).to_have_count(0)
    expect(page.locator(MESSAGE_INPUT)).to_have_count(0)
    assert page.evaluate("() => document.getElementById('sample-chat').childElementCount") == 0
    assert page.evaluate(f"() => localStorage.getItem({WIDGET_CACHE_KEY})") is None
    assert page.evaluate(f"() => localStorage.getItem({SIGN_IN_KEY})") is None
    # ...every session token of the user is revoked at Sendbird...
    tokens = sandbox.tokens(user_id)
    assert tokens
    assert all(token["revoked"] for token in tokens), tokens
    # ...and the sign-in itself has ended: the API refuses it, and the Reflex page, whose
    # origin in this stack still holds the old token, sends the browser to sign in.
    refused = page.request.post(
        f"{backend_url}/api/sendbird/session-token",
        headers={"Authorization": f"Bearer {sign_in_token}"},
        data={"refresh": False},
    )
    assert refused.status == 401
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/sign-in/?$"))
    assert len(sandbox.tokens(user_id)) == len(tokens), "no token issued after sign-out"


def test_embed_page_without_a_sign_in_shows_the_sign_in_link_and_asks_for_nothing(
    embed_tab: Page, traffic: Traffic, backend_url: str
) -> None:
    page = embed_tab
    response = page.goto(f"{backend_url}/embed")
    assert response is not None and response.status == 200
    link = page.get_by_role("link", name="Sign in")
    expect(link).to_be_visible()
    assert link.get_attribute("href") == "/sign-in"
    expect(page.get_by_test_id("embed-status")).to_have_text("signed out")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert traffic.requested(r"/embed/embed\.js$")
    assert not traffic.requested(r"/api/sendbird/"), traffic.requests
    assert not traffic.requested(r"/embed/island\."), "no widget without a sign-in"
    expect(page.locator(LAUNCHER)).to_have_count(0)


def test_embed_page_is_served_with_security_headers_and_no_secret(
    embed_tab: Page, sandbox: SandboxHandle, traffic: Traffic, backend_url: str
) -> None:
    page = embed_tab
    _register_and_open_embed(page, "embedaudit", backend_url)
    _open_chat(page)
    send_message(page, "a note for the audit")
    expect_bot_reply(page, "a note for the audit")

    html = page.request.get(f"{backend_url}/embed")
    assert html.status == 200
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["x-content-type-options"] == "nosniff"
    csp = html.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp
    assert "'unsafe-eval'" not in csp
    assert "object-src 'none'" in csp
    assert "window.sampleChatConfig" in html.text()

    files = {
        path: page.request.get(f"{backend_url}{path}")
        for path in ("/embed/embed.js", "/embed/embed.css", "/embed/island.js")
    }
    for path, response in files.items():
        assert response.status == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
    for path in ("/embed/embed.js", "/embed/island.js"):
        assert files[path].headers["content-type"].startswith("text/javascript"), path

    # The API token is nowhere: not in the page, its script, or anything the browser sent or
    # received (HTTP bodies and headers, the widget's WebSocket frames).
    for text in (html.text(), *(response.text() for response in files.values())):
        assert sandbox.api_token not in text
    for text in (html.text(), files["/embed/embed.js"].text()):
        assert "api-token" not in text.lower()
    assert sandbox.api_token not in traffic.all_text()
    assert sandbox.api_token not in page.content()
    # The session token the widget logs in with is not written into the page either.
    session_tokens = set(re.findall(r'"token"\s*:\s*"([^"]{20,})"', "\n".join(traffic.responses)))
    assert session_tokens, "the page got its session token from the HTTP API"
    content = page.content()
    for token in session_tokens:
        assert token not in content
