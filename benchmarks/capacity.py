"""Capacity figures of the token flow: how much one topology of the backend carries.

Run alone with ``python -m benchmarks.capacity`` (flags: ``--help``); ``make bench`` runs it
after ``benchmarks/token_flow.py``. Figures, not pass/fail. Measured against running
backend(s) given by their event URL(s) and process ids, so the topology is a parameter:
:func:`measure` takes ``event_urls`` (one Reflex backend, several, or a proxy's ``/_event``),
``backend_pids`` (the processes whose CPU and memory are the backend's), the sandbox's
control client and the accounts database; :func:`print_report` prints what it returns.

The CLI measures, one after the other on the same machine (``--topology``, default ``both``:
``worker`` then ``demo-site``; ``all`` adds ``inprocess``):

* ``worker``: one production worker process on its own port, twice: the lean configuration
  (``python -m sample_app.server`` with the app's defaults) and the plain one it replaces
  (:data:`PLAIN_SETTINGS`: ``reflex run --env prod --backend-only`` on Granian, Sendbird calls
  unbounded, no sign-in cache); the sandbox in its own process, SQLite accounts; the lean
  worker keeps the tabs' states in memory, the plain one in Reflex's disk state manager (as
  ``reflex run`` does); the tabs talk to the worker directly;
* ``inprocess``: one worker, the production build through ``tests/stack.py``'s
  ``running_app`` (``AppHarnessProd``, the backend in this process), pointed at the sandbox
  (its own process), SQLite accounts, Reflex's disk state manager;
* ``demo-site``: ``deploy.demo_site.DemoSite`` (nginx in front of N ``python -m
  sample_app.server`` workers, Redis, PostgreSQL accounts, the standalone sandbox),
  once per ``--workers`` count (default 1,2), each site stopped before the next starts, on
  the same ports and data dir so the frontend export runs once. Tabs go through nginx's
  ``/_event``; the backend PIDs are the processes serving each worker's port
  (:func:`serving_pids`); nginx, Redis, PostgreSQL (with its per-connection processes) and
  this script are metered as well and printed per process. Its own steps (``--demo-tabs``,
  default 10,50,200,500,1000, and ``--demo-step-seconds``, default 5 s) keep ``make bench``
  within a few minutes.

Then a side-by-side table: answers/s and p99 per N for each configuration, memory per idle
tab, page views per second, the refresh / direct ratio, and the "k workers / 1 worker"
ratio of answers/s at each N.

What is measured:

1. **Worker memory per idle tab**: RSS of the backend process(es) with no tab, with K/2 and
   with K tabs that opened the chat page (socket hydrated, signed in, ``open_chat`` issued
   the first token) and went idle. The figure is the growth from K/2 to K per added tab,
   in KiB: what one more tab costs. The growth from 0 is printed beside it; it also holds
   what the first tabs warm up once per process (pooled Sendbird connections, caches, the
   allocator's high-water mark of the opening bursts).
2. **Token answers under N concurrent tabs** (N = 10, 50, 200, 500, 1000 while it holds):
   each tab sends ``answer_token_request`` back to back over its own socket. All tabs ask
   at once, so the first round is a burst whose replies all come late (the backend shares
   itself among them); the measured window (``--step-seconds``) starts once every tab has
   had its first reply, so answers/s, p50/p95/p99 latency and worker CPU per answer are the
   steady state, and how long the burst took is printed beside them. Timeouts (per
   request), errors, refusals by the issuance budget and Sendbird (sandbox) calls per
   answer count over the whole step, burst included. The steps
   stop going up once timeouts exceed ``--max-timeout-ratio`` of the requests or a step
   (opening its new tabs included) takes longer than ``--max-step-seconds``.
3. **Page-view capacity**: fresh tabs at a fixed concurrency, each one a page view (connect,
   hydrate with the browser's sign-in token, sign-in check, ``open_chat`` until its token
   arrives), then closed; page views per second and their latency.
4. **Refresh round trip**: one tab on an account of its own asks for tokens one at a time
   (``answer_token_request`` until its ``token_reply``), in ``REFRESH_ROUNDS`` rounds that
   alternate with as many direct ``SendbirdClient.issue_session_token`` calls from this
   process for the same user, so both see the same machine state; p50 through the worker
   over p50 direct is the price of going through Reflex (``--refreshes``; warmed up first).

How CPU is attributed: the clients run in separate processes (``benchmarks/load_client.py``,
asyncio and ``websockets``, ``--client-processes`` of them) and so does the sandbox in the
in-process topology (``benchmarks/sandbox_process.py``; ``tests/stack.py`` would run it in
this process, sharing the backend's GIL and its CPU time). The backend's CPU is then read
with psutil, by PID, before and after each measuring window (every 0.2 s during a
token step, whose window is only known afterwards): in-process that is this
process, which holds only the backend, the idle static-frontend server and this script's
orchestration (blocked on pipes while a window runs); on the demo site, the worker
processes. The sandbox's and the clients' CPU (and on the demo site each worker's, nginx's,
Redis's, PostgreSQL's and the whole machine's) are read the same way and printed next to
it, as a share of one core, so a saturated machine (2 cores here) or a client bottleneck
shows in the figures.

Accounts: by default one account per tab (the largest N), signed up directly with
``AccountService`` against the accounts database (cheapest argon2 cost: the backend never
hashes a password in these tests, it only resolves sign-in tokens), each signed in once.
Tab i uses account i mod ``--accounts``: with fewer accounts than tabs, tabs share an
account's sign-in the way tabs of one browser share localStorage, and concurrent refreshes of
one account join one issuance (single flight), so the Sendbird calls per answer drop below 1
and the figures are no longer those of distinct users. Page views cycle through the same
accounts, whose tokens are cached by then: a page view within the token's life.

The in-process backend keeps tab state the way a single worker without Redis does:
Reflex's disk state manager (states pickled to disk after each event batch), in a states
directory of the run's own (``REFLEX_STATES_WORKDIR``), not the project's ``.states``.

The issuance budget must be open on the backend(s), or nearly every answer is a refusal:
the CLI sets :data:`CAPACITY_BUDGET` (no reuse window, the per-user maximum of 1000 tokens a
minute, 10000 Platform POSTs a second) before the in-process app starts, and in
``os.environ`` while a demo site starts (``DemoSite`` passes them through to its workers),
restoring the environment afterwards. Refusals are counted apart from errors. The sandbox's
rate limiter is switched off at the start of :func:`measure`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psutil

from benchmarks.load_client import Events

if TYPE_CHECKING:
    from sample_app.sandbox.control_client import SandboxControlClient
    from tests.stack import SandboxHandle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Seconds between two readings of the CPU meters during a token step.
METER_PERIOD = 0.2
APP_ID, BOT_ID = "capacity-app", "capacity-bot"
PASSWORD = "correct-horse-battery-9"  # noqa: S105 - throwaway benchmark accounts
#: The issuance budget opened for the run (read by the backend from its environment).
CAPACITY_BUDGET = {
    "SENDBIRD_TOKEN_REUSE_SECONDS": "0",
    "SENDBIRD_TOKENS_PER_USER_PER_MINUTE": "1000",
    "SENDBIRD_PLATFORM_POSTS_PER_SECOND": "10000",
}
DEFAULT_TAB_COUNTS = (10, 50, 200, 500, 1000)
#: The demo site's defaults: one site per worker count, shorter steps (each tab holds two
#: connections at nginx, which allows 8192).
DEMO_WORKERS = (1, 2)
DEMO_TAB_COUNTS = (10, 50, 200, 500, 1000)
DEMO_STEP_SECONDS = 5.0


@dataclass(frozen=True)
class CapacityOptions:
    """What :func:`measure` does, and how long.

    Attributes:
        tab_counts: The N of the token-answer steps, ascending.
        step_seconds: How long each step sends token requests.
        request_timeout: Seconds a token request (or a page view) may take before it
            counts as a timeout.
        max_timeout_ratio: A step with more timeouts than this share of its requests is
            the last one.
        max_step_seconds: A step that takes longer than this (opening its new tabs, sending
            and draining) is the last one.
        idle_tabs: K of the memory figure (0 skips it); these tabs are reused by the steps.
        page_view_concurrency: Page views in flight at once.
        page_view_seconds: How long page views are started.
        accounts: Accounts signed up (tab i uses account i mod accounts); None: one per tab
            (the largest N, or K if larger), so no two tabs share an account.
        client_processes: Client processes the tabs are spread over.
        open_concurrency: Tabs opened at once per client process while setting up.
        settle_seconds: Pause before reading RSS and between phases.
        warmup_limit_seconds: The longest a step waits for every tab's first reply (the
            opening burst) before its measured window starts anyway.
        refreshes: Token refreshes of the one-tab refresh figure, and as many direct calls
            (0 skips it).
    """

    tab_counts: tuple[int, ...] = DEFAULT_TAB_COUNTS
    step_seconds: float = 10.0
    request_timeout: float = 15.0
    max_timeout_ratio: float = 0.2
    max_step_seconds: float = 60.0
    idle_tabs: int = 500
    page_view_concurrency: int = 20
    page_view_seconds: float = 10.0
    accounts: int | None = None
    client_processes: int = 2
    open_concurrency: int = 25
    settle_seconds: float = 2.0
    warmup_limit_seconds: float = 30.0
    refreshes: int = 300


@dataclass
class Latency:
    """p50/p95/p99 of a run, in milliseconds (NaN without samples)."""

    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        """The percentiles of `samples_ms`."""
        if len(samples_ms) < 2:
            only = samples_ms[0] if samples_ms else math.nan
            return cls(only, only, only)
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(cuts[49], cuts[94], cuts[98])


@dataclass
class CpuShares:
    """CPU used during a window, in % of one core (100 = one core busy all the time).

    Attributes:
        backend: All backend processes together.
        sandbox: The sandbox (NaN when not measured).
        clients: All client processes together.
        busiest_client: The busiest client process.
        per_backend: Each backend process, in the order of ``backend_pids``.
        others: Each named group of ``other_pids`` (nginx, Redis, PostgreSQL, ...).
        machine: The whole machine (user + system time of every core; 100 per core).
    """

    backend: float = 0.0
    sandbox: float = math.nan
    clients: float = 0.0
    busiest_client: float = 0.0
    per_backend: list[float] = field(default_factory=list)
    others: dict[str, float] = field(default_factory=dict)
    machine: float = math.nan


@dataclass
class TokenStep:
    """One step of the token-answer test: N tabs requesting tokens back to back."""

    tabs: int
    seconds: float
    window_seconds: float
    burst_seconds: float
    answers: int
    answers_per_second: float
    latency: Latency
    timeouts: int
    errors: int
    refusals: int
    backend_cpu_ms_per_answer: float
    cpu: CpuShares
    sendbird_calls: int
    answers_total: int
    step_seconds: float
    tabs_opened: int = 0
    open_failures: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Requests with an outcome (answered, refused, failed, timed out)."""
        return self.answers_total + self.timeouts + self.errors + self.refusals


