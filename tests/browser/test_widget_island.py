"""The skeleton: the real widget runs in its React 18 island inside the Reflex page."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from reflex.testing import AppHarness

from sample_app.components.chat_ai_widget import island_build, island_url
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


# Records when the bridge's host element first appears (the widget renders after the token).
HOST_APPEARS = """
new MutationObserver((_, observer) => {
  if (document.querySelector('[data-testid="chat-ai-widget-host"]')) {
    window.__widgetHostAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""


def test_island_is_preloaded_off_the_critical_path(page: Page, app: AppHarness) -> None:
    """The 1.3 MB island is fetched as the page's script runs, and never blocks rendering.

    Not a `<script>` of the HTML: the page's own script adds a `<link rel="modulepreload">`
    (`preloadIsland`), so the download overlaps the wait for the first session token, the
    page parses, renders and paints without waiting for it, and the bridge's import() at
    mount reuses that one download.
    """
    register(page, unique_username("paint"), "Paint Tester")
    # The browser keeps only 250 resource timings by default; the widget makes many calls.
    page.add_init_script("performance.setResourceTimingBufferSize(10000)")
    page.add_init_script(HOST_APPEARS)
    page.reload()  # a full load of the chat page itself, signed in
    # The launcher is rendered by the island, so it exists only once the island has loaded.
    expect(page.locator(LAUNCHER)).to_be_visible()
    timings = page.evaluate(
        """() => {
          const islands = performance.getEntriesByType("resource")
            .filter((entry) => entry.name.includes("chat-ai-widget-island"));
          const preload = document.head.querySelector('link[rel="modulepreload"][href*="island"]');
          return {
            host: window.__widgetHostAt,
            fetches: islands.map((entry) => ({
              url: entry.name, start: entry.startTime, blocking: entry.renderBlockingStatus,
            })),
            preload: preload?.href,
          };
        }"""
    )
    url = f"{app.frontend_url.rstrip('/')}{island_url()}"
    assert timings["preload"] == url, timings
    (fetch,) = timings["fetches"]  # one download, shared by the preload and the import()
    assert fetch["url"] == url, timings
    assert fetch["blocking"] == "non-blocking", timings
    # Requested before the widget could mount (it waits for the token), not after.
    assert timings["host"] is not None, timings
    assert fetch["start"] < timings["host"], timings
    html = page.request.get(app.frontend_url).text()
    assert "chat-ai-widget-island" not in html


def test_production_build_prerenders_every_page(app: AppHarness) -> None:
    """`reflex export` built and prerendered the pages; the island is a separate file."""
    build = PROJECT_ROOT / ".web" / "build" / "client"
    for page_html in ("index.html", "sign-in/index.html", "register/index.html"):
        assert (build / page_html).is_file(), page_html
    assert (build / island_build().asset).is_file()
    chunks = list((build / "assets").glob("*.js"))
    # The bridge is in the page's own chunk (its host element's test id), with the
    # current island's URL, to preload it.
    (page_chunk,) = [chunk for chunk in chunks if "chat-ai-widget-host" in chunk.read_text()]
    assert island_url() in page_chunk.read_text()
    # The island (React 18 + widget) is not bundled into the host page's chunks.
    for chunk in chunks:
        assert "aichatbot-widget-button" not in chunk.read_text(), chunk.name


def test_widget_settings_are_requested_before_the_widget_mounts(page: Page) -> None:
    """The widget's settings request is preloaded as soon as the page knows the ids.

    The widget asks for its settings only after it has mounted, and shows nothing until
    they are there; the page preloads the same request (`WidgetSettingsPreload`) and the
    widget's own fetch() takes it: one request, made before the mount.
    """
    register(page, unique_username("settings"), "Settings Tester")
    page.add_init_script("performance.setResourceTimingBufferSize(10000)")
    page.reload()  # a full load of the chat page itself, signed in
    expect(page.locator(LAUNCHER)).to_be_visible()
    timings = page.evaluate(
        """() => ({
          settings: performance.getEntriesByType("resource")
            .filter((entry) => entry.name.includes("/widget_setting"))
            .map((entry) => ({initiator: entry.initiatorType, start: entry.startTime})),
          mount: performance.getEntriesByName("chat-ai-widget:widget-mount")[0]?.startTime,
        })"""
    )
    # One request: a preload the widget's fetch() did not match would show as a second one.
    (settings,) = timings["settings"]
    assert settings["initiator"] == "link", timings
    assert timings["mount"] is not None, timings
    assert settings["start"] < timings["mount"], timings
