"""Load-generating client process for `benchmarks/capacity.py`: many Reflex tabs, one event loop.

Run as ``python -m benchmarks.load_client`` by the capacity benchmark, never by hand. It
reads one JSON command per line on stdin and answers each with one JSON line on stdout, so
the parent measures the backend's CPU while the clients' own CPU is spent in this separate
process (the parent reads it by PID, too).

A *tab* is what a browser tab of the chat page does on the wire, over a plain WebSocket
speaking Socket.IO (Engine.IO v4), like ``tests/browser/reflex_socket.py`` but asynchronous
throughout and cheap per message (frames are matched with regular expressions, not decoded):

1. connect to ``/_event/?token=<tab token>&EIO=4&transport=websocket`` and send the Socket.IO
   CONNECT packet with the hydrate event in its auth payload, as Reflex 0.10's frontend does:
   ``hydrate_and_load`` carrying the browser's localStorage sign-in token, for the chat page's
   route, so the backend hydrates and then runs the page's on_load (``open_chat``: the
   sign-in check and the first session token);
2. the tab is *open* once a delta sets ``widget_visible`` (the first token has arrived);
3. afterwards the tab answers Engine.IO pings and can send ``answer_token_request`` events,
   each matched to its ``token_reply`` by request id.

Commands (``op``): ``setup`` (event names), ``open`` (open and keep tabs), ``load`` (token
requests back to back on the first tabs), ``pageviews`` (open and close fresh tabs in a
loop), ``close`` (close the kept tabs), ``exit``. Only this module's imports are loaded here
(no Reflex, no app), so a client process stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

NAMESPACE = "/_event"
EVENT_PREFIX = f"42{NAMESPACE},"
CONNECTED_PREFIX = f"40{NAMESPACE},"
# A widget that is rendered: open_chat issued the first token.
WIDGET_VISIBLE = re.compile(r'"widget_visible_rx_state_":\s*true')
# open_chat failed (Sendbird error, budget) or the tab was sent to the sign-in page.
OPEN_FAILED = re.compile(r'"phase_rx_state_":\s*"start_failed"|"_redirect"')
TOKEN_REPLY = re.compile(
    r'"request_id":\s*(\d+),\s*"token":\s*"((?:[^"\\]|\\.)*)",\s*"error":\s*"((?:[^"\\]|\\.)*)"'
)
# The issuance budget's refusals (IssuanceBudgetExceededError's two messages).
REFUSAL = re.compile(r"too many session tokens", re.IGNORECASE)
MAX_FRAME = 16 * 1024 * 1024
ERROR_SAMPLES = 5


class TabError(Exception):
    """A tab could not be opened (connection refused, failed hydrate, no token in time)."""


@dataclass
class Events:
    """The event names and the page the tabs use (sent by the parent's ``setup``)."""

    boot: str = ""
    token_request: str = ""
    sign_in_var: str = ""
    pathname: str = "/"

    @classmethod
    def of_app(cls) -> Events:
        """The names the compiled frontend sends; imports the app (so not in a client)."""
        from reflex.state import State
        from reflex_base.constants.state import FIELD_MARKER

        from sample_app import routes
        from sample_app.state.auth import AuthState
        from sample_app.state.chat_session import ChatSessionState

        return cls(
            boot=f"{State.get_full_name()}.hydrate_and_load",
            token_request=f"{ChatSessionState.get_full_name()}.answer_token_request",
            sign_in_var=f"{AuthState.get_full_name()}.sign_in_token{FIELD_MARKER}",
            pathname=routes.CHAT,
        )


@dataclass
class Tab:
    """One browser tab of the chat page: a socket, its tab token and its sign-in token."""

    url: str
    sign_in_token: str
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    ws: ClientConnection | None = None
    opened: asyncio.Future[None] | None = None
    pending: dict[int, asyncio.Future[tuple[str, str]]] = field(default_factory=dict)
    request_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    reader: asyncio.Task[None] | None = None

    async def open(self, events: Events, time_limit: float) -> None:
        """Connect, hydrate as the signed-in browser, wait until open_chat's token arrived.

        Raises:
            TabError: The connection or the hydrate failed, or no token within `time_limit`.
        """
        loop = asyncio.get_running_loop()
        self.opened = loop.create_future()
        base = self.url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        if not base.endswith(NAMESPACE):
            base += NAMESPACE
        address = f"{base}/?token={self.token}&EIO=4&transport=websocket"
        router = {"pathname": events.pathname, "query": {}, "asPath": events.pathname}
        boot = {
            "name": events.boot,
            "payload": {"vars": {events.sign_in_var: self.sign_in_token}},
            "router_data": router,
        }
        try:
            async with asyncio.timeout(time_limit):
                self.ws = await connect(
                    address, max_size=MAX_FRAME, ping_interval=None, open_timeout=time_limit
                )
                opening = str(await self.ws.recv())
                if not opening.startswith("0"):
                    raise TabError(f"unexpected Engine.IO open packet {opening[:40]!r}")
                await self.ws.send(CONNECTED_PREFIX + json.dumps({"event": boot}))
                self.reader = loop.create_task(self._read())
                await self.opened
        except TimeoutError:
            await self.close()
            raise TabError("no first token in time") from None
        except TabError:
            await self.close()
            raise
        except Exception as error:  # connection refused or reset, handshake failure
            await self.close()
            raise TabError(f"{type(error).__name__}: {error}") from None

    async def _read(self) -> None:
        """Answer pings, notice the first token, and resolve pending token requests."""
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = raw if isinstance(raw, str) else raw.decode()
                if message == "2":  # Engine.IO ping
                    await self.ws.send("3")
                    continue
                if not message.startswith(EVENT_PREFIX):
                    if message.startswith(f"44{NAMESPACE},"):  # CONNECT refused
                        self._fail(TabError(f"connect refused: {message[:120]}"))
                    continue
                if self.opened is not None and not self.opened.done():
                    if WIDGET_VISIBLE.search(message):
                        self.opened.set_result(None)
                    elif '"new_token"' in message[:40]:
                        self._fail(TabError("the backend reassigned the tab token"))
                    elif OPEN_FAILED.search(message):
                        self._fail(TabError("open_chat failed or redirected to sign-in"))
                if self.pending and '"request_id"' in message:
                    for match in TOKEN_REPLY.finditer(message):
                        waiter = self.pending.pop(int(match.group(1)), None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result((match.group(2), match.group(3)))
        except Exception as error:  # the connection dropped
            self._fail(TabError(f"connection lost: {type(error).__name__}"))
            return
        self._fail(TabError("connection closed"))

    def _fail(self, error: TabError) -> None:
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(error)
        for waiter in self.pending.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.pending.clear()

    async def request_token(self, events: Events, time_limit: float) -> tuple[str, str]:
        """Send one onSessionTokenRequired and wait for its answer: (token, error)."""
        assert self.ws is not None
        request_id = next(self.request_ids)
        waiter: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = waiter
        event = {
            "name": events.token_request,
            "payload": {"request_id": request_id},
            "router_data": {"pathname": events.pathname, "query": {}, "asPath": events.pathname},
        }
        try:
            await self.ws.send(EVENT_PREFIX + json.dumps(["event", event]))
            return await asyncio.wait_for(waiter, time_limit)
        finally:
            self.pending.pop(request_id, None)

    async def close(self) -> None:
        """Close the socket (and stop reading it)."""
        if self.ws is not None:
            with contextlib.suppress(Exception):  # already gone: nothing left to close
                await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


@dataclass
class Tally:
    """What a load or page-view run saw in this process."""

    latencies_ms: list[float] = field(default_factory=list)
    in_window: int = 0
    ok: int = 0
    timeouts: int = 0
    errors: int = 0
    refusals: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        """Count an error and keep the first few texts."""
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(text[:200])

    def as_dict(self) -> dict[str, Any]:
        """The tally as JSON-ready data."""
        return {
            "latencies_ms": [round(sample, 3) for sample in self.latencies_ms],
            "in_window": self.in_window,
            "ok": self.ok,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "refusals": self.refusals,
            "error_samples": self.error_samples,
        }


class ClientProcess:
    """The command loop of one client process and the tabs it keeps open."""

    def __init__(self) -> None:
        self.events = Events()
        self.tabs: list[Tab] = []

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command and return its answer."""
        op = command["op"]
        if op == "setup":
            self.events = Events(**command["events"])
            return {"ok": True}
        if op == "open":
            return await self.open_tabs(command["tabs"], command["concurrency"], command["timeout"])
        if op == "load":
            return await self.load(
                command["tabs"],
                command["start_at"],
                command["duration"],
                command["timeout"],
                command["warmup_limit"],
            )
        if op == "pageviews":
            return await self.page_views(
                command["tabs"],
                command["concurrency"],
                command["start_at"],
                command["duration"],
                command["timeout"],
            )
        if op == "close":
            await asyncio.gather(*(tab.close() for tab in self.tabs))
            closed, self.tabs = len(self.tabs), []
            return {"closed": closed}
        raise ValueError(f"unknown op {op!r}")

    async def open_tabs(
        self, specs: list[list[str]], concurrency: int, time_limit: float
    ) -> dict[str, Any]:
        """Open tabs ([url, sign-in token] each), `concurrency` at a time; keep the good ones."""
        gate = asyncio.Semaphore(max(1, concurrency))
        latencies: list[float] = []
        failures: list[str] = []

        async def one(url: str, sign_in_token: str) -> Tab | None:
            async with gate:
                tab = Tab(url, sign_in_token)
                started = time.perf_counter()
                try:
                    await tab.open(self.events, time_limit)
                except TabError as error:
                    failures.append(str(error))
                    return None
                latencies.append((time.perf_counter() - started) * 1000)
                return tab

        opened = await asyncio.gather(*(one(url, token) for url, token in specs))
        # Kept in the order asked for, failures dropped: the parent counts on the order only
        # as far as "the first n tabs of this process".
        self.tabs.extend(tab for tab in opened if tab is not None)
        return {
            "opened": len(specs) - len(failures),
            "failed": len(failures),
            "error_samples": failures[:ERROR_SAMPLES],
            "latencies_ms": [round(sample, 3) for sample in latencies],
            "kept": len(self.tabs),
        }

    async def load(
        self, count: int, start_at: float, duration: float, time_limit: float, warmup_limit: float
    ) -> dict[str, Any]:
        """Token requests back to back on the first `count` tabs, from `start_at` (epoch s).

        All tabs ask at once, so the first round is a burst whose answers come late (the
        backend shares itself between all of them). The measured window starts once every
        tab here has had its first reply (at most `warmup_limit` s after the start) and
        lasts `duration` s; the reply is the steady state. Replies in the window are
        reported with their epoch times, so the parent can intersect the windows of its
        processes; timeouts and errors count over the whole run, burst included.
        """
        tally = Tally()
        await _sleep_until(start_at)
        tabs = self.tabs[:count]
        loop_started = time.perf_counter()
        epoch_offset = time.time() - loop_started
        waiting_first = len(tabs)
        # [start, end] of the measured window, moved forward once every tab had a reply
        window: list[float] = [loop_started + warmup_limit, loop_started + warmup_limit + duration]
        if not tabs:
            window[:] = [loop_started, loop_started + duration]
        done_at: list[float] = []

        def first_reply() -> None:
            nonlocal waiting_first
            waiting_first -= 1
            now = time.perf_counter()
            if waiting_first == 0 and now < window[0]:
                window[:] = [now, now + duration]

        async def drive(tab: Tab) -> None:
            first = True
            while time.perf_counter() < window[1]:
                sent = time.perf_counter()
                try:
                    token, error = await tab.request_token(self.events, time_limit)
                except TimeoutError:
                    tally.timeouts += 1
                    token, error = "", "timeout"
                except TabError as lost:
                    tally.error(str(lost))
                    if first:
                        first_reply()
                    return
                done = time.perf_counter()
                if first:
                    first = False
                    first_reply()
                if token:
                    tally.ok += 1
                    if window[0] <= done <= window[1]:
                        tally.latencies_ms.append((done - sent) * 1000)
                        done_at.append(done + epoch_offset)
                elif error == "timeout":
                    continue
                elif REFUSAL.search(error):
                    tally.refusals += 1
                else:
                    tally.error(error or "empty token reply")

        await asyncio.gather(*(drive(tab) for tab in tabs))
        return tally.as_dict() | {
            "tabs": len(tabs),
            "in_window": len(done_at),
            "done_at": [round(moment, 4) for moment in done_at],
            "windows": [[round(window[0] + epoch_offset, 4), round(window[1] + epoch_offset, 4)]],
        }

    async def page_views(
        self,
        specs: list[list[str]],
        concurrency: int,
        start_at: float,
        duration: float,
        time_limit: float,
    ) -> dict[str, Any]:
        """Open a fresh tab, wait for its token, close it; `concurrency` loops, round robin."""
        tally = Tally()
        cycle = itertools.cycle(specs)
        await _sleep_until(start_at)
        started = time.perf_counter()
        deadline = started + duration

        async def loop() -> None:
            while time.perf_counter() < deadline:
                url, sign_in_token = next(cycle)
                tab = Tab(url, sign_in_token)
                sent = time.perf_counter()
                try:
                    await tab.open(self.events, time_limit)
                except TabError as error:
                    if "in time" in str(error):
                        tally.timeouts += 1
                    else:
                        tally.error(str(error))
                    continue
                done = time.perf_counter()
                tally.ok += 1
                tally.latencies_ms.append((done - sent) * 1000)
                if done <= deadline:
                    tally.in_window += 1
                await tab.close()

        await asyncio.gather(*(loop() for _ in range(max(1, concurrency))))
        return tally.as_dict()


async def _sleep_until(epoch_seconds: float) -> None:
    await asyncio.sleep(max(0.0, epoch_seconds - time.time()))


async def serve() -> None:
    """Read commands from stdin until ``exit`` (or EOF); answer each on stdout."""
    loop = asyncio.get_running_loop()
    client = ClientProcess()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if command["op"] == "exit":
            break
        try:
            answer = await client.handle(command)
        except Exception as error:  # report it to the parent, which raises
            answer = {"failure": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    await client.handle({"op": "close"})


if __name__ == "__main__":
    asyncio.run(serve())
