"""Token-flow figures against the local sandbox: calls per page view and refresh latency.

Run with `make bench` (or `python -m benchmarks.token_flow --refreshes 300`) from the project
root. It starts the sandbox and the app (production build) with the browser tests' helper
(`tests/stack.py`), keeps the servers' access logs and the app's INFO messages out of the way,
then prints:

1. Platform API calls per page view: a new account's first view of the chat page (create
   the user, issue: 2), a returning account's first view after a restart (issue: 1), and a
   view within the token's life (the cached token is reused: 0). The restart is simulated
   with a fresh `SessionTokenService` and `SendbirdClient` in this process, against the same
   sandbox and the same (existing) user: that is exactly the state a restarted app process
   starts from (nothing cached, nothing synced), without rebuilding the app.
2. Token refresh round trip through the Reflex backend: the widget's
   onSessionTokenRequired arrives as an event on the tab's socket, the server re-checks the
   account, issues a token at the sandbox and answers with `token_reply`; timed from
   sending the event to receiving the answer, p50/p95/p99 over N refreshes.
3. The same issuance as a direct `SendbirdClient.issue_session_token` call, for comparison,
   timed in rounds that alternate with those of 2 (their p50 ratio is printed), and through
   the HTTP API (`POST /api/sendbird/session-token` with `refresh: true`, the
   embed page's path), all three in the same run.
4. Refresh latency idle and during a registration flood (N registrations at once over raw
   sockets, default argon2id cost): p50/p99 of each, the p99 ratio, and how many
   registrations were created or throttled by the overall registration limit.
5. Then, unless ``--no-capacity``, the capacity figures of ``benchmarks/capacity.py``
   (memory per idle tab, token answers under N tabs, page views per second), run as
   ``python -m benchmarks.capacity`` in a process of its own with its own stack, so its CPU
   and memory readings see only that app's backend; ``--capacity-args "..."`` passes flags on.

Figures, not pass/fail: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.stack import prepare_reflex_environment

APP_ID, BOT_ID = "bench-app", "bench-bot"
PASSWORD = "correct-horse-battery-9"  # noqa: S105 - a throwaway benchmark account
# The issuance budget opened up, so that the refreshes below each mint a token: with the
# defaults, refreshes milliseconds apart share one token and the figures would time the cache.
# The app's backend runs in this process and reads these from the environment.
OPEN_BUDGET = {
    "SENDBIRD_TOKEN_REUSE_SECONDS": "0",
    "SENDBIRD_TOKENS_PER_USER_PER_MINUTE": "1000",
    "SENDBIRD_PLATFORM_POSTS_PER_SECOND": "10000",
}
# Rounds the refresh and direct figures alternate in.
ROUNDS = 6
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


def quantile(samples_ms: list[float], percent: int) -> float:
    """One percentile of the samples, in milliseconds."""
    return statistics.quantiles(samples_ms, n=100, method="inclusive")[percent - 1]


def percentiles(samples_ms: list[float]) -> str:
    """p50/p95/p99 and the mean, in milliseconds."""
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return (
        f"p50 {cuts[49]:7.2f} ms   p95 {cuts[94]:7.2f} ms   p99 {cuts[98]:7.2f} ms   "
        f"mean {statistics.fmean(samples_ms):7.2f} ms   (n={len(samples_ms)})"
    )


ISSUE_ROUTE = "POST /v3/users/{user_id}/token"


def platform_calls(stats: dict) -> dict[str, int]:
    """Platform API calls per route, from the sandbox's counters."""
    return dict(stats.get("platform_api", {}))


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Calls made between two snapshots."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def tab_socket(backend_url: str, tab_token: str) -> Any:
    """The tab's Reflex socket, uncompressed, as the production server speaks to browsers."""
    from tests.browser.reflex_socket import ReflexSocket

    return ReflexSocket(backend_url, token=tab_token, compress=False)