@dataclass
class MemoryFigure:
    """Backend RSS with no tab, with K/2 idle tabs and with K.

    The figure per tab is the growth from K/2 to K tabs: what one more tab costs. The
    growth from none to K also holds what the first tabs warm up once per process (the
    Sendbird client's pooled connections, caches, the allocator's high-water mark of the
    opening bursts), so it is printed beside it, not used as the per-tab figure.
    """

    idle_tabs: int
    open_failures: int
    rss_before_mib: float
    rss_half_mib: float
    half_tabs_opened: int
    rss_after_mib: float
    open_seconds: float
    open_latency: Latency

    @property
    def tabs_opened(self) -> int:
        """Tabs open when the last RSS was read."""
        return self.idle_tabs - self.open_failures

    @property
    def kib_per_tab(self) -> float:
        """RSS growth per idle tab from K/2 to K tabs, in KiB."""
        added = self.tabs_opened - self.half_tabs_opened
        if added <= 0:
            return math.nan
        return (self.rss_after_mib - self.rss_half_mib) * 1024 / added

    @property
    def kib_per_tab_from_none(self) -> float:
        """RSS growth per idle tab from no tab to K tabs, in KiB (first tabs' warm-up included)."""
        if self.tabs_opened <= 0:
            return math.nan
        return (self.rss_after_mib - self.rss_before_mib) * 1024 / self.tabs_opened


@dataclass
class RefreshFigure:
    """One tab's token refreshes one at a time, beside direct calls to the same sandbox.

    The through-backend round trip is the widget's: `answer_token_request` on the tab's
    socket until its `token_reply`. The direct one is this process's `SendbirdClient`
    issuing a token for the same user. They run in alternating rounds, so whatever else
    the machine does weighs on both alike; the backend and the sandbox each run in a
    process of their own, as in a deployment.
    """

    through_backend: Latency
    direct: Latency
    rounds: int
    count: int

    @property
    def ratio(self) -> float:
        """p50 through the backend / p50 direct."""
        return self.through_backend.p50 / self.direct.p50 if self.direct.p50 else math.nan


@dataclass
class PageViews:
    """The page-view test."""

    concurrency: int
    seconds: float
    views: int
    views_per_second: float
    latency: Latency
    timeouts: int
    errors: int
    backend_cpu_ms_per_view: float
    cpu: CpuShares
    sendbird_calls: int
    views_total: int
    error_samples: list[str] = field(default_factory=list)


@dataclass
class CapacityReport:
    """Everything :func:`measure` found, for :func:`print_report`."""

    event_urls: list[str]
    backend_pids: list[int]
    accounts: int
    client_processes: int
    memory: MemoryFigure | None = None
    refresh: RefreshFigure | None = None
    steps: list[TokenStep] = field(default_factory=list)
    stop_reason: str = ""
    page_views: PageViews | None = None
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------ processes


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes (not their children), in seconds.

    A process that has gone away counts as 0, so a crashed worker shows as a drop.
    """
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size of the processes, summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def serving_pids(port: int) -> list[int]:
    """The processes listening on a TCP port, minus supervisors whose children listen too.

    With ``uvicorn --workers 2`` (or gunicorn) the supervisor and its workers all hold the
    listening socket, but only the workers serve: a listed process whose child is listed
    as well is dropped. For this process's own in-thread backend it returns this PID.
    """
    listening = {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.pid is not None
        and conn.laddr
        and conn.laddr.port == port
        and conn.status == "LISTEN"
    }
    supervisors = set()
    for pid in listening:
        with contextlib.suppress(psutil.Error):
            if any(child.pid in listening for child in psutil.Process(pid).children()):
                supervisors.add(pid)
    return sorted(listening - supervisors)


class ClientPool:
    """Client processes (``benchmarks.load_client``) driven by one JSON line per command."""

    def __init__(self, processes: int, events: dict[str, str]) -> None:
        self._procs = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.load_client"],
                cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(max(1, processes))
        ]
        self.call([{"op": "setup", "events": events}] * len(self._procs))

    @property
    def size(self) -> int:
        """How many client processes there are."""
        return len(self._procs)

    @property
    def pids(self) -> list[int]:
        """Their process ids."""
        return [proc.pid for proc in self._procs]

    def send(self, commands: Sequence[dict[str, Any]]) -> None:
        """Send command i to process i (all first, so they run at the same time)."""
        for proc, command in zip(self._procs, commands, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()

    def receive(self) -> list[dict[str, Any]]:
        """Each process's answer to its last command.

        Raises:
            RuntimeError: A process died or reported a failure.
        """
        answers = []
        for proc in self._procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"client process {proc.pid} exited ({proc.poll()})")
            answer = json.loads(line)
            if "failure" in answer:
                raise RuntimeError(f"client process {proc.pid}: {answer['failure']}")
            answers.append(answer)
        return answers

    def call(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send, then receive."""
        self.send(commands)
        return self.receive()

    def close(self) -> None:
        """Ask every process to exit; kill the ones that do not."""
        for proc in self._procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


#: Processes to meter: fixed PIDs, or a callable giving the current ones at each reading
#: (for a server that forks a process per connection, such as PostgreSQL).
PidSource = Sequence[int] | Callable[[], Sequence[int]]


def with_children(pid: int) -> Callable[[], list[int]]:
    """A :data:`PidSource`: `pid` and its descendants at the time of each reading."""

    def pids() -> list[int]:
        try:
            parent = psutil.Process(pid)
            return [pid, *(child.pid for child in parent.children(recursive=True))]
        except psutil.Error:
            return []

    return pids


