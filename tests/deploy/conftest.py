"""The deploy tier: the demo-site topology, started for real, as `make demo-site` starts it.

* `site`: `deploy.demo_site.DemoSite` on free ports with a fresh data directory: nginx in
  front of two Reflex workers (one process each) sharing Redis (with its append-only file)
  and a PostgreSQL accounts database, and the sandbox as its own process behind the same
  nginx. Started once for the tier (the frontend export is the slow part); tests that kill
  a worker or restart Redis leave the site whole again.
* `sandbox`: the sandbox's control client (on 127.0.0.1, with the site's sandbox token).
* `accounts`: an `AccountService` on the site's PostgreSQL, to create accounts without
  going through the registration limits.
* `browser` / `page`: Debian's Chromium; each page gets a fresh context on the proxy's URL
  and fails the test on uncaught page errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from deploy.demo_site import DemoSite, DemoSiteConfig
from deploy.processes import free_port
from sample_app.accounts import AccountService, create_engine_for
from sample_app.config import PROJECT_ROOT
from sample_app.sandbox.control_client import SandboxControlClient
from tests.stack import prepare_reflex_environment

ARTIFACTS = PROJECT_ROOT / "test-results"

prepare_reflex_environment()


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Iterator[DemoSite]:
    """The whole topology; its logs are kept in test-results/ when the tier fails."""
    # Not pytest's tmp_path: its parents are private to root, and PostgreSQL runs as the
    # `postgres` user, which must reach its data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="deploy-tier-"))
    data_dir.chmod(0o755)
    port = free_port()
    config = DemoSiteConfig(
        host="127.0.0.1", port=port, sandbox_port=free_port(), workers=2, data_dir=data_dir
    )
    demo = DemoSite(config)
    started = False
    try:
        demo.start()
        started = True
        yield demo
    finally:
        demo.stop()
        failed = not started or request.session.testsfailed > 0
        if failed or os.environ.get("KEEP_DEPLOY_LOGS"):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copytree(demo.logs_dir, ARTIFACTS / "deploy-logs", dirs_exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox(site: DemoSite) -> Iterator[SandboxControlClient]:
    """The sandbox's control surface, on 127.0.0.1 (nginx does not publish it)."""
    assert site.sandbox_internal_url is not None
    client = SandboxControlClient(site.sandbox_internal_url, site.sandbox_api_token().reveal())
    yield client
    client.close()


@pytest.fixture(scope="session")
def accounts(site: DemoSite) -> Iterator[AccountService]:
    """The site's accounts, straight in its PostgreSQL database."""
    engine = create_engine_for(site.postgres.url)
    yield AccountService(engine)
    engine.dispose()


@pytest.fixture
def context(
    browser: Browser, site: DemoSite, request: pytest.FixtureRequest
) -> Iterator[BrowserContext]:
    """A fresh browser context on the proxy; screenshots of its pages if the test fails."""
    ctx = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20_000)
    errors: list[str] = []
    ctx.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    yield ctx
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.nodeid)[-100:]
        for number, page in enumerate(ctx.pages):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}-{number}.png"), full_page=True)
    ctx.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in a fresh context."""
    return context.new_page()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item (the context fixture reads it)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def open_sockets(site: DemoSite) -> list[int]:
    """How many connections each worker has open right now (what nginx balances on).

    Each tab holds one WebSocket through nginx to one worker; nginx keeps no idle
    connections to the workers, so this counts tabs.
    """
    ports = [int(url.rsplit(":", 1)[1]) for url in site.worker_urls]
    counts = dict.fromkeys(ports, 0)
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port in counts:
            counts[connection.laddr.port] += 1
    return [counts[port] for port in ports]
