"""A tiny widget-like WebSocket client that speaks the Sendbird framing.

It connects the way chat SDK 4.14.1 does (query string, credential as URL-encoded JSON
subprotocol), splits frames that carry several commands and offers helpers to wait for a
command or a ``req_id`` while keeping pushes that arrive in between.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from typing import Any
from urllib.parse import quote, urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Command = tuple[str, dict[str, Any]]

# encodeURIComponent leaves these unescaped; the SDK's subprotocol looks exactly like that.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def subprotocol_for(credential: dict[str, str]) -> str:
    """The subprotocol the SDK offers: ``encodeURIComponent(JSON.stringify(cred))``."""
    return quote(json.dumps(credential, separators=(",", ":")), safe=_URI_COMPONENT_SAFE)


def sdk_query(app_id: str, user_id: str | None) -> str:
    """Query string shaped like the SDK's (``user_id`` only on a token login)."""
    params = {"p": "JS", "pv": "pytest", "sv": "4.14.1", "ai": app_id}
    if user_id is not None:
        params["user_id"] = user_id
    params.update(
        {
            "pmce": "1",
            "active": "1",
            "SB-User-Agent": "JS/c4.14.1//u3.14.10/oweb",
            "expiring_session": "1",
            "use_local_cache": "1",
            "uikit_config": "1",
        }
    )
    return urlencode(params, quote_via=quote)


class WidgetClient:
    """One chat socket.

    Attributes:
        ws: The underlying ``websockets`` connection.
        offered_subprotocol: What the client offered in ``Sec-WebSocket-Protocol``.
        logi: The first LOGI payload, once :meth:`read_login` ran.
    """

    def __init__(self, ws: ClientConnection, offered_subprotocol: str | None) -> None:
        self.ws = ws
        self.offered_subprotocol = offered_subprotocol
        self.logi: dict[str, Any] | None = None
        self._buffer: deque[Command] = deque()

    @classmethod
    async def open(
        cls,
        ws_url: str,
        app_id: str,
        *,
        token: str | None = None,
        key: str | None = None,
        user_id: str | None = None,
        subprotocol: str | None = None,
    ) -> WidgetClient:
        """Connect like the SDK: ``{"token"}`` on first login, ``{"auth"}`` on reconnect."""
        if subprotocol is None:
            credential: dict[str, str] = {}
            if key is not None:
                credential["auth"] = key
            elif token is not None:
                credential["token"] = token
            subprotocol = subprotocol_for(credential)
        url = f"{ws_url}/?{sdk_query(app_id, user_id if key is None else None)}"
        ws = await connect(
            url,
            subprotocols=[subprotocol],  # type: ignore[list-item]
            open_timeout=5,
            close_timeout=2,
            max_size=4 * 1024 * 1024,
        )
        return cls(ws, subprotocol)

    @property
    def accepted_subprotocol(self) -> str | None:
        """The subprotocol the server echoed."""
        return self.ws.subprotocol

    async def read_login(self, timeout: float = 2.0) -> dict[str, Any]:
        """Read the server's first LOGI and keep it in :attr:`logi`."""
        code, payload = await self.recv(timeout)
        assert code == "LOGI", (code, payload)
        self.logi = payload
        return payload

    async def send(self, code: str, payload: dict[str, Any]) -> None:
        """Send one command."""
        await self.send_raw(code + json.dumps(payload, separators=(",", ":")) + "\n")

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame as is."""
        await self.ws.send(data)

    async def recv(self, timeout: float = 2.0) -> Command:
        """Next command, splitting frames that carry several."""
        while not self._buffer:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
            text = frame if isinstance(frame, str) else frame.decode("utf-8")
            for line in text.split("\n"):
                if line.strip():
                    self._buffer.append((line[:4], json.loads(line[4:] or "{}")))
        return self._buffer.popleft()

    async def wait_for(
        self, code: str, timeout: float = 2.0
    ) -> tuple[dict[str, Any], list[Command]]:
        """Skip to the next ``code`` command; returns it and what was skipped."""
        skipped: list[Command] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got = await self.recv(max(0.01, deadline - loop.time()))
            if got[0] == code:
                return got[1], skipped
            skipped.append(got)

    async def request(
        self, code: str, payload: dict[str, Any], timeout: float = 2.0
    ) -> tuple[str, dict[str, Any]]:
        """Send with a fresh ``req_id`` and wait for the reply carrying it (skips pushes)."""
        req_id = f"rq-{uuid.uuid4()}"
        await self.send(code, {**payload, "req_id": req_id})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got_code, got = await self.recv(max(0.01, deadline - loop.time()))
            if got.get("req_id") == req_id:
                return got_code, got

    async def assert_silent(self, duration: float = 0.3) -> None:
        """Fail if any command arrives within ``duration`` seconds."""
        try:
            got = await self.recv(duration)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected command {got}")

    async def wait_closed(self, timeout: float = 2.0) -> int | None:
        """Wait until the server closes the socket; returns the close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - loop.time()))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def close(self) -> None:
        """Close from the client side."""
        await self.ws.close()

    async def __aenter__(self) -> WidgetClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
