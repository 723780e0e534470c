"""The skeleton: the real widget runs in its React 18 island inside the Reflex page."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from reflex.testing import AppHarness

from sample_app.config import PROJECT_ROOT
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


def test_island_is_off_the_critical_path(page: Page, app: AppHarness) -> None:
    """The 1.3 MB island is import()ed after the document has loaded, never by the HTML.

    So the host page parses, renders and paints without waiting for it.
    """
    register(page, unique_username("paint"), "Paint Tester")
    # The browser keeps only 250 resource timings by default; the widget makes many calls.
    page.add_init_script("performance.setResourceTimingBufferSize(10000)")
    page.reload()  # a full load of the chat page itself, signed in
    # The launcher is rendered by the island, so it exists only once the island has loaded.
    expect(page.locator(LAUNCHER)).to_be_visible()
    timings = page.evaluate(
        """() => {
          const navigation = performance.getEntriesByType("navigation")[0];
          const island = performance.getEntriesByType("resource")
            .find((entry) => entry.name.includes("chat-ai-widget-island"));
          return { loaded: navigation.domContentLoadedEventEnd, island: island?.startTime };
        }"""
    )
    assert timings["island"] is not None, timings
    assert timings["island"] > timings["loaded"], timings
    html = page.request.get(app.frontend_url).text()
    assert "chat-ai-widget-island" not in html


def test_production_build_prerenders_every_page(app: AppHarness) -> None:
    """`reflex export` built and prerendered the pages; the island is a separate file."""
    build = PROJECT_ROOT / ".web" / "build" / "client"
    for page_html in ("index.html", "sign-in/index.html", "register/index.html"):
        assert (build / page_html).is_file(), page_html
    assert (build / "widget-island" / "chat-ai-widget-island.js").is_file()
    chunks = list((build / "assets").glob("*.js"))
    assert any("ChatAiWidgetBridge" in chunk.read_text() for chunk in chunks)
    # The island (React 18 + widget) is not bundled into the host page's chunks.
    for chunk in chunks:
        assert "aichatbot-widget-button" not in chunk.read_text(), chunk.name