async def refresh_round_trips(backend_url: str, tab_token: str, count: int) -> list[float]:
    """Send onSessionTokenRequired events on the tab's socket; time each answer."""
    async with tab_socket(backend_url, tab_token) as socket:
        return await refreshes_on(socket, range(10_000, 10_000 + count))


async def refreshes_on(socket: Any, request_ids: range) -> list[float]:
    """Time one onSessionTokenRequired answer per request id on an open tab socket."""
    from sample_app.state.chat_session import ChatSessionState

    state_name = ChatSessionState.get_full_name()
    event = f"{state_name}.answer_token_request"
    samples: list[float] = []
    for request_id in request_ids:
        started = time.perf_counter()
        await socket.send_event(event, {"request_id": request_id})
        while (reply := _token_reply(socket, state_name)) is None or (
            reply.get("request_id") != request_id
        ):
            if await socket.next_delta(timeout=10) is None:
                raise TimeoutError(f"no answer to token request {request_id}")
        if not reply.get("token"):
            raise RuntimeError(f"token request {request_id} refused: {reply.get('error')}")
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def alternating_round_trips(
    backend_url: str, tab_token: str, sandbox: Any, user_id: str, count: int
) -> tuple[list[float], list[float]]:
    """`count` refreshes through Reflex and `count` direct calls, in alternating rounds.

    One socket and one client serve every round (a reconnect between rounds could be
    taken for a duplicate tab and get an empty state), so only the order alternates.
    """
    from sample_app.sendbird_api import SendbirdClient

    through_reflex: list[float] = []
    direct: list[float] = []
    next_id = 20_000
    async with (
        tab_socket(backend_url, tab_token) as socket,
        SendbirdClient(sandbox.url, sandbox.api_token) as client,
    ):
        for size in round_sizes(count, ROUNDS):
            through_reflex += await refreshes_on(socket, range(next_id, next_id + size))
            next_id += size
            direct += await direct_calls(client, user_id, size)
    return through_reflex, direct


def _token_reply(socket: Any, state_name: str) -> dict | None:
    """The `token_reply` in the newest state update `socket` received, if it holds one.

    Read from the parsed delta, as the page's bridge reads it: nothing re-encoded per answer.
    """
    if not socket.deltas:
        return None
    changes = socket.deltas.pop().get("delta", {}).get(state_name, {})
    reply = next((v for k, v in changes.items() if k.startswith("token_reply")), None)
    return reply if isinstance(reply, dict) else None


async def http_round_trips(backend_url: str, sign_in_token: str, count: int) -> list[float]:
    """POST /api/sendbird/session-token with refresh: true (the embed page's refresh); time each."""
    import httpx

    from sample_app.http_api import SESSION_TOKEN_PATH

    samples: list[float] = []
    headers = {"Authorization": f"Bearer {sign_in_token}"}
    async with httpx.AsyncClient(base_url=backend_url, headers=headers, timeout=10) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.post(SESSION_TOKEN_PATH, json={"refresh": True})
            if response.status_code != 200:
                raise RuntimeError(f"HTTP token request refused: {response.status_code}")
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def register_over_socket(backend_url: str, username: str) -> str:
    """Register one account as a new tab would; "created", "throttled" or "refused"."""
    from sample_app.state.auth import AuthState
    from tests.browser.reflex_socket import ReflexSocket

    form = {
        "username": username,
        "display_name": "Flood",
        "password": PASSWORD,
        "confirm_password": PASSWORD,
    }
    async with ReflexSocket(backend_url) as socket:
        await socket.send_event(f"{AuthState.get_full_name()}.register", {"form_data": form})
        while True:
            delta = await socket.next_delta(timeout=60)
            if delta is None:
                return "refused"
            text = json.dumps(delta)
            if re.search(r'"sign_in_token_rx_state_": "[^"]+"', text):
                return "created"
            if "Too many new accounts" in text:
                return "throttled"
            if re.search(r'"form_error_rx_state_": "[^"]+"', text):
                return "refused"


