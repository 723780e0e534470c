"""Registry of live WebSocket connections and the background tasks that write to them.

REST calls (revoke), control calls (expire, reset) and the bot all need to reach sockets that
are owned by other requests, so every connection registers here. The hub also owns the bot's
reply tasks, which lets ``reset`` and shutdown cancel them instead of leaking them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket

logger = logging.getLogger("sample_app.sandbox.ws")


def encode_command(code: str, payload: dict[str, Any]) -> str:
    """One protocol line: 4-letter code, compact JSON, newline."""
    return code + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"


class Connection:
    """One widget socket.

    Attributes:
        conn_id: Sequence number for logs.
        websocket: The Starlette socket.
        user_id: Logged-in user, ``None`` before (or after a failed) login.
        key_sha256: Digest of the session key the socket currently uses.
        key_expires_at: Expiry of that key in Unix ms.
        expr_sent_for: Key digest for which an ``EXPR 400309`` was already sent, so the timer
            and the control surface do not both send one.
    """

    def __init__(self, conn_id: int, websocket: WebSocket) -> None:
        self.conn_id = conn_id
        self.websocket = websocket
        self.user_id: str | None = None
        self.key_sha256: str | None = None
        self.key_expires_at = 0
        self.expr_sent_for: str | None = None
        self.closed = False
        self.error_streak = 0
        self._send_lock = asyncio.Lock()
        self._key_timer: asyncio.TimerHandle | None = None

    async def send(self, code: str, payload: dict[str, Any]) -> bool:
        """Send one command; returns ``False`` if the socket is gone (never raises)."""
        return await self.send_raw(encode_command(code, payload))

    async def send_raw(self, text: str) -> bool:
        """Send a pre-encoded frame."""
        if self.closed:
            return False
        async with self._send_lock:
            try:
                await self.websocket.send_text(text)
            except Exception:  # any failure means the peer is gone
                self.closed = True
                return False
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket from the server side (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.cancel_key_timer()
        async with self._send_lock:
            try:
                await self.websocket.close(code=code, reason=reason)
            except Exception:  # already closed by the peer
                logger.debug("conn %s: close after peer left", self.conn_id)

    def set_key_timer(self, handle: asyncio.TimerHandle | None) -> None:
        """Replace the timer that fires when the current session key expires."""
        self.cancel_key_timer()
        self._key_timer = handle

    def cancel_key_timer(self) -> None:
        """Stop the session key expiry timer."""
        if self._key_timer is not None:
            self._key_timer.cancel()
            self._key_timer = None


class Hub:
    """All live connections, indexed by user, plus tracked background tasks."""

    def __init__(self) -> None:
        self._connections: dict[int, Connection] = {}
        self._next_id = 1
        self._tasks: set[asyncio.Task[Any]] = set()

    def new_connection(self, websocket: WebSocket) -> Connection:
        """Create and register a connection object for an accepted socket."""
        conn = Connection(self._next_id, websocket)
        self._next_id += 1
        self._connections[conn.conn_id] = conn
        return conn

    def remove(self, conn: Connection) -> None:
        """Forget a connection once its handler ends."""
        conn.cancel_key_timer()
        self._connections.pop(conn.conn_id, None)

    @property
    def active_count(self) -> int:
        """Number of open sockets."""
        return len(self._connections)

    def connections_of(self, user_id: str) -> list[Connection]:
        """Open, logged-in sockets of a user."""
        return [c for c in self._connections.values() if c.user_id == user_id and not c.closed]

    def online_user_ids(self) -> set[str]:
        """Users with at least one open, logged-in socket."""
        return {c.user_id for c in self._connections.values() if c.user_id and not c.closed}

    async def send_to_users(
        self,
        user_ids: list[str],
        code: str,
        payload: dict[str, Any],
        *,
        exclude: Connection | None = None,
    ) -> int:
        """Push one command to every socket of the given users; returns sockets reached."""
        wanted = set(user_ids)
        sent = 0
        for conn in list(self._connections.values()):
            if conn is exclude or conn.closed or conn.user_id not in wanted:
                continue
            if await conn.send(code, payload):
                sent += 1
        return sent

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a background coroutine that ``cancel_tasks`` can stop."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Cancel background tasks (bot replies) and wait for them to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close_all(self, code: int = 1001, reason: str = "") -> int:
        """Close every socket (shutdown, reset); returns how many were open."""
        conns = list(self._connections.values())
        for conn in conns:
            await conn.close(code, reason)
        return len(conns)
