"""The whole app in a real browser: sandbox + production build + headless Chromium.

* `sandbox`: the local Sendbird sandbox on a free port (a fresh SQLite file per run), with a
  client for its control surface (`tests/stack.py`).
* `app`: the Reflex app built for production (`AppHarnessProd`: `reflex export`, then the
  static frontend and the backend on two local ports), configured through the same
  environment variables a deployment uses, pointed at the sandbox (`tests/stack.py`, which
  the benchmark uses too).
* `browser` / `page`: Debian's Chromium driven by Playwright; each test gets a fresh
  context (empty storage), records every request, response and WebSocket frame in
  `traffic`, fails on uncaught page errors, and leaves a screenshot in test-results/
  when it fails.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, Page

from sample_app.config import PROJECT_ROOT
from tests.stack import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SandboxHandle,
    prepare_reflex_environment,
    running_app,
    running_sandbox,
)

__all__ = ["APP_ID", "BOT_ID", "CHROMIUM", "CHROMIUM_ARGS", "SandboxHandle", "Traffic"]

# At import, so that `reflex run` started by a test inherits it too.
prepare_reflex_environment()

APP_ID = "test-app"
BOT_ID = "test-bot"
ARTIFACTS = PROJECT_ROOT / "test-results"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """The Sendbird sandbox every browser test talks to."""
    with running_sandbox(
        tmp_path_factory.mktemp("sandbox"), app_id=APP_ID, bot_id=BOT_ID
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def app(sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The app, production build, configured like a deployment pointed at the sandbox."""
    with running_app(sandbox, tmp_path_factory.mktemp("accounts")) as harness:
        yield harness


@pytest.fixture(scope="session")
def backend_url(app: object) -> str:
    """The running backend's base URL (what the frontend's socket connects to)."""
    from reflex_base.config import get_config

    return get_config().api_url


@dataclass
class Traffic:
    """Everything the page sent and received, for assertions about secrets."""

    requests: list[str] = field(default_factory=list)
    request_bodies: list[str] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def all_text(self) -> str:
        """One string to search."""
        headers = [repr(h) for h in self.request_headers]
        return "\n".join(
            self.requests + self.request_bodies + headers + self.responses + self.frames
        )

    def requested(self, pattern: str) -> list[str]:
        """Request lines (METHOD URL) matching a regular expression."""
        return [line for line in self.requests if re.search(pattern, line)]


def _record(page: Page, traffic: Traffic) -> None:
    def on_request(request) -> None:
        traffic.requests.append(f"{request.method} {request.url}")
        traffic.request_headers.append(dict(request.headers))
        if request.post_data:
            traffic.request_bodies.append(request.post_data)

    def on_response(response) -> None:
        if response is None:
            return
        content_type = response.headers.get("content-type", "")
        if any(kind in content_type for kind in ("json", "javascript", "html", "text")):
            # Redirects and aborted responses have no body to read.
            with contextlib.suppress(Exception):
                traffic.responses.append(response.text())

    def on_websocket(ws) -> None:
        traffic.requests.append(f"WS {ws.url}")
        ws.on("framesent", lambda payload: traffic.frames.append(str(payload)))
        ws.on("framereceived", lambda payload: traffic.frames.append(str(payload)))

    page.on("request", on_request)
    page.on("requestfinished", lambda request: on_response(request.response()))
    page.on("websocket", on_websocket)
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))


@pytest.fixture
def traffic() -> Traffic:
    """The current test's recorded traffic."""
    return Traffic()


@pytest.fixture
def page(
    browser: Browser, app: object, traffic: Traffic, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context and page on the app; screenshot kept if the test fails."""
    context = browser.new_context(
        base_url=app.frontend_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    _record(page, traffic)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.nodeid)[-120:]
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert traffic.page_errors == [], f"uncaught errors in the page: {traffic.page_errors}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item (the page fixture reads it)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def clean_artifacts() -> None:
    """Remove screenshots of earlier runs."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
