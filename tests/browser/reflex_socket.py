"""A raw Reflex event client: what an attacker with devtools (or a script) can send.

Speaks Socket.IO (Engine.IO v4) over a plain WebSocket to the backend's `/_event`
endpoint, so tests can send any event name with any payload, with or without the
browser's tab token, and read the state deltas the server sends back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from websockets.asyncio.client import connect

T = TypeVar("T")
NAMESPACE = "/_event"


class ReflexSocket:
    """One Socket.IO connection to a Reflex backend, as a given client token."""

    def __init__(
        self, backend_url: str, token: str | None = None, *, compress: bool = True
    ) -> None:
        """Open nothing yet (``async with`` connects).

        Args:
            backend_url: The backend's ``http://`` URL.
            token: The tab's client token; a new random one when None.
            compress: Ask for permessage-deflate, as browsers do (the production server,
                ``sample_app.server``, declines it; AppHarness's uvicorn accepts it).
        """
        base = backend_url.replace("http://", "ws://").rstrip("/")
        self.compress = compress
        self.token = token or str(uuid.uuid4())
        self.url = f"{base}/_event/?token={self.token}&EIO=4&transport=websocket"
        self.deltas: list[dict[str, Any]] = []
        # Set when the server refused the token as a duplicate of a connected tab and
        # handed out a fresh one (a fresh, empty state): callers that mean to act as an
        # existing tab must disconnect that tab first.
        self.reassigned_token: str | None = None

    async def __aenter__(self) -> ReflexSocket:
        self._ws = await connect(self.url, compression="deflate" if self.compress else None)
        opening = await self._ws.recv()  # Engine.IO "open" packet
        assert str(opening).startswith("0"), opening
        await self._ws.send(f"40{NAMESPACE},")  # Socket.IO connect to Reflex's namespace
        while not str(await self._ws.recv()).startswith(f"40{NAMESPACE},"):
            pass
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def send_event(self, name: str, payload: dict[str, Any] | None = None) -> None:
        """Emit an event exactly as the frontend does (`42["event", {...}]`)."""
        event = {
            "name": name,
            "payload": payload or {},
            "router_data": {"pathname": "/", "query": {}, "asPath": "/"},
        }
        await self._ws.send(f"42{NAMESPACE}," + json.dumps(["event", event]))

    async def next_delta(self, timeout: float) -> dict[str, Any] | None:
        """Wait for the next state update (answering pings); None when `timeout` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    message = str(await self._ws.recv())
            except TimeoutError:
                return None
            if message == "2":  # Engine.IO ping
                await self._ws.send("3")
            elif message.startswith(f"42{NAMESPACE},"):
                name, *args = json.loads(message[len(NAMESPACE) + 3 :])
                if name == "new_token" and args:
                    self.reassigned_token = str(args[0])
                elif name == "event" and args:
                    self.deltas.append(args[0])
                    return args[0]
        return None

    async def collect(self, seconds: float = 2.0) -> list[dict[str, Any]]:
        """Read state updates for a while, and return all received so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            await self.next_delta(remaining)
        return self.deltas

    def delta_text(self) -> str:
        """All deltas received, as one JSON string to search."""
        return json.dumps(self.deltas)


def run_outside_playwright(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in its own thread.

    Playwright's sync API keeps an event loop on the main thread, so `asyncio.run` cannot
    be called there.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