def _cpu_by_pid(source: PidSource) -> dict[int, float]:
    pids = source() if callable(source) else source
    return {pid: cpu_seconds([pid]) for pid in pids}


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


@dataclass
class _Reading:
    backend: list[float]
    sandbox: float
    clients: list[float]
    others: dict[str, dict[int, float]]
    machine: float
    wall: float


@dataclass
class _Meters:
    """CPU clocks of the backend, the sandbox, the clients and other processes, read together."""

    backend_pids: Sequence[int]
    sandbox_pids: Sequence[int]
    client_pids: Sequence[int]
    other_pids: Mapping[str, PidSource] = field(default_factory=dict)

    def read(self) -> _Reading:
        return _Reading(
            backend=[cpu_seconds([pid]) for pid in self.backend_pids],
            sandbox=cpu_seconds(self.sandbox_pids),
            clients=[cpu_seconds([pid]) for pid in self.client_pids],
            others={name: _cpu_by_pid(source) for name, source in self.other_pids.items()},
            machine=_machine_busy_seconds(),
            wall=time.perf_counter(),
        )

    def shares(self, before: _Reading, after: _Reading) -> tuple[CpuShares, float]:
        """CPU shares between two readings, and the backend's CPU seconds.

        In a group of :attr:`other_pids`, a process that appeared between the readings
        counts with all its CPU time (it started in the window), one that went away with
        none.
        """
        wall = max(after.wall - before.wall, 1e-9)

        def share(seconds: float) -> float:
            return seconds / wall * 100

        clients = [share(b - a) for a, b in zip(before.clients, after.clients, strict=True)]
        per_backend = [share(b - a) for a, b in zip(before.backend, after.backend, strict=True)]
        backend_seconds = sum(after.backend) - sum(before.backend)
        others = {
            name: share(
                sum(
                    max(0.0, seconds - before.others.get(name, {}).get(pid, 0.0))
                    for pid, seconds in after.others[name].items()
                )
            )
            for name in after.others
        }
        shares = CpuShares(
            backend=share(backend_seconds),
            sandbox=share(after.sandbox - before.sandbox) if self.sandbox_pids else math.nan,
            clients=sum(clients),
            busiest_client=max(clients, default=0.0),
            per_backend=per_backend,
            others=others,
            machine=share(after.machine - before.machine),
        )
        return shares, backend_seconds


# ------------------------------------------------------------------------ accounts


