"""How soon a returning visitor sees the widget's launcher, on the demo site, in Chromium.

Run with `make bench` (or `python -m benchmarks.launcher --runs 5`) from the project root.
It starts the demo site (`deploy.demo_site.DemoSite`: nginx, workers, Redis, PostgreSQL,
the sandbox) on free ports with a fresh data directory, creates an account straight in its
PostgreSQL database, signs it in and opens the chat page once (so the Sendbird user, the
cached session token and the widget's cached channel all exist: a *returning* visitor).
Then, in Debian's Chromium, it times page views of the chat page:

* cold cache: each view in a new browser context holding the first view's localStorage
  (the sign-in token, the widget's channel cache) but an empty HTTP cache;
* warm cache: views in a browser profile on disk (the returning visitor's own browser)
  that earlier views have filled: its HTTP cache, and V8's code cache of the page's and the
  island's scripts (Chromium keeps compiled code of a script it has run before);
* warm-private: views in one private context (Playwright's default, like an incognito
  window) whose HTTP cache a first view has filled; Chromium keeps no code cache there, so
  every script is compiled again: the slowest warm view a returning visitor can have.

For each view: navigation start to the launcher being visible, to the message input being
ready, and to the bot's reply to a message sent as soon as the input is ready (and that
reply's own round trip); the scripts the page used, the ones that came over the network,
and the bytes on the wire (encoded body plus headers, every resource but the WebSocket)
until the launcher showed. Medians over `--runs` views; then the median milestones of a
view (where the time before the launcher goes).

Figures, not pass/fail: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.demo_site import DemoSite, DemoSiteConfig, DemoSiteError
from deploy.processes import free_port
from tests.stack import CHROMIUM, CHROMIUM_ARGS, prepare_reflex_environment

PASSWORD = "correct-horse-battery-9"  # noqa: S105 - a throwaway benchmark account
LAUNCHER = "#aichatbot-widget-button"
MESSAGE_INPUT = ".sendbird-message-input--textarea"
VIEWPORT = {"width": 1280, "height": 900}  # desktop: the widget opens its window on load
TIMEOUT_MS = 60_000
FAILURE_SCREENSHOT = Path("test-results") / "launcher-bench-failure.png"
# Chromium compiles a script on its first run, caches the code on the second, uses it after.
PROFILE_FILL_VIEWS = 3

# Runs in the page before its own scripts: records, on the page's clock (milliseconds since
# navigation start), when the launcher is first visible and when the input takes text.
#
# It must not slow down what it measures: a MutationObserver only notes that the page
# changed (no layout), and the boxes are read once per frame, in requestAnimationFrame,
# where the frame lays the page out anyway. The stamp is that frame's start, the first
# frame that paints the element. Python awaits `window.__launcherBenchDone` (promises)
# instead of polling the page every frame.
PROBE = """
(() => {
  const LAUNCHER = __LAUNCHER__;
  const INPUT = __INPUT__;
  const HOST = '[data-testid="chat-ai-widget-host"]';
  const marks = {};
  const done = {};
  const settle = {};
  for (const name of ["launcher", "input"]) done[name] = new Promise((r) => (settle[name] = r));
  window.__launcherBench = marks;
  window.__launcherBenchDone = done;
  const shown = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== "hidden";
  };
  const ready = (input) =>
    // A contenteditable <div>, "disabled" and not editable until the channel is ready.
    shown(input) && input.isContentEditable && !input.hasAttribute("disabled");
  const mark = (name, at) => {
    marks[name] = at;
    settle[name](at);
  };
  let changed = true;
  new MutationObserver(() => {
    changed = true;
    if (marks.host === undefined && document.querySelector(HOST)) marks.host = performance.now();
  }).observe(document, {subtree: true, childList: true, attributes: true});
  const frame = (at) => {
    if (changed) {
      changed = false;
      const launcher = marks.launcher === undefined && document.querySelector(LAUNCHER);
      if (launcher && shown(launcher)) mark("launcher", at);
      const input = marks.input === undefined && document.querySelector(INPUT);
      if (input && ready(input)) mark("input", at);
      else if (input) changed = true; // the input turns ready without a DOM change
    }
    if (marks.launcher === undefined || marks.input === undefined) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();
""".replace("__LAUNCHER__", json.dumps(LAUNCHER)).replace("__INPUT__", json.dumps(MESSAGE_INPUT))

# What the page's clock says about the load, read once the launcher is visible.
TIMINGS = """
() => {
  const navigation = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const find = (part) => resources.find((entry) => entry.name.includes(part));
  const island = find("chat-ai-widget-island");
  const settings = find("widget_setting");
  // The bridge's User Timing marks (chat_ai_widget.jsx).
  const mark = (name) => performance.getEntriesByName(`chat-ai-widget:${name}`)[0]?.startTime;
  return {
    html: navigation.responseEnd,
    dom_ready: navigation.domContentLoadedEventEnd,
    island_import: mark("island-import"),
    island_ready: mark("island-ready"),
    widget_mount: mark("widget-mount"),
    island_start: island?.startTime,
    island_end: island?.responseEnd,
    settings_end: settings?.responseEnd,
    host: window.__launcherBench.host,
    launcher: window.__launcherBench.launcher,
  };
}
"""

# Milestones in the order a typical warm view reaches them, with their labels.
MILESTONES = (
    ("html", "HTML received"),
    ("dom_ready", "DOMContentLoaded (page scripts run)"),
    ("island_start", "island requested (modulepreload)"),
    ("island_end", "island received"),
    ("socket", "Reflex WebSocket open"),
    ("event_sent", "hydrate and on_load event sent on it"),
    ("island_import", "island run starts (page idle)"),
    ("token", "session token received (state delta)"),
    ("island_ready", "island run done"),
    ("host", "widget rendered by React (bridge mounts)"),
    ("widget_mount", "widget mounted into the island's root"),
    ("settings_end", "widget settings received"),
    ("launcher", "launcher visible"),
)


@dataclass
class View:
    """One timed page view."""

    launcher_ms: float
    input_ms: float
    reply_ms: float
    round_trip_ms: float
    scripts: int
    scripts_from_network: int
    script_bytes: int
    wire_bytes: int
    milestones: dict[str, float] = field(default_factory=dict)


class NetworkLog:
    """The page's requests as Chromium's DevTools protocol reports them (CDP Network events).

    Resource Timing hides the sizes of cross-origin responses; the protocol does not, and
    it says which responses came from the cache.
    """

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.cached: set[str] = set()
        self.wire: dict[str, int] = {}
        self.document_sent: float | None = None
        self.socket_open: float | None = None
        self.event_sent: float | None = None
        self.token_frame: float | None = None

    def attach(self, cdp: Any) -> None:
        """Listen on a CDP session of the page (Network enabled)."""
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.requestServedFromCache", lambda e: self.cached.add(e["requestId"]))
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketHandshakeResponseReceived", self._socket)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.on("Network.webSocketFrameSent", self._frame_sent)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        if event.get("type") == "Document" and self.document_sent is None:
            self.document_sent = event["timestamp"]

    def _response(self, event: dict[str, Any]) -> None:
        self.types[event["requestId"]] = event.get("type", "")
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            self.cached.add(event["requestId"])

    def _finished(self, event: dict[str, Any]) -> None:
        self.wire[event["requestId"]] = int(event.get("encodedDataLength", 0))

    def _socket(self, event: dict[str, Any]) -> None:
        if self.socket_open is None:
            self.socket_open = event["timestamp"]

    def _frame_sent(self, event: dict[str, Any]) -> None:
        # Socket.IO's namespace connect, "40/_event,{...}": Reflex sends its first event
        # (hydrate and on_load) in it.
        payload = event["response"].get("payloadData", "")
        if self.event_sent is None and payload.startswith("40"):
            self.event_sent = event["timestamp"]

    def _frame(self, event: dict[str, Any]) -> None:
        payload = event["response"].get("payloadData", "")
        if self.token_frame is None and '"session_token_rx_state_":"' in payload.replace(" ", ""):
            compact = payload.replace(" ", "")
            if '"session_token_rx_state_":""' not in compact:
                self.token_frame = event["timestamp"]

    def since_navigation(self, timestamp: float | None) -> float | None:
        """A protocol timestamp (seconds) as milliseconds since the document was requested."""
        if timestamp is None or self.document_sent is None:
            return None
        return (timestamp - self.document_sent) * 1000

    def scripts(self) -> tuple[int, int, int]:
        """(scripts used, scripts fetched over the network, their bytes on the wire)."""
        ids = [rid for rid, kind in self.types.items() if kind == "Script"]
        fetched = [rid for rid in ids if rid not in self.cached]
        return len(ids), len(fetched), sum(self.wire.get(rid, 0) for rid in fetched)

    def wire_bytes(self) -> int:
        """Bytes on the wire for every finished request so far."""
        return sum(size for rid, size in self.wire.items() if rid not in self.cached)


# Resolves with the probe's stamp, or fails after TIMEOUT_MS (one timer, no polling).
_AWAIT_MARK = """
([name, timeout]) => Promise.race([
  window.__launcherBenchDone[name],
  new Promise((_, reject) => setTimeout(() => reject(new Error("bench-timeout")), timeout)),
])
"""


# Resolves with the start of the first frame that paints the bot's echo of `marker` (the
# page's text is read once per frame, and only after the DOM changed).
_AWAIT_REPLY = """
([marker, timeout]) => new Promise((resolve, reject) => {
  const needle = `You said: "${marker}"`;
  let changed = true;
  const observer = new MutationObserver(() => (changed = true));
  observer.observe(document, {subtree: true, childList: true, characterData: true});
  const timer = setTimeout(() => reject(new Error("bench-timeout")), timeout);
  const frame = (at) => {
    if (changed && document.body.textContent.includes(needle)) {
      observer.disconnect();
      clearTimeout(timer);
      return resolve(at);
    }
    changed = false;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})
"""


def _await(page: Any, script: str, arg: list[Any]) -> Any:
    """Evaluate a probe promise; a "bench-timeout" rejection becomes a Playwright timeout."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.evaluate(script, arg)
    except PlaywrightError as error:
        if "bench-timeout" in str(error):
            raise PlaywrightTimeout(str(error)) from None
        raise


def timed_view(context: Any, url: str, say: Callable[[str], None]) -> View:
    """Open the chat page in a new page of `context`; time the launcher and a reply."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    network = NetworkLog()
    network.attach(context.new_cdp_session(page))
    step = "the launcher to show"
    try:
        page.goto(url, wait_until="commit")
        _await(page, _AWAIT_MARK, ["launcher", TIMEOUT_MS])
        timings = page.evaluate(TIMINGS)
        scripts, fetched, script_bytes = network.scripts()
        wire = network.wire_bytes()
        step = "the message input to take text"
        _await(page, _AWAIT_MARK, ["input", TIMEOUT_MS])
        marker = f"bench {secrets.token_hex(4)}"
        box = page.locator(MESSAGE_INPUT)
        box.fill(marker)
        sent = page.evaluate("() => performance.now()")
        box.press("Enter")
        step = "the bot's reply"
        reply = _await(page, _AWAIT_REPLY, [marker, TIMEOUT_MS])
        marks = page.evaluate("() => window.__launcherBench")
    except PlaywrightTimeout:
        FAILURE_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(FAILURE_SCREENSHOT), full_page=True)
        raise RuntimeError(
            f"{url}: waited {TIMEOUT_MS / 1000:g} s for {step}; the page is in {FAILURE_SCREENSHOT}"
        ) from None
    finally:
        page.close()
    milestones = {name: value for name, value in timings.items() if value is not None}
    stamps = {
        "socket": network.socket_open,
        "event_sent": network.event_sent,
        "token": network.token_frame,
    }
    for name, stamp in stamps.items():
        value = network.since_navigation(stamp)
        if value is not None:
            milestones[name] = value
    view = View(
        launcher_ms=marks["launcher"],
        input_ms=marks["input"],
        reply_ms=reply,
        round_trip_ms=reply - sent,
        scripts=scripts,
        scripts_from_network=fetched,
        script_bytes=script_bytes,
        wire_bytes=wire,
        milestones=milestones,
    )
    say(
        f"    launcher {view.launcher_ms:6.0f} ms, reply {view.reply_ms:6.0f} ms, "
        f"{fetched}/{scripts} scripts over the network, {wire / 1024:6.0f} KB"
    )
    return view


def median(values: list[float]) -> float:
    """The median (the middle view of an odd number of runs)."""
    return statistics.median(values)


def report(rows: dict[str, list[View]]) -> None:
    """Print the table of medians and the breakdown of a view's milestones."""
    print("\nReturning view of the chat page, median of", len(next(iter(rows.values()))), "views")
    header = (
        f"  {'cache':12s} {'launcher':>9s} {'input':>8s} {'reply':>8s} {'reply rtt':>9s} "
        f"{'scripts':>8s} {'network':>8s} {'script KB':>9s} {'wire KB':>8s}"
    )
    print(header)
    for name, views in rows.items():
        print(
            f"  {name:12s} "
            f"{median([v.launcher_ms for v in views]):7.0f}ms "
            f"{median([v.input_ms for v in views]):6.0f}ms "
            f"{median([v.reply_ms for v in views]):6.0f}ms "
            f"{median([v.round_trip_ms for v in views]):7.0f}ms "
            f"{median([v.scripts for v in views]):8.0f} "
            f"{median([v.scripts_from_network for v in views]):8.0f} "
            f"{median([v.script_bytes for v in views]) / 1024:9.0f} "
            f"{median([v.wire_bytes for v in views]) / 1024:8.0f}"
        )
    print("\nWhere the time before the launcher goes (median ms since navigation start)")
    print(f"  {'milestone':42s} " + " ".join(f"{name:>7s}" for name in rows))
    for key, label in MILESTONES:
        cells = []
        for views in rows.values():
            values = [v.milestones[key] for v in views if key in v.milestones]
            cells.append(f"{median(values):7.0f}" if values else f"{'-':>7s}")
        print(f"  {label:42s} " + " ".join(cells))


@contextmanager
def demo_site(
    workers: int, data_dir: Path | None, say: Callable[[str], None]
) -> Iterator[DemoSite]:
    """The demo site on free ports; a fresh data directory unless one is given."""
    owned = data_dir is None
    # Not a private temp dir: PostgreSQL runs as `postgres` and must reach its directory.
    directory = Path(tempfile.mkdtemp(prefix="bench-launcher-")) if owned else data_dir
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    config = DemoSiteConfig(
        host="127.0.0.1",
        port=free_port(),
        sandbox_port=free_port(),
        workers=workers,
        data_dir=directory,
    )
    try:
        with DemoSite(config, say=lambda line: say(f"  {line}")) as site:
            yield site
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def signed_in_storage(site: DemoSite) -> dict[str, Any]:
    """A new account, signed in, as Playwright storage state for the site's origin."""
    from sample_app.accounts import AccountService, create_engine_for
    from sample_app.state.auth import SIGN_IN_TOKEN_STORAGE_KEY

    engine = create_engine_for(site.postgres.url)
    try:
        accounts = AccountService(engine)
        username = f"bench{secrets.randbelow(10**8)}"
        accounts.register(username, PASSWORD, "Launcher Bench")
        token = accounts.sign_in(username, PASSWORD, client_key="").sign_in_token
    finally:
        engine.dispose()
    entry = {"name": SIGN_IN_TOKEN_STORAGE_KEY, "value": token}
    return {"cookies": [], "origins": [{"origin": site.url, "localStorage": [entry]}]}


def main(argv: list[str] | None = None) -> int:
    """Start the demo site, time the views, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.launcher", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed views per cache state")
    parser.add_argument("--workers", type=int, default=2, help="the demo site's workers")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted views before timing")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="reuse this data dir (default: a fresh one)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    say: Callable[[str], None] = (lambda _line: None) if args.quiet else print
    prepare_reflex_environment()
    say("Starting the demo site (nginx, workers, Redis, PostgreSQL, sandbox)...")
    try:
        rows = run_views(args, say)
    except DemoSiteError as error:
        print(f"error: the demo site did not start: {error}\n(`make servers` installs its parts)")
        return 1
    report(rows)
    return 0


def run_views(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, list[View]]:
    """Start the demo site and Chromium; time the cold and the warm views."""
    from playwright.sync_api import sync_playwright

    from sample_app import routes

    with demo_site(args.workers, args.data_dir, say) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        url = f"{site.url}{routes.CHAT}"
        first = browser.new_context(viewport=VIEWPORT, storage_state=signed_in_storage(site))
        first.add_init_script(PROBE)
        say("First view (creates the Sendbird user, the token, the widget's channel cache):")
        timed_view(first, url, say)
        returning = first.storage_state()
        first.close()
        say(f"Warm-up ({args.warmup} cold views, so every worker has served one; not counted):")
        for _ in range(args.warmup):
            context = browser.new_context(viewport=VIEWPORT, storage_state=returning)
            context.add_init_script(PROBE)
            timed_view(context, url, say)
            context.close()

        rows: dict[str, list[View]] = {"cold": []}
        say("Cold cache (a new context for each view):")
        for _ in range(args.runs):
            context = browser.new_context(viewport=VIEWPORT, storage_state=returning)
            context.add_init_script(PROBE)
            rows["cold"].append(timed_view(context, url, say))
            context.close()
        say("Warm cache, private context (filled by a view first; no code cache):")
        context = browser.new_context(viewport=VIEWPORT, storage_state=returning)
        context.add_init_script(PROBE)
        timed_view(context, url, lambda _line: None)
        private = [timed_view(context, url, say) for _ in range(args.runs)]
        context.close()
        browser.close()

        say(f"Warm cache, browser profile (filled by {PROFILE_FILL_VIEWS} views first):")
        with returning_profile(playwright, site.url, returning) as profile:
            for _ in range(PROFILE_FILL_VIEWS):
                timed_view(profile, url, lambda _line: None)
            rows["warm"] = [timed_view(profile, url, say) for _ in range(args.runs)]
        rows["warm-private"] = private
    return rows


@contextmanager
def returning_profile(playwright: Any, origin: str, storage: dict[str, Any]) -> Iterator[Any]:
    """A Chromium profile on disk holding `storage`'s localStorage for `origin`.

    Persistent, unlike Playwright's contexts, so Chromium keeps its code cache there as in
    a visitor's own browser. The localStorage is written from a page of the origin that
    runs none of the app (the favicon), before any view.
    """
    directory = tempfile.mkdtemp(prefix="bench-launcher-profile-")
    try:
        profile = playwright.chromium.launch_persistent_context(
            directory, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        try:
            entries = [
                [item["name"], item["value"]]
                for entry in storage["origins"]
                if entry["origin"] == origin
                for item in entry["localStorage"]
            ]
            page = profile.new_page()
            page.goto(f"{origin}/favicon.svg")
            page.evaluate(
                "(entries) => entries.forEach(([k, v]) => localStorage.setItem(k, v))", entries
            )
            page.close()
            profile.add_init_script(PROBE)
            yield profile
        finally:
            profile.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
