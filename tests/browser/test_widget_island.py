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
    # The widget fetched its settings from the configured host and rendered its launcher.
    expected = f"GET {sandbox.url}/v3/bots/{BOT_ID}/{APP_ID}/widget_setting"
    assert traffic.requested(f"^{expected}"), traffic.requests
    expect(page.locator(LAUNCHER)).to_be_visible()
    # The widget's styles were injected once, without the remote font import.
    styles = page.locator("#sendbird-chat-ai-widget-island-style")
    expect(styles).to_have_count(1)
    assert "fonts.googleapis.com" not in styles.inner_text()
    assert not traffic.requested("fonts.googleapis.com")


def test_island_loads_after_the_first_paint(page: Page) -> None:
    """The 1.3 MB island is import()ed once the page is up; it never delays first paint."""
    register(page, unique_username("paint"), "Paint Tester")
    # The browser keeps only 250 resource timings by default; the widget makes many calls.
    page.add_init_script("performance.setResourceTimingBufferSize(10000)")
    page.reload()  # a full load of the chat page itself, signed in
    # The launcher is rendered by the island, so it exists only once the island has loaded.
    expect(page.locator(LAUNCHER)).to_be_visible()
    timings = page.evaluate(
        """() => {
          const paint = performance.getEntriesByName("first-contentful-paint")[0];
          const island = performance.getEntriesByType("resource")
            .find((entry) => entry.name.includes("chat-ai-widget-island"));
          return { paint: paint?.startTime, island: island?.startTime };
        }"""
    )
    assert timings["paint"] is not None and timings["island"] is not None, timings
    assert timings["island"] > timings["paint"], timings
