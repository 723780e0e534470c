"""The skeleton: the real widget runs in its React 18 island inside the Reflex page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import APP_ID, BOT_ID, SandboxHandle, Traffic
from tests.browser.helpers import LAUNCHER, expect_timeline, register, unique_username


def test_page_mounts_the_real_widget_in_a_react_18_island(
    page: Page, sandbox: SandboxHandle, traffic: Traffic
) -> None:
    register(page, unique_username("island"), "Island Tester")

    # The bridge reported the island's own React version once the widget was mounted.
    expect_timeline(page, "widget mounted")
    expect(page.get_by_test_id("session-timeline")).to_contain_text("React 18.3.1 island")
    # The widget fetched its settings from the configured host, and rendered its launcher.
    expected = f"GET {sandbox.url}/v3/bots/{BOT_ID}/{APP_ID}/widget_setting"
    assert traffic.requested(f"^{expected}"), traffic.requests
    expect(page.locator(LAUNCHER)).to_be_visible()
    # The host page runs React 19 (Reflex); the island brought its own React 18.
    host_react = page.evaluate(
        "() => document.querySelector('[data-testid=chat-ai-widget-host]') !== null"
    )
    assert host_react
    assert traffic.page_errors == []


def test_island_bundle_loads_after_first_paint(page: Page, app: object) -> None:
    """The 1.3 MB island is fetched by import() after hydration, not by the HTML."""
    response = page.request.get(app.frontend_url)
    html = response.text()
    assert "chat-ai-widget-island" not in html
