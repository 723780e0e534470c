"""Suite-wide settings: tiers marked by folder, tier order, and no unexpected ERROR logs.

* Tiers: every test under `tests/sandbox/`, `tests/browser/`, `tests/deploy/` or
  `tests/live/` gets that folder's marker here, so test files carry no `pytestmark`
  boilerplate (and `asyncio_mode = "auto"` makes `@pytest.mark.asyncio` unnecessary too).
* Order: plain tests, then sandbox tests, then browser tests, then the deploy tier (the
  demo-site topology: proxy, workers, Redis, PostgreSQL, standalone sandbox).
* Servers: `redis_server` is a real `redis-server` on a free port for the whole session
  (`deploy/redis.py`, the class the demo site uses), started only if a test asks for it.
* Logs: a test fails when the app or Reflex logs at ERROR or above while it runs, unless
  it is marked `@pytest.mark.allow_error_logs` (for tests that provoke errors on purpose).
* Hermetic: the project's `.env` is never read (it may hold real Sendbird credentials);
  tests that exercise `.env` handling pass their own file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from sample_app.config import IGNORE_ENV_FILE_VARIABLE

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from deploy.redis import RedisServer

# Before anything imports rxconfig (which loads `.env`); subprocesses inherit it.
os.environ[IGNORE_ENV_FILE_VARIABLE] = "1"

TESTS = Path(__file__).resolve().parent

# Folder directly under tests/ -> the marker of its tier.
TIER_FOLDERS = {"sandbox": "sandbox", "browser": "browser", "deploy": "deploy", "live": "live"}

ALLOW_ERROR_LOGS = "allow_error_logs"

# Loggers whose ERROR records fail a test: the app's own (`sample_app.*`) and Reflex's
# (`reflex.*`, and its packages `reflex_base.*`, `reflex_components_*.*` and so on).
APP_LOGGER_ROOTS = ("sample_app", "reflex")

# Each phase's report, kept on the item by pytest_runtest_makereport.
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def tier_of(item: pytest.Item) -> str | None:
    """The tier marker for `item`, from the folder under tests/ that holds it."""
    try:
        relative = item.path.resolve().relative_to(TESTS)
    except ValueError:  # a test file outside tests/, e.g. given on the command line
        return None
    return TIER_FOLDERS.get(relative.parts[0]) if len(relative.parts) > 1 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier, then order the tiers.

    Plain tests run first, then sandbox tests, then browser tests, then deploy tests:
    browser tests start the whole app (a production build, then two servers), so the fast
    tiers give feedback first and Playwright's event loop stays apart from the asyncio
    tests that ran before; the deploy tier builds its own frontend after them (both build
    into .web/, so never at the same time).
    Among browser tests the one that runs `reflex run` (the dev server) goes first, since
    it and the production-build tests both compile the app into .web/.
    """
    for item in items:
        tier = tier_of(item)
        if tier is not None and item.get_closest_marker(tier) is None:
            item.add_marker(tier)

    def order(item: pytest.Item) -> tuple[int, bool]:
        if item.get_closest_marker("deploy"):
            tier = 3
        elif item.get_closest_marker("browser"):
            tier = 2
        elif item.get_closest_marker("sandbox"):
            tier = 1
        else:
            tier = 0
        return tier, "reflex_run" not in item.nodeid

    items.sort(key=order)


def is_app_logger(name: str) -> bool:
    """Whether records of logger `name` count as the app's or Reflex's."""
    root = name.partition(".")[0]
    return root in APP_LOGGER_ROOTS or root.startswith("reflex_")


def describe(record: logging.LogRecord) -> str:
    """One line for a record in the failure message (plus its exception, if any)."""
    line = f"{record.levelname} {record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        line += f" [{type(error).__name__}: {error}]"
    return line


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


# The widget's bundled Chat SDK rejects its own pending requests when their socket goes
# ("Connection is closed": a sandbox restart, a dropped or deleted user's socket) or the
# widget is unmounted ("Request has been canceled": sign-out, end session), and leaves the
# rejections unhandled. Reflex's frontend error hook reports them at ERROR; they are no
# fault of the app. Matched narrowly: those SendbirdError messages, thrown inside the
# island bundle.
WIDGET_SDK_NOISE = (
    "SendbirdError: Connection is closed",
    "SendbirdError: Request has been canceled",
)
# The island's file name carries its content hash (widget-island/build.mjs).
ISLAND_BUNDLE = re.compile(r"chat-ai-widget-island\.[0-9a-f]{12}\.js")


def is_known_widget_noise(record: logging.LogRecord) -> bool:
    """Whether a record is the widget SDK's own unhandled rejection, relayed by Reflex."""
    message = record.getMessage()
    return (
        message.startswith("[Reflex Frontend Exception]")
        and any(noise in message for noise in WIDGET_SDK_NOISE)
        and ISLAND_BUNDLE.search(message) is not None
    )


@pytest.fixture(autouse=True)
def _fail_on_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail a test whose call phase logged at ERROR or above from the app or Reflex.

    pytest's logging plugin records every phase through a handler on the root logger, so
    this sees whatever reaches it, from any thread: in the browser tier that includes the
    Reflex backend, which runs in-process. Records logged during fixture set-up or
    teardown do not count, and nothing is added to a test that failed on its own.
    """
    yield
    if request.node.get_closest_marker(ALLOW_ERROR_LOGS) is not None:
        return
    call = request.node.stash.get(PHASE_REPORTS, {}).get("call")
    if call is None or not call.passed:
        return
    errors = [
        record
        for record in caplog.get_records("call")
        if record.levelno >= logging.ERROR
        and is_app_logger(record.name)
        and not is_known_widget_noise(record)
    ]
    if errors:
        lines = "\n".join(f"  {describe(record)}" for record in errors)
        pytest.fail(
            f"{request.node.nodeid} logged {len(errors)} record(s) at ERROR or above:\n"
            f"{lines}\nFix the cause, or mark the test @pytest.mark.{ALLOW_ERROR_LOGS} "
            "if it provokes them on purpose.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis on a free port of 127.0.0.1, without persistence, for the session.

    Tests that stop it (to see the app survive an outage) start it again on the same port.
    """
    from deploy.redis import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest_asyncio.fixture
async def redis_key_prefix(redis_server: RedisServer) -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    from sample_app.redis_shared import connect_redis

    name = f"test-{time.monotonic_ns()}"
    yield name
    redis = connect_redis(redis_server.url)
    keys = [key async for key in redis.scan_iter(match=f"{name}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by the browser and deploy tiers.

    One for the whole session: Playwright's sync API keeps an event loop on the main
    thread while it runs, so a second tier cannot start a Playwright of its own.
    """
    from tests.stack import running_chromium

    with running_chromium() as chromium:
        yield chromium