async def refreshes_under_registration_flood(
    backend_url: str, tab_token: str, refreshes: int, registrations: int
) -> tuple[list[float], dict[str, int]]:
    """Time refreshes while `registrations` accounts are being created at once."""
    stem = f"flood{secrets.randbelow(10**6)}x"
    flood = asyncio.gather(
        *(register_over_socket(backend_url, f"{stem}{n}") for n in range(registrations))
    )
    await asyncio.sleep(0.2)  # the flood is hashing
    samples = await refresh_round_trips(backend_url, tab_token, refreshes)
    outcomes = await flood
    return samples, {outcome: outcomes.count(outcome) for outcome in sorted(set(outcomes))}


async def first_view_after_restart(
    base_url: str, api_token: str, user_id: str, nickname: str
) -> None:
    """One page view's token as a freshly started process gets it (nothing cached or synced)."""
    from sample_app.identity import SendbirdIdentity
    from sample_app.sendbird_api import SendbirdClient
    from sample_app.session_tokens import SessionTokenService

    async with SendbirdClient(base_url, api_token) as client:
        await SessionTokenService(client).token_for(SendbirdIdentity(user_id, nickname))


def round_sizes(count: int, rounds: int) -> list[int]:
    """`count` split into `rounds` nearly equal parts (the larger ones first)."""
    base, extra = divmod(count, rounds)
    return [base + (1 if index < extra else 0) for index in range(rounds) if base or index < extra]


async def direct_round_trips(base_url: str, api_token: str, user_id: str, count: int) -> list:
    """Issue tokens straight from a SendbirdClient (no Reflex in between)."""
    from sample_app.sendbird_api import SendbirdClient

    async with SendbirdClient(base_url, api_token) as client:
        return await direct_calls(client, user_id, count)


