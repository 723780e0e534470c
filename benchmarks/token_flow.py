"""Token-flow figures against the local sandbox: calls per page view and refresh latency.

Run with `make bench` (or `python -m benchmarks.token_flow --refreshes 300`) from the project
root. It starts the sandbox and the app (production build) with the browser tests' helper
(`tests/stack.py`), keeps the servers' access logs and the app's INFO messages out of the way,
then prints:

1. Platform API calls per page view: a new user's first view of the chat page, then a
   returning view within the token's life (the cached token is reused).
2. Token refresh round trip through the Reflex backend: the widget's
   onSessionTokenRequired arrives as an event on the tab's socket, the server re-checks the
   account, issues a token at the sandbox and answers with `token_reply`; timed from
   sending the event to receiving the answer, p50/p95/p99 over N refreshes.
3. The same issuance as a direct `SendbirdClient.issue_session_token` call, for comparison.

Figures, not pass/fail: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.stack import prepare_reflex_environment

APP_ID, BOT_ID = "bench-app", "bench-bot"
PASSWORD = "correct-horse-battery-9"  # noqa: S105 - a throwaway benchmark account
# Loggers whose INFO lines (one per HTTP request, server start-up) would bury the figures.
NOISY_LOGGERS = ("uvicorn.access", "uvicorn.error", "sample_app")


class _WarningsAndAbove(logging.Filter):
    """Let only WARNING and worse through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_logs() -> None:
    """Keep access logs and INFO chatter out of the output; warnings and errors still show.

    uvicorn re-applies its logging configuration (levels included) each time a server is
    created, which the harness does after this runs, so a filter on each logger does the
    work; a filter survives that re-configuration. LOG_LEVEL tells the app the same.
    """
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.addFilter(_WarningsAndAbove())


def percentiles(samples_ms: list[float]) -> str:
    """p50/p95/p99 and the mean, in milliseconds."""
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return (
        f"p50 {cuts[49]:7.2f} ms   p95 {cuts[94]:7.2f} ms   p99 {cuts[98]:7.2f} ms   "
        f"mean {statistics.fmean(samples_ms):7.2f} ms   (n={len(samples_ms)})"
    )


def platform_calls(stats: dict) -> dict[str, int]:
    """Platform API calls per route, from the sandbox's counters."""
    return dict(stats.get("platform_api", {}))


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Calls made between two snapshots."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


async def refresh_round_trips(backend_url: str, tab_token: str, count: int) -> list[float]:
    """Send onSessionTokenRequired events on the tab's socket; time each answer."""
    from sample_app.state.chat_session import ChatSessionState
    from tests.browser.reflex_socket import ReflexSocket

    event = f"{ChatSessionState.get_full_name()}.answer_token_request"
    samples: list[float] = []
    async with ReflexSocket(backend_url, token=tab_token) as socket:
        for request_id in range(10_000, 10_000 + count):
            started = time.perf_counter()
            await socket.send_event(event, {"request_id": request_id})
            answer = re.compile(rf'"request_id":{request_id},"token":"([^"]*)","error":"([^"]*)"')
            while True:
                delta = await socket.next_delta(timeout=10)
                if delta is None:
                    raise TimeoutError(f"no answer to token request {request_id}")
                if match := answer.search(json.dumps(delta, separators=(",", ":"))):
                    break
            if not match.group(1):
                raise RuntimeError(f"token request {request_id} refused: {match.group(2)}")
            samples.append((time.perf_counter() - started) * 1000)
            socket.deltas.clear()
    return samples


async def direct_round_trips(base_url: str, api_token: str, user_id: str, count: int) -> list:
    """Issue tokens straight from a SendbirdClient (no Reflex in between)."""
    from sample_app.sendbird_api import SendbirdClient

    samples: list[float] = []
    async with SendbirdClient(base_url, api_token) as client:
        for _ in range(count):
            started = time.perf_counter()
            await client.issue_session_token(user_id, datetime.now(UTC) + timedelta(minutes=30))
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    """Start the stack, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=300, help="refreshes to time (>= 200)")
    args = parser.parse_args()

    prepare_reflex_environment()
    quiet_logs()
    from playwright.sync_api import expect, sync_playwright
    from reflex_base.config import get_config

    from tests.browser.reflex_socket import run_outside_playwright
    from tests.stack import CHROMIUM, CHROMIUM_ARGS, running_stack

    workdir = Path(tempfile.mkdtemp(prefix="token-bench-"))

    print("Starting the sandbox and the app (production build)...", flush=True)
    with (
        running_stack(workdir, app_id=APP_ID, bot_id=BOT_ID) as stack,
        sync_playwright() as pw,
    ):
        sandbox, app = stack.sandbox, stack.app

        def stats() -> dict[str, int]:
            return platform_calls(sandbox.stats())

        def tokens_of(user_id: str) -> list[dict]:
            return sandbox.tokens(user_id)

        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=app.frontend_url)
        page.goto("/register")
        page.get_by_label("Username").fill(f"bench{secrets.randbelow(10**6)}")
        page.get_by_label("Display name").fill("Bench Mark")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Confirm password").fill(PASSWORD)

        before = stats()
        page.get_by_role("button", name="Create account").click()
        expect(page.locator("#aichatbot-widget-button")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("session-timeline")).to_contain_text("widget mounted")
        first_view = diff(stats(), before)

        before = stats()
        page.reload()
        expect(page.locator("#aichatbot-widget-button")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(500)
        returning_view = diff(stats(), before)

        user_id = page.get_by_test_id("sendbird-user-id").inner_text().strip()
        tab_token = page.evaluate("() => sessionStorage.getItem('token')")
        backend_url = get_config().api_url
        # Hand the signed-in tab over to the measuring socket (one connection per tab).
        page.goto("about:blank")
        page.wait_for_timeout(500)

        print("\nPlatform API calls per page view (counted by the sandbox)")
        for label, calls in (("first view", first_view), ("returning view", returning_view)):
            total = sum(calls.values())
            detail = ", ".join(f"{route} x{n}" for route, n in sorted(calls.items()))
            print(f"  {label:15s} {total} call(s)  {detail or '(none: cached token reused)'}")

        count = max(args.refreshes, 200)
        print(f"\nToken refresh round trip, {count} refreshes each")
        # Warm up both paths, then measure.
        run_outside_playwright(refresh_round_trips(backend_url, tab_token, 10))
        minted_before = len(tokens_of(user_id))
        through_reflex = run_outside_playwright(refresh_round_trips(backend_url, tab_token, count))
        minted = len(tokens_of(user_id)) - minted_before
        print(f"  through the Reflex backend  {percentiles(through_reflex)}")
        print(f"    (the sandbox minted {minted} tokens for these {count} refreshes)")
        run_outside_playwright(direct_round_trips(sandbox.url, sandbox.api_token, user_id, 10))
        direct = run_outside_playwright(
            direct_round_trips(sandbox.url, sandbox.api_token, user_id, count)
        )
        print(f"  direct client -> sandbox    {percentiles(direct)}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