def sign_up_accounts(accounts_db_url: str, count: int) -> list[str]:
    """Create `count` accounts and sign each in once; their sign-in tokens.

    Uses `AccountService` against the accounts database directly, with the cheapest argon2
    cost and the registration limit lifted. On SQLite this engine's connections skip the
    fsync of each commit (``synchronous=OFF``), which only concerns these benchmark rows.
    """
    import argon2
    import sqlalchemy as sa

    from sample_app.accounts import (
        AccountService,
        Argon2Hasher,
        RateLimit,
        RegistrationLimit,
        create_engine_for,
    )

    engine = create_engine_for(accounts_db_url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    service = AccountService(
        engine,
        hasher=Argon2Hasher(argon2.profiles.CHEAPEST),
        rate_limit=RateLimit(),
        registration_limit=RegistrationLimit(per_client=10**6, overall=10**6),
    )
    stem = f"cap{secrets.token_hex(3)}n"
    tokens = []
    try:
        for number in range(count):
            username = f"{stem}{number}"
            service.register(username, PASSWORD, f"Capacity {number}")
            # One client key per account: the sign-in limiter then never sees a burst.
            tokens.append(service.sign_in(username, PASSWORD, f"capacity-{username}").sign_in_token)
    finally:
        engine.dispose()
    return tokens


# ------------------------------------------------------------------------ measuring


def _platform_calls(control: SandboxControlClient) -> int:
    return sum(control.stats().get("platform_api", {}).values())


def _split(count: int, parts: int) -> list[int]:
    """`count` spread over `parts` as evenly as possible."""
    return [count // parts + (1 if part < count % parts else 0) for part in range(parts)]


def _merge(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"latencies_ms": [], "error_samples": []}
    for answer in answers:
        for key, value in answer.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, int | float):
                merged[key] = merged.get(key, 0) + value
    return merged


class _Run:
    """One measurement: the client pool, the tabs opened so far, the meters."""

    def __init__(
        self,
        event_urls: Sequence[str],
        sign_in_tokens: Sequence[str],
        pool: ClientPool,
        meters: _Meters,
        options: CapacityOptions,
    ) -> None:
        self.urls = list(event_urls)
        self.sign_in_tokens = list(sign_in_tokens)
        self.pool = pool
        self.meters = meters
        self.options = options
        self.tabs = 0  # tabs asked for so far (tab i lives in client process i mod size)

    def open_tabs(self, up_to: int) -> dict[str, Any]:
        """Open tabs until `up_to` have been asked for; merged answers of the processes."""
        commands: list[dict[str, Any]] = [
            {
                "op": "open",
                "tabs": [],
                "concurrency": self.options.open_concurrency,
                "timeout": self.options.request_timeout * 2,
            }
            for _ in range(self.pool.size)
        ]
        for tab in range(self.tabs, up_to):
            spec = [
                self.urls[tab % len(self.urls)],
                self.sign_in_tokens[tab % len(self.sign_in_tokens)],
            ]
            commands[tab % self.pool.size]["tabs"].append(spec)
        self.tabs = max(self.tabs, up_to)
        return _merge(self.pool.call(commands))

    def windowed(
        self, commands: Sequence[dict[str, Any]], start_at: float, seconds: float
    ) -> tuple[list[dict[str, Any]], CpuShares, float]:
        """Send `commands`, read the meters over [start_at, start_at + seconds], collect."""
        self.pool.send(commands)
        time.sleep(max(0.0, start_at - time.time()))
        before = self.meters.read()
        time.sleep(seconds)
        after = self.meters.read()
        answers = self.pool.receive()
        shares, backend_seconds = self.meters.shares(before, after)
        return answers, shares, backend_seconds

    def steady(
        self, commands: Sequence[dict[str, Any]], start_at: float
    ) -> tuple[dict[str, Any], CpuShares, float, float, float]:
        """Send load `commands`; the merged answers and the meters over their steady window.

        The meters are read every :data:`METER_PERIOD` s while the clients run. The window
        is the intersection of the processes' windows (each starts once all its tabs had a
        reply), narrowed to the readings inside it; only replies in it are counted.

        Returns:
            The merged answers (``in_window`` and ``latencies_ms`` of the window only), the
            CPU shares and the backend's CPU seconds over it, its length in seconds, and
            how long the opening burst took (from `start_at` to the window).
        """
        import threading

        samples: list[tuple[float, _Reading]] = []
        finished = threading.Event()

        def sample() -> None:
            time.sleep(max(0.0, start_at - time.time()))
            while True:
                samples.append((time.time(), self.meters.read()))
                if finished.wait(METER_PERIOD):
                    return

        sampler = threading.Thread(target=sample, name="capacity-meters", daemon=True)
        self.pool.send(commands)
        sampler.start()
        try:
            answers = self.pool.receive()
        finally:
            finished.set()
            sampler.join()
        windows = [window for answer in answers for window in answer.get("windows", [])]
        start = max((window[0] for window in windows), default=start_at)
        end = min((window[1] for window in windows), default=start_at)
        inside = [(moment, reading) for moment, reading in samples if start <= moment <= end]
        merged = _merge(answers)
        if len(inside) < 2:  # no common steady window: nothing to count
            merged["in_window"], merged["latencies_ms"] = 0, []
            first, last = samples[0], samples[-1]
            shares, backend_seconds = self.meters.shares(first[1], last[1])
            return merged, shares, backend_seconds, 0.0, start - start_at
        (t0, before), (t1, after) = inside[0], inside[-1]
        kept = [
            (moment, latency)
            for moment, latency in zip(merged["done_at"], merged["latencies_ms"], strict=True)
            if t0 <= moment <= t1
        ]
        merged["in_window"] = len(kept)
        merged["latencies_ms"] = [latency for _moment, latency in kept]
        shares, backend_seconds = self.meters.shares(before, after)
        return merged, shares, backend_seconds, t1 - t0, t0 - start_at


REFRESH_ROUNDS = 6


async def _refresh_round_trips(
    event_url: str,
    sign_in_token: str,
    control: SandboxControlClient,
    sendbird_api: tuple[str, str],
    count: int,
    time_limit: float,
) -> tuple[list[float], list[float]]:
    """`count` refreshes on one tab and `count` direct issuances, in alternating rounds."""
    from datetime import UTC, datetime, timedelta

    from benchmarks.load_client import Events, Tab
    from sample_app.sendbird_api import SendbirdClient

    events = Events.of_app()
    tab = Tab(url=event_url, sign_in_token=sign_in_token)
    await tab.open(events, time_limit)
    through_backend: list[float] = []
    direct: list[float] = []
    try:
        # open_chat created the tab's user: the newest token at the sandbox is its own.
        user_id = max(control.tokens(), key=lambda row: row["issued_at"])["user_id"]
        base_url, api_token = sendbird_api
        async with SendbirdClient(base_url, api_token) as client:
            for _ in range(REFRESH_ROUNDS):
                for _ in range(max(1, count // REFRESH_ROUNDS)):
                    started = time.perf_counter()
                    token, error = await tab.request_token(events, time_limit)
                    if not token:
                        raise RuntimeError(f"a refresh was refused: {error}")
                    through_backend.append((time.perf_counter() - started) * 1000)
                for _ in range(max(1, count // REFRESH_ROUNDS)):
                    started = time.perf_counter()
                    expires_at = datetime.now(UTC) + timedelta(minutes=30)
                    await client.issue_session_token(user_id, expires_at)
                    direct.append((time.perf_counter() - started) * 1000)
    finally:
        await tab.close()
    return through_backend, direct


def _refresh(
    event_url: str,
    accounts_db_url: str,
    control: SandboxControlClient,
    sendbird_api: tuple[str, str],
    options: CapacityOptions,
) -> RefreshFigure:
    # An account of its own: the token steps' accounts keep their per-minute budget.
    (sign_in_token,) = sign_up_accounts(accounts_db_url, 1)
    warm_up = max(10, options.refreshes // 10)
    asyncio.run(
        _refresh_round_trips(
            event_url, sign_in_token, control, sendbird_api, warm_up, options.request_timeout
        )
    )
    through_backend, direct = asyncio.run(
        _refresh_round_trips(
            event_url,
            sign_in_token,
            control,
            sendbird_api,
            options.refreshes,
            options.request_timeout,
        )
    )
    return RefreshFigure(
        Latency.of(through_backend), Latency.of(direct), REFRESH_ROUNDS, len(direct)
    )


def _memory(run: _Run, options: CapacityOptions) -> MemoryFigure:
    time.sleep(options.settle_seconds)
    before = rss_bytes(run.meters.backend_pids)
    started = time.perf_counter()
    first = run.open_tabs(options.idle_tabs // 2)
    open_seconds = time.perf_counter() - started
    time.sleep(options.settle_seconds)
    half = rss_bytes(run.meters.backend_pids)
    started = time.perf_counter()
    second = run.open_tabs(options.idle_tabs)
    open_seconds += time.perf_counter() - started
    time.sleep(options.settle_seconds)
    after = rss_bytes(run.meters.backend_pids)
    first_failures = first.get("failed", 0)
    return MemoryFigure(
        idle_tabs=options.idle_tabs,
        open_failures=first_failures + second.get("failed", 0),
        rss_before_mib=before / 2**20,
        rss_half_mib=half / 2**20,
        half_tabs_opened=options.idle_tabs // 2 - first_failures,
        rss_after_mib=after / 2**20,
        open_seconds=open_seconds,
        open_latency=Latency.of([*first["latencies_ms"], *second["latencies_ms"]]),
    )


def _token_step(run: _Run, control: SandboxControlClient, tabs: int) -> TokenStep:
    options = run.options
    step_started = time.perf_counter()
    opened: dict[str, Any] = {}
    asked = max(0, tabs - run.tabs)
    if asked:
        opened = run.open_tabs(tabs)
    calls_before = _platform_calls(control)
    start_at = time.time() + 0.5
    per_process = [len(range(p, tabs, run.pool.size)) for p in range(run.pool.size)]
    commands = [
        {
            "op": "load",
            "tabs": count,
            "start_at": start_at,
            "duration": options.step_seconds,
            "timeout": options.request_timeout,
            "warmup_limit": options.warmup_limit_seconds,
        }
        for count in per_process
    ]
    merged, shares, backend_seconds, window_seconds, burst_seconds = run.steady(commands, start_at)
    calls = _platform_calls(control) - calls_before
    in_window = merged["in_window"]
    return TokenStep(
        tabs=merged["tabs"],
        seconds=options.step_seconds,
        window_seconds=window_seconds,
        burst_seconds=burst_seconds,
        answers=in_window,
        answers_per_second=in_window / window_seconds if window_seconds else math.nan,
        latency=Latency.of(merged["latencies_ms"]),
        timeouts=merged["timeouts"],
        errors=merged["errors"],
        refusals=merged["refusals"],
        backend_cpu_ms_per_answer=backend_seconds * 1000 / in_window if in_window else math.nan,
        cpu=shares,
        sendbird_calls=calls,
        answers_total=merged["ok"],
        step_seconds=time.perf_counter() - step_started,
        tabs_opened=asked,
        open_failures=opened.get("failed", 0),
        error_samples=(opened.get("error_samples", []) + merged["error_samples"])[:5],
    )


def _page_views(run: _Run, control: SandboxControlClient) -> PageViews:
    options = run.options
    size = run.pool.size
    concurrency = _split(options.page_view_concurrency, size)
    calls_before = _platform_calls(control)
    start_at = time.time() + 0.5
    commands = []
    for part in range(size):
        # Each process cycles through its own share of the accounts, in turn over the URLs.
        specs = [
            [run.urls[n % len(run.urls)], run.sign_in_tokens[n]]
            for n in range(part, len(run.sign_in_tokens), size)
        ] or [[run.urls[0], run.sign_in_tokens[0]]]
        commands.append(
            {
                "op": "pageviews",
                "tabs": specs,
                "concurrency": concurrency[part],
                "start_at": start_at,
                "duration": options.page_view_seconds,
                "timeout": options.request_timeout,
            }
        )
    answers, shares, backend_seconds = run.windowed(commands, start_at, options.page_view_seconds)
    merged = _merge(answers)
    in_window = merged["in_window"]
    return PageViews(
        concurrency=options.page_view_concurrency,
        seconds=options.page_view_seconds,
        views=in_window,
        views_per_second=in_window / options.page_view_seconds,
        latency=Latency.of(merged["latencies_ms"]),
        timeouts=merged["timeouts"],
        errors=merged["errors"],
        backend_cpu_ms_per_view=backend_seconds * 1000 / in_window if in_window else math.nan,
        cpu=shares,
        sendbird_calls=_platform_calls(control) - calls_before,
        views_total=merged["ok"],
        error_samples=merged["error_samples"][:5],
    )


def measure(
    event_urls: Sequence[str],
    backend_pids: Sequence[int],
    sandbox_control: SandboxControlClient,
    accounts_db_url: str,
    *,
    sandbox_pids: Sequence[int] = (),
    other_pids: Mapping[str, PidSource] | None = None,
    sendbird_api: tuple[str, str] | None = None,
    options: CapacityOptions | None = None,
    progress: bool = True,
) -> CapacityReport:
    """Measure memory per idle tab, token answers under N tabs and page views per second.

    The backend(s) must already run with the issuance budget opened (:data:`CAPACITY_BUDGET`
    in their environment) and share `accounts_db_url` and the sandbox behind
    `sandbox_control`.

    Args:
        event_urls: The backends' Socket.IO endpoints (``http://host:port/_event``, or a
            proxy's; ``ws://`` works too, and the ``/_event`` suffix may be left off). Tab i
            connects to URL i mod len(event_urls).
        backend_pids: The processes serving those URLs (see :func:`serving_pids`); their CPU
            time and RSS are the backend's. None of the clients runs in them.
        sandbox_control: The sandbox's control client (call counts, rate limits).
        accounts_db_url: The backend's accounts database (SQLAlchemy URL); accounts are
            signed up there directly.
        sandbox_pids: The sandbox's process(es), for its CPU share; empty when it is not on
            this machine or not measurable (then "n/a").
        other_pids: More processes whose CPU share is printed next to the backend's, by
            name (e.g. ``{"nginx": [...], "PostgreSQL": with_children(postmaster)}``).
        sendbird_api: The sandbox's Platform API base URL and API token, for the refresh
            figure's direct calls; None skips that figure.
        options: What to run (defaults: :class:`CapacityOptions`).
        progress: Print a line per phase while running.

    Returns:
        The figures, for :func:`print_report`.
    """
    options = options or CapacityOptions()
    accounts = options.accounts or max((*options.tab_counts, options.idle_tabs, 1))
    say = print if progress else (lambda *_args, **_kwargs: None)
    report = CapacityReport(
        event_urls=list(event_urls),
        backend_pids=list(backend_pids),
        accounts=accounts,
        client_processes=options.client_processes,
    )
    sandbox_control.set_rate_limits({})
    say(f"  signing up {accounts} accounts...", flush=True)
    sign_in_tokens = sign_up_accounts(accounts_db_url, accounts)
    if sendbird_api is not None and options.refreshes > 0:
        say(f"  refresh round trip: {options.refreshes} on one tab, as many direct...", flush=True)
        report.refresh = _refresh(
            event_urls[0], accounts_db_url, sandbox_control, sendbird_api, options
        )
    pool = ClientPool(options.client_processes, dataclasses.asdict(Events.of_app()))
    try:
        meters = _Meters(backend_pids, sandbox_pids, pool.pids, dict(other_pids or {}))
        run = _Run(event_urls, sign_in_tokens, pool, meters, options)
        if options.idle_tabs:
            say(f"  memory: opening {options.idle_tabs} idle tabs...", flush=True)
            report.memory = _memory(run, options)
        for tabs in options.tab_counts:
            say(f"  token answers: {tabs} tabs...", flush=True)
            step = _token_step(run, sandbox_control, tabs)
            report.steps.append(step)
            if step.requests and step.timeouts / step.requests > options.max_timeout_ratio:
                report.stop_reason = (
                    f"stopped after {tabs} tabs: {step.timeouts} of {step.requests} requests "
                    f"timed out (> {options.max_timeout_ratio:.0%})"
                )
            elif step.step_seconds > options.max_step_seconds:
                report.stop_reason = (
                    f"stopped after {tabs} tabs: the step took {step.step_seconds:.0f} s "
                    f"(> {options.max_step_seconds:.0f} s)"
                )
            elif (
                step.tabs_opened
                and step.open_failures > options.max_timeout_ratio * step.tabs_opened
            ):
                report.stop_reason = (
                    f"stopped after {tabs} tabs: {step.open_failures} of {step.tabs_opened} "
                    "new tabs failed to open"
                )
            if report.stop_reason:
                break
        pool.call([{"op": "close"}] * pool.size)
        time.sleep(options.settle_seconds)
        if options.page_view_seconds > 0:
            say(f"  page views: concurrency {options.page_view_concurrency}...", flush=True)
            report.page_views = _page_views(run, sandbox_control)
        busiest = max(
            [step.cpu.busiest_client for step in report.steps]
            + ([report.page_views.cpu.busiest_client] if report.page_views else []),
            default=0.0,
        )
        if busiest > 80:
            report.notes.append(
                f"a client process used {busiest:.0f} % of a core in some window: the clients "
                "may have limited that figure (raise --client-processes)"
            )
    finally:
        pool.close()
    return report


# ------------------------------------------------------------------------ printing


def _ms(value: float) -> str:
    return "   n/a" if math.isnan(value) else f"{value:6.0f}" if value >= 100 else f"{value:6.1f}"


def _pct(value: float) -> str:
    return " n/a" if math.isnan(value) else f"{value:4.0f}"


def _print_cpu_breakdown(report: CapacityReport) -> None:
    """CPU per backend process, per other process group, and of the whole machine."""
    windows = [(f"{step.tabs:7d}", step.cpu) for step in report.steps]
    if report.page_views is not None:
        windows.append(("  views", report.page_views.cpu))
    if not windows:
        return
    backends = max(len(cpu.per_backend) for _, cpu in windows)
    groups = list(dict.fromkeys(name for _, cpu in windows for name in cpu.others))
    print(
        "\nCPU by process in each window (% of one core; w1.. = the backend PIDs in order; "
        f"machine = all {psutil.cpu_count() or '?'} cores, 100 per core)"
    )
    names = [f"w{number + 1}" for number in range(backends)]
    names += [*groups, "sandbox", "clients", "machine"]
    widths = [max(5, len(name)) for name in names]
    print(
        "        N  "
        + "  ".join(f"{name:>{width}s}" for name, width in zip(names, widths, strict=True))
    )
    for label, cpu in windows:
        per_backend = cpu.per_backend + [math.nan] * (backends - len(cpu.per_backend))
        values = [*per_backend, *(cpu.others.get(name, math.nan) for name in groups)]
        values += [cpu.sandbox, cpu.clients, cpu.machine]
        cells = [
            f"{_pct(value).strip():>{width}s}" for value, width in zip(values, widths, strict=True)
        ]
        print(f"  {label}  " + "  ".join(cells))


def print_report(label: str, report: CapacityReport) -> None:
    """Print the figures of one topology as tables."""
    print(f"\nCapacity: {label}")
    print(f"  event URL(s): {', '.join(report.event_urls)}; backend PID(s): {report.backend_pids}")
    print(
        f"  {report.accounts} accounts (tab i signs in as account i mod {report.accounts}); "
        f"{report.client_processes} client process(es); CPU % = share of one core"
    )
    if report.memory is not None:
        memory = report.memory
        print("\nWorker memory per idle tab (chat page open: hydrated, signed in, token issued)")
        print(
            f"  RSS {memory.rss_before_mib:7.1f} MiB with 0 tabs, {memory.rss_half_mib:7.1f} MiB "
            f"with {memory.half_tabs_opened}, {memory.rss_after_mib:7.1f} MiB with "
            f"{memory.tabs_opened}: {memory.kib_per_tab:6.1f} KiB per added tab "
            f"(from {memory.half_tabs_opened} to {memory.tabs_opened}; from 0: "
            f"{memory.kib_per_tab_from_none:.1f}, the first tabs' warm-up included)"
        )
        latency = memory.open_latency
        print(
            f"  (opening them took {memory.open_seconds:.1f} s; per tab p50 "
            f"{_ms(latency.p50).strip()} ms, p99 {_ms(latency.p99).strip()} ms; "
            f"{memory.open_failures} failed)"
        )
    if report.refresh is not None:
        refresh = report.refresh
        print(
            "\nToken refresh round trip, one tab, one at a time (answer_token_request until "
            f"its token_reply), in {refresh.rounds} rounds alternating with direct calls"
        )
        for label, latency in (
            ("through the worker", refresh.through_backend),
            ("direct client -> sandbox", refresh.direct),
        ):
            print(
                f"  {label:26s} p50 {latency.p50:6.2f} ms   p95 {latency.p95:6.2f} ms   "
                f"p99 {latency.p99:6.2f} ms   (n={refresh.count})"
            )
        print(f"  p50 through the worker / direct: {refresh.ratio:.2f}")
    if report.steps:
        seconds = report.steps[0].seconds
        print(
            "\nToken answers under N concurrent tabs (answer_token_request back to back; "
            f"answers/s, latency and CPU over {seconds:g} s from every tab's first reply on,\n"
            "the opening burst excluded; timeouts, errors, refusals and calls over the whole step)"
        )
        print(
            "      N  answers/s   p50 ms   p95 ms   p99 ms  timeouts  errors  refused"
            "  CPU ms/answer  backend%  sandbox%  clients%  Sendbird calls (per answer)  burst s"
        )
        for step in report.steps:
            per_answer = (
                step.sendbird_calls / step.answers_total if step.answers_total else math.nan
            )
            print(
                f"  {step.tabs:5d}  {step.answers_per_second:9.1f}   {_ms(step.latency.p50)}   "
                f"{_ms(step.latency.p95)}   {_ms(step.latency.p99)}  {step.timeouts:8d}  "
                f"{step.errors:6d}  {step.refusals:7d}  {_ms(step.backend_cpu_ms_per_answer):>13s}"
                f"  {_pct(step.cpu.backend):>8s}  {_pct(step.cpu.sandbox):>8s}  "
                f"{_pct(step.cpu.clients):>8s}  {step.sendbird_calls:6d} ({per_answer:.2f})"
                f"{step.burst_seconds:>22.1f}"
            )
        for step in report.steps:
            if step.error_samples:
                print(f"  errors at N={step.tabs}: {'; '.join(step.error_samples)}")
        if report.stop_reason:
            print(f"  {report.stop_reason}")
    _print_cpu_breakdown(report)
    if report.page_views is not None:
        views = report.page_views
        per_view = views.sendbird_calls / views.views_total if views.views_total else math.nan
        print(
            f"\nPage views (connect + hydrate + sign-in check + open_chat until its token), "
            f"concurrency {views.concurrency}, {views.seconds:g} s"
        )
        print(
            f"  {views.views_per_second:7.1f} views/s   p50 {_ms(views.latency.p50).strip()} ms   "
            f"p95 {_ms(views.latency.p95).strip()} ms   p99 {_ms(views.latency.p99).strip()} ms   "
            f"timeouts {views.timeouts}   errors {views.errors}"
        )
        print(
            f"  CPU {_ms(views.backend_cpu_ms_per_view).strip()} ms per view; backend "
            f"{_pct(views.cpu.backend).strip()} %, sandbox {_pct(views.cpu.sandbox).strip()} %, "
            f"clients {_pct(views.cpu.clients).strip()} %; Sendbird calls {views.sendbird_calls} "
            f"({per_view:.2f} per view)"
        )
        if views.error_samples:
            print(f"  errors: {'; '.join(views.error_samples)}")
    for note in report.notes:
        print(f"  note: {note}")


# ------------------------------------------------------------------------ default CLI


@contextlib.contextmanager
def sandbox_in_own_process(workdir: Path) -> Iterator[tuple[SandboxHandle, int]]:
    """The sandbox in a child process (``benchmarks.sandbox_process``), as a handle.

    The handle has what ``tests.stack.running_app`` reads (the config, URLs and API token)
    and the control client; the second value is the child's PID.
    """
    from types import SimpleNamespace

    from benchmarks.sandbox_process import TOKEN_VARIABLE
    from sample_app.sandbox import SandboxConfig, SandboxServer
    from sample_app.sandbox.control_client import SandboxControlClient
    from tests.stack import SandboxHandle

    api_token = secrets.token_hex(20)
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, a module of this project
        [
            sys.executable,
            "-m",
            "benchmarks.sandbox_process",
            "--app-id",
            APP_ID,
            "--bot-id",
            BOT_ID,
            "--db-path",
            str(workdir / "sandbox.db"),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, TOKEN_VARIABLE: api_token},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    control: SandboxControlClient | None = None
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox process exited ({proc.wait()})")
        address = json.loads(line)
        config = SandboxConfig(app_id=APP_ID, api_token=api_token, bot_id=BOT_ID)
        server = SimpleNamespace(
            config=config, http_url=address["http_url"], ws_url=address["ws_url"]
        )
        control = SandboxControlClient(address["http_url"], api_token)
        yield SandboxHandle(cast(SandboxServer, server), api_token, control), proc.pid
    finally:
        if control is not None:
            control.close()
        assert proc.stdin is not None
        proc.stdin.close()  # the sandbox stops at EOF
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tab_counts(text: str) -> tuple[int, ...]:
    counts = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 10,50,200")
    return counts


@contextlib.contextmanager
def _restored_environ() -> Iterator[None]:
    """Put ``os.environ`` back as it was after the block (AppHarness leaves variables set)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Configuration:
    """One measured configuration of the side-by-side table.

    Attributes:
        key: Short column name (``in-process 1w``, ``demo 2w``).
        workers: How many backend workers it had.
        topology: ``inprocess`` or ``demo-site``.
        report: Its figures, or None when it failed.
        error: Why it failed.
    """

    key: str
    workers: int
    topology: str
    report: CapacityReport | None = None
    error: str = ""


class _LateDeltaCounter(logging.Filter):
    """Counts and drops Reflex's "send delta to disconnected client" warnings.

    A tab whose request timed out is closed by its client; the backend's answer arriving
    afterwards is dropped with one warning each (hundreds at the last step): expected here.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "send delta to disconnected client" in record.getMessage():
            self.count += 1
            return False
        return True


def measure_in_process(options: CapacityOptions) -> CapacityReport:
    """One worker in this process (``AppHarnessProd``), the sandbox in its own process.

    The environment is restored afterwards (the issuance budget, the states directory and
    what AppHarness sets), so a demo site started next gets the launcher's own.
    """
    from benchmarks.token_flow import quiet_logs
    from tests.stack import prepare_reflex_environment

    with _restored_environ():
        prepare_reflex_environment()
        # Overrides, not defaults: a budget left in the environment would turn answers into
        # refusals.
        os.environ.update(CAPACITY_BUDGET)
        quiet_logs()
        from reflex_base.config import get_config

        from tests.stack import running_app

        workdir = Path(tempfile.mkdtemp(prefix="capacity-bench-"))
        # Reflex's disk state manager (its default without Redis) pickles every tab's state
        # and, after each write batch, stats every state file in its directory: a directory
        # of its own keeps the run from depending on (and adding thousands of files to) the
        # project's .states.
        os.environ["REFLEX_STATES_WORKDIR"] = str(workdir / "states")
        started = time.perf_counter()
        print(
            "Capacity: starting the sandbox (own process) and the app (production build)...",
            flush=True,
        )
        late_deltas = _LateDeltaCounter()
        reflex_app_logger = logging.getLogger("reflex.app")
        reflex_app_logger.addFilter(late_deltas)
        try:
            with (
                sandbox_in_own_process(workdir) as (sandbox, sandbox_pid),
                running_app(sandbox, workdir),
            ):
                event_url = f"{get_config().api_url.rstrip('/')}/_event"
                print(f"  ready after {time.perf_counter() - started:.0f} s", flush=True)
                report = measure(
                    [event_url],
                    [os.getpid()],
                    sandbox.control,
                    f"sqlite:///{workdir / 'accounts.db'}",
                    sandbox_pids=[sandbox_pid],
                    sendbird_api=(sandbox.url, sandbox.api_token),
                    options=options,
                )
        finally:
            reflex_app_logger.removeFilter(late_deltas)
            shutil.rmtree(workdir, ignore_errors=True)
    if late_deltas.count:
        report.notes.append(
            f"{late_deltas.count} answers came after their tab had timed out and closed "
            "(Reflex's 'send delta to disconnected client' warnings, not shown)"
        )
    report.notes.append(
        "backend = this process (AppHarnessProd's in-thread uvicorn worker, idle static "
        "frontend server, this script's orchestration); sandbox and clients in their own processes"
    )
    return report


#: The plain configuration the lean one replaces, for the side-by-side ratios: Reflex's own
#: production server (``reflex run --env prod --backend-only``: Granian, asyncio's loop,
#: compressed WebSockets), Sendbird calls unbounded (httpx's own pool queue) and every sign-in
#: check a database round trip on a thread.
PLAIN_SETTINGS = {"SENDBIRD_CALLS_IN_FLIGHT": "0", "SIGN_IN_CACHE_SECONDS": "0"}
WORKER_START_TIMEOUT = 90.0


def measure_worker(options: CapacityOptions, *, plain: bool = False) -> CapacityReport:
    """One production worker process, the sandbox in its own process, SQLite accounts.

    The lean configuration is ``python -m sample_app.server`` with the app's defaults; the
    plain one (``plain=True``) is :data:`PLAIN_SETTINGS`. No proxy, no Redis: the tabs talk to
    the worker's port, so the figures are the worker's own, comparable with each other.
    """
    from deploy.demo_site import ManagedProcess
    from deploy.processes import free_port

    workdir = Path(tempfile.mkdtemp(prefix="capacity-worker-"))
    label = "plain (Granian)" if plain else "lean (sample_app.server)"
    started = time.perf_counter()
    print(f"\nCapacity: one {label} worker, the sandbox in its own process...", flush=True)
    worker: ManagedProcess | None = None
    try:
        with sandbox_in_own_process(workdir) as (sandbox, sandbox_pid):
            port = free_port()
            env = {
                **os.environ,
                **CAPACITY_BUDGET,
                **sandbox.deployment_environ(),
                "REFLEX_DB_URL": f"sqlite:///{workdir / 'accounts.db'}",
                "REFLEX_STATES_WORKDIR": str(workdir / "states"),
                "LOG_LEVEL": "WARNING",
            }
            if plain:
                env.update(PLAIN_SETTINGS)
                env["GRANIAN_WORKERS"] = "1"
                argv = [
                    str(Path(sys.executable).parent / "reflex"),
                    "run",
                    "--env",
                    "prod",
                    "--backend-only",
                    "--backend-host",
                    "127.0.0.1",
                    "--backend-port",
                    str(port),
                ]
            else:
                argv = [sys.executable, "-m", "sample_app.server", "--port", str(port)]
            worker = ManagedProcess("worker", argv, env=env, log_path=workdir / "worker.log")
            worker.start()
            _wait_for_ping(worker, f"http://127.0.0.1:{port}/ping")
            backend_pids = serving_pids(port)
            print(
                f"  ready after {time.perf_counter() - started:.0f} s; worker PIDs {backend_pids}",
                flush=True,
            )
            report = measure(
                [f"http://127.0.0.1:{port}/_event"],
                backend_pids,
                sandbox.control,
                env["REFLEX_DB_URL"],
                sandbox_pids=[sandbox_pid],
                sendbird_api=(sandbox.url, sandbox.api_token),
                options=options,
            )
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if plain:
        report.notes.append(
            "plain: reflex run --env prod --backend-only (Granian, one worker), "
            + ", ".join(f"{name}={value}" for name, value in PLAIN_SETTINGS.items())
        )
    else:
        report.notes.append("lean: python -m sample_app.server with the app's defaults")
    return report


def _wait_for_ping(worker: Any, url: str) -> None:
    """Poll ``url`` until it answers, while ``worker`` (a ManagedProcess) runs."""
    import urllib.request

    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        if not worker.running:
            raise RuntimeError(f"the worker exited while starting; its log:\n{worker.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not answer {url} within {WORKER_START_TIMEOUT} s")
        time.sleep(0.2)


def _port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _reset_between_sites(data_dir: Path) -> None:
    """Drop what one site left for the next: Redis's data, disk states, the sandbox's users.

    Kept: the PostgreSQL cluster (no second initdb; accounts get fresh names anyway), the
    exported frontend and its stamp (so the next site skips the export), the sandbox's API
    token.
    """
    for sub in ("redis", "states"):
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    for path in (data_dir / "sandbox").glob("sandbox.db*"):
        path.unlink(missing_ok=True)


def measure_demo_site(
    worker_counts: Sequence[int],
    options: CapacityOptions,
    *,
    data_dir: Path | None = None,
) -> list[Configuration]:
    """The demo-site topology (``deploy.demo_site.DemoSite``) with each worker count in turn.

    One site at a time on the same ports and data dir, so the frontend export (skipped
    when its stamp matches) runs at most once. Each site gets the issuance budget opened
    (:data:`CAPACITY_BUDGET` in ``os.environ`` while it starts: ``DemoSite`` passes it
    through to the workers) and is stopped before the next starts. The tabs connect through
    nginx; the backend PIDs are the processes serving each worker's port; nginx, Redis,
    PostgreSQL (postmaster and its connection processes) and this process are metered too.

    Args:
        worker_counts: The sites' worker counts, in the order they run.
        options: What :func:`measure` runs on each.
        data_dir: A data dir to use and keep (reused by the next run: no export when the
            sources did not change); None: a fresh one, deleted afterwards.

    Returns:
        One configuration per worker count (with its report, or its error).
    """
    from deploy.demo_site import DemoSite, DemoSiteConfig
    from deploy.processes import free_port
    from sample_app.sandbox.control_client import SandboxControlClient
    from tests.stack import environment_set

    keep = data_dir is not None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="capacity-demo-site-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)  # PostgreSQL runs as `postgres` and must reach its directory
    port, sandbox_port = free_port(), free_port()
    while sandbox_port == port:
        sandbox_port = free_port()
    results = []
    try:
        with environment_set(CAPACITY_BUDGET):
            for number, workers in enumerate(worker_counts):
                configuration = Configuration(f"demo {workers}w", workers, "demo-site")
                results.append(configuration)
                if number:
                    _reset_between_sites(data_dir)
                started = time.perf_counter()
                print(
                    f"\nCapacity: starting the demo site with {workers} worker(s) "
                    f"(nginx on 127.0.0.1:{port}, data dir {data_dir})...",
                    flush=True,
                )
                site = DemoSite(
                    DemoSiteConfig(
                        host="127.0.0.1",
                        port=port,
                        sandbox_port=sandbox_port,
                        workers=workers,
                        data_dir=data_dir,
                    ),
                    say=lambda line: print(f"  {line}", flush=True),
                )
                control: SandboxControlClient | None = None
                try:
                    site.start()
                    assert site.sandbox_internal_url is not None
                    backend_pids = [
                        pid for url in site.worker_urls for pid in serving_pids(_port_of(url))
                    ]
                    sandbox_pids = serving_pids(_port_of(site.sandbox_internal_url))
                    postmaster = serving_pids(site.postgres.port)
                    other_pids: dict[str, PidSource] = {
                        "nginx": serving_pids(port),
                        "Redis": serving_pids(site.redis.port),
                        "PostgreSQL": (
                            with_children(postmaster[0]) if len(postmaster) == 1 else postmaster
                        ),
                        "this": [os.getpid()],
                    }
                    print(
                        f"  ready after {time.perf_counter() - started:.0f} s; worker PIDs "
                        f"{backend_pids}, sandbox {sandbox_pids}, nginx {other_pids['nginx']}",
                        flush=True,
                    )
                    control = SandboxControlClient(
                        site.sandbox_internal_url, site.sandbox_api_token().reveal()
                    )
                    report = measure(
                        [f"{site.url}/_event"],
                        backend_pids,
                        control,
                        site.postgres.url,
                        sandbox_pids=sandbox_pids,
                        other_pids=other_pids,
                        options=options,
                    )
                    report.notes.append(
                        f"backend = the {workers} worker process(es) serving "
                        f"{', '.join(site.worker_urls)} (python -m sample_app.server, one each), "
                        "tabs through nginx; "
                        "sandbox, nginx, Redis, PostgreSQL and clients in their own processes; "
                        "'this' = this script (orchestration only)"
                    )
                    configuration.report = report
                except Exception as error:  # reported; the next site still runs
                    configuration.error = f"{type(error).__name__}: {error}"
                    print(f"  demo site with {workers} worker(s) failed: {configuration.error}")
                finally:
                    if control is not None:
                        control.close()
                    site.stop()
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return results


def _cell(value: float, width: int, digits: int = 1) -> str:
    return f"{'-' if math.isnan(value) else f'{value:.{digits}f}':>{width}s}"


def print_comparison(configurations: Sequence[Configuration]) -> None:
    """The side-by-side table: answers/s and p99 per N, idle-tab memory, page views/s."""
    shown = [c for c in configurations if c.report is not None]
    if not shown:
        return
    width = 19
    step_seconds = ", ".join(
        f"{c.key} {c.report.steps[0].seconds:g} s"
        for c in shown
        if c.report is not None and c.report.steps
    )
    print(f"\nSide by side (token-answer steps: {step_seconds}; '!' = some requests timed out)")
    print("  " + " " * 18 + "".join(f"{c.key:>{width - 1}s} " for c in shown))
    print("  " + f"{'N':>18s}" + "".join(f"{'answers/s  p99 ms':>{width - 1}s} " for _ in shown))
    steps = {
        c.key: {step.tabs: step for step in c.report.steps} for c in shown if c.report is not None
    }
    for tabs in sorted({tabs for by_tabs in steps.values() for tabs in by_tabs}):
        cells = []
        for c in shown:
            step = steps[c.key].get(tabs)
            if step is None:
                cells.append(f"{'-':>{width - 9}s}{'-':>8s} ")
                continue
            mark = "!" if step.timeouts else " "
            cells.append(
                f"{step.answers_per_second:>{width - 9}.1f}{_ms(step.latency.p99):>8s}{mark}"
            )
        print("  " + f"{tabs:>18d}" + "".join(cells))
    memory = [
        c.report.memory.kib_per_tab if c.report and c.report.memory else math.nan for c in shown
    ]
    views = [
        c.report.page_views.views_per_second if c.report and c.report.page_views else math.nan
        for c in shown
    ]
    print("  " + f"{'idle tab, KiB':>18s}" + "".join(_cell(v, width) for v in memory))
    print("  " + f"{'page views/s':>18s}" + "".join(_cell(v, width) for v in views))
    refresh = [c.report.refresh.ratio if c.report and c.report.refresh else math.nan for c in shown]
    print("  " + f"{'refresh / direct':>18s}" + "".join(_cell(v, width, 2) for v in refresh))
    by_key = {c.key: c.report for c in shown}
    lean, plain = by_key.get("lean 1w"), by_key.get("plain 1w")
    if lean is not None and plain is not None:
        base = {step.tabs: step for step in plain.steps}
        ratios = [
            f"N={step.tabs} {step.answers_per_second / base[step.tabs].answers_per_second:.2f}"
            for step in lean.steps
            if step.tabs in base and base[step.tabs].answers_per_second
        ]
        print(f"  lean / plain, answers/s: {', '.join(ratios)}")
        cpu = [
            f"N={step.tabs} {step.backend_cpu_ms_per_answer:.1f} vs "
            f"{base[step.tabs].backend_cpu_ms_per_answer:.1f}"
            for step in lean.steps
            if step.tabs in base
        ]
        print(f"  worker CPU ms per answer, lean vs plain: {', '.join(cpu)}")
        if lean.memory and plain.memory:
            print(
                f"  idle tab, lean / plain: {lean.memory.kib_per_tab:.0f} / "
                f"{plain.memory.kib_per_tab:.0f} KiB"
            )
        if lean.page_views and plain.page_views:
            print(
                "  page views/s, lean / plain: "
                f"{lean.page_views.views_per_second / plain.page_views.views_per_second:.2f}"
            )
    demo = {c.workers: c for c in shown if c.topology == "demo-site"}
    one = demo.get(1)
    for workers, many in sorted(demo.items()):
        if one is None or workers == 1 or one.report is None or many.report is None:
            continue
        base = {step.tabs: step.answers_per_second for step in one.report.steps}
        ratios = [
            f"N={step.tabs} {step.answers_per_second / base[step.tabs]:.2f}"
            for step in many.report.steps
            if base.get(step.tabs)
        ]
        print(f"  {workers} workers / 1 worker (answers/s, demo site): {', '.join(ratios)}")
    for c in configurations:
        if c.report is None:
            print(f"  {c.key}: failed ({c.error})")


def _worker_counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(",") if part.strip())
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,2")
    return counts


def build_parser() -> argparse.ArgumentParser:
    """The CLI's flags (every :class:`CapacityOptions` field, the topology and its own)."""
    defaults = CapacityOptions()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add(
        "--topology",
        choices=("worker", "inprocess", "demo-site", "both", "all"),
        default="both",
        help="worker: one production worker, lean and plain side by side; inprocess: one "
        "worker inside this process (AppHarnessProd); demo-site: nginx + N workers; both "
        "(default): worker and demo-site; all: every one",
    )
    add("--tabs", type=_tab_counts, default=defaults.tab_counts, help="N of the steps (10,50,...)")
    add("--step-seconds", type=float, default=defaults.step_seconds, help="seconds per step")
    add(
        "--workers",
        type=_worker_counts,
        default=DEMO_WORKERS,
        help="demo site: worker counts, one site each, in turn (default 1,2)",
    )
    add(
        "--demo-tabs",
        type=_tab_counts,
        default=DEMO_TAB_COUNTS,
        help="demo site: N of its steps (default 10,50,200,500,1000)",
    )
    add(
        "--demo-step-seconds",
        type=float,
        default=DEMO_STEP_SECONDS,
        help="demo site: seconds per step (default 5)",
    )
    add(
        "--demo-data-dir",
        type=Path,
        default=None,
        help="demo site: data dir to use and keep (the next run skips the frontend export); "
        "default: a fresh one, deleted afterwards",
    )
    add("--request-timeout", type=float, default=defaults.request_timeout, help="per request, s")
    add("--max-timeout-ratio", type=float, default=defaults.max_timeout_ratio)
    add("--max-step-seconds", type=float, default=defaults.max_step_seconds)
    add(
        "--idle-tabs", type=int, default=defaults.idle_tabs, help="K of the memory figure (0: skip)"
    )
    add("--page-view-concurrency", type=int, default=defaults.page_view_concurrency)
    add("--page-view-seconds", type=float, default=defaults.page_view_seconds, help="0: skip")
    add(
        "--refreshes",
        type=int,
        default=defaults.refreshes,
        help="one-tab refreshes timed beside direct calls (0: skip)",
    )
    add(
        "--accounts",
        type=int,
        default=defaults.accounts,
        help="accounts the tabs sign in as (default: one per tab)",
    )
    add("--client-processes", type=int, default=defaults.client_processes)
    add("--open-concurrency", type=int, default=defaults.open_concurrency, help="per process")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the chosen topologies one after the other, print each, then side by side."""
    args = build_parser().parse_args(argv)
    options = CapacityOptions(
        tab_counts=args.tabs,
        step_seconds=args.step_seconds,
        request_timeout=args.request_timeout,
        max_timeout_ratio=args.max_timeout_ratio,
        max_step_seconds=args.max_step_seconds,
        idle_tabs=args.idle_tabs,
        page_view_concurrency=args.page_view_concurrency,
        page_view_seconds=args.page_view_seconds,
        accounts=None if args.accounts is None else max(1, args.accounts),
        client_processes=max(1, args.client_processes),
        open_concurrency=max(1, args.open_concurrency),
        refreshes=max(0, args.refreshes),
    )
    demo_options = dataclasses.replace(
        options, tab_counts=args.demo_tabs, step_seconds=args.demo_step_seconds
    )
    from tests.stack import prepare_reflex_environment

    prepare_reflex_environment()
    started = time.perf_counter()
    configurations: list[Configuration] = []
    if args.topology in ("worker", "both", "all"):
        for plain in (False, True):
            configuration = Configuration("plain 1w" if plain else "lean 1w", 1, "worker")
            configurations.append(configuration)
            try:
                configuration.report = measure_worker(options, plain=plain)
            except Exception as error:  # reported; the others still run
                configuration.error = f"{type(error).__name__}: {error}"
                print(f"  {configuration.key} worker failed: {configuration.error}")
            else:
                print_report(
                    f"one production worker, {configuration.key.split()[0]} configuration, "
                    "SQLite accounts",
                    configuration.report,
                )
    if args.topology in ("inprocess", "all"):
        configuration = Configuration("in-process 1w", 1, "inprocess")
        configurations.append(configuration)
        try:
            configuration.report = measure_in_process(options)
        except Exception as error:  # reported; the demo site still runs
            configuration.error = f"{type(error).__name__}: {error}"
            print(f"  in-process worker failed: {configuration.error}")
        else:
            print_report(
                "one worker (AppHarnessProd, in-process backend), SQLite accounts, "
                "Reflex disk state",
                configuration.report,
            )
    if args.topology in ("demo-site", "both", "all"):
        for configuration in measure_demo_site(
            args.workers, demo_options, data_dir=args.demo_data_dir
        ):
            configurations.append(configuration)
            if configuration.report is not None:
                print_report(
                    f"demo site, {configuration.workers} worker(s) behind nginx, Redis state, "
                    "PostgreSQL accounts",
                    configuration.report,
                )
    if len(configurations) > 1:
        print_comparison(configurations)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 1 if any(c.report is None for c in configurations) else 0


if __name__ == "__main__":
    raise SystemExit(main())