async def direct_calls(client: Any, user_id: str, count: int) -> list[float]:
    """Time `count` token issuances on an open SendbirdClient."""
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        await client.issue_session_token(user_id, datetime.now(UTC) + timedelta(minutes=30))
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    """Start the stack, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=300, help="refreshes to time (>= 200)")
    parser.add_argument(
        "--registrations", type=int, default=60, help="size of the registration flood"
    )
    parser.add_argument(
        "--capacity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run benchmarks/capacity.py afterwards (default: yes)",
    )
    parser.add_argument(
        "--capacity-args", default="", help='flags for benchmarks/capacity.py, e.g. "--tabs 10,50"'
    )
    args = parser.parse_args()

    prepare_reflex_environment()
    for name, value in OPEN_BUDGET.items():
        os.environ.setdefault(name, value)
    quiet_logs()
    from playwright.sync_api import expect, sync_playwright
    from reflex_base.config import get_config

    from sample_app.services import REGISTRATION_LIMIT
    from sample_app.state.auth import SIGN_IN_TOKEN_STORAGE_KEY
    from tests.browser.reflex_socket import run_outside_playwright
    from tests.stack import CHROMIUM, CHROMIUM_ARGS, running_stack

    # Every socket here comes from 127.0.0.1, so the per-client limit would stop the flood at
    # once; the overall limit stays the deployment's, and the flood meets it.
    limit = dataclasses.replace(REGISTRATION_LIMIT, per_client=10_000)
    overall_minutes = limit.overall_window.total_seconds() / 60
    limit_text = f"{limit.overall} per {overall_minutes:g} min overall"

    workdir = Path(tempfile.mkdtemp(prefix="token-bench-"))

    print("Starting the sandbox and the app (production build)...", flush=True)
    with (
        running_stack(workdir, app_id=APP_ID, bot_id=BOT_ID, registration_limit=limit) as stack,
        sync_playwright() as pw,
    ):
        sandbox, app = stack.sandbox, stack.app

        def stats() -> dict[str, int]:
            return platform_calls(sandbox.stats())

        def minted_so_far() -> int:
            # The sandbox's call counter, not its token list: that keeps a user's newest 500.
            return stats().get(ISSUE_ROUTE, 0)

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
        cached_view = diff(stats(), before)

        user_id = page.get_by_test_id("sendbird-user-id").inner_text().strip()
        before = stats()
        run_outside_playwright(
            first_view_after_restart(sandbox.url, sandbox.api_token, user_id, "Bench Mark")
        )
        restarted_view = diff(stats(), before)
        tab_token = page.evaluate("() => sessionStorage.getItem('token')")
        sign_in_token = page.evaluate(
            f"() => localStorage.getItem({json.dumps(SIGN_IN_TOKEN_STORAGE_KEY)})"
        )
        backend_url = get_config().api_url
        # Hand the signed-in tab over to the measuring socket (one connection per tab).
        page.goto("about:blank")
        page.wait_for_timeout(500)

        print("\nPlatform API calls per page view (counted by the sandbox)")
        views = (
            ("new account, first view", first_view),
            ("returning account, first view after a restart", restarted_view),
            ("view within the token's life", cached_view),
        )
        for label, calls in views:
            total = sum(calls.values())
            detail = ", ".join(f"{route} x{n}" for route, n in sorted(calls.items()))
            print(f"  {label:47s} {total} call(s)  {detail or '(none: cached token reused)'}")

        count = max(args.refreshes, 200)
        print(f"\nToken refresh round trip, {count} refreshes each")
        # Warm up both paths, then measure them in alternating rounds, so that whatever
        # else the machine does at the time weighs on both alike.
        run_outside_playwright(refresh_round_trips(backend_url, tab_token, 10))
        run_outside_playwright(direct_round_trips(sandbox.url, sandbox.api_token, user_id, 10))
        minted_before = minted_so_far()
        through_reflex, direct = run_outside_playwright(
            alternating_round_trips(backend_url, tab_token, sandbox, user_id, count)
        )
        minted = minted_so_far() - minted_before - len(direct)
        print(f"  through the Reflex backend  {percentiles(through_reflex)}")
        print(f"    (the sandbox minted {minted} tokens for these {count} refreshes)")
        print(f"  direct client -> sandbox    {percentiles(direct)}")
        ratio = statistics.median(through_reflex) / statistics.median(direct)
        print(f"    p50 through Reflex / direct: {ratio:.2f} ({ROUNDS} alternating rounds)")
        run_outside_playwright(http_round_trips(backend_url, sign_in_token, 10))
        minted_before = minted_so_far()
        over_http = run_outside_playwright(http_round_trips(backend_url, sign_in_token, count))
        minted = minted_so_far() - minted_before
        print(f"  HTTP API (refresh: true)    {percentiles(over_http)}")
        print(f"    (POST /api/sendbird/session-token; the sandbox minted {minted} tokens)")

        flood_size = args.registrations
        print(
            f"\nRefreshes during a registration flood ({flood_size} registrations at once, "
            "default argon2id cost, hashing on its own 2-thread pool)"
        )
        idle = run_outside_playwright(refresh_round_trips(backend_url, tab_token, 100))
        flooded, outcomes = run_outside_playwright(
            refreshes_under_registration_flood(backend_url, tab_token, 100, flood_size)
        )
        print(f"  idle          {percentiles(idle)}")
        print(f"  during flood  {percentiles(flooded)}")
        ratio = quantile(flooded, 99) / quantile(idle, 99)
        print(f"  p99 ratio (flood / idle) {ratio:.2f}")
        summary = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        print(f"  registrations: {summary} (limit: {limit_text})")
        browser.close()
    if args.capacity:
        print("\n", flush=True)
        command = [sys.executable, "-m", "benchmarks.capacity", *shlex.split(args.capacity_args)]
        return subprocess.run(command, check=False).returncode  # noqa: S603 - our own module
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
