"""A real HTTP server on 127.0.0.1 whose answers each test scripts.

Why a real server rather than ``httpx.MockTransport``: the things most likely to go
wrong in a Platform API client live below the request object, namely how the user id
is percent-encoded on the wire (``raw_path``), real connect failures and real read
timeouts. A tiny Starlette app run by uvicorn in a background thread exercises all
of that and still starts in a few milliseconds.

Each request is answered by the next queued :class:`Reply` or, when the queue is
empty, by an optional fallback handler (e.g. :class:`FakeSendbird`, a small stateful
stand-in for the users/token endpoints). Every request is recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from sample_app.sendbird_api import SendbirdClient

_NO_JSON = object()

# Looks like a real 40-hex master token so that a leak would be easy to spot.
API_TOKEN = "5f1e9c0d2b7a4e6f8a3c1d0e9b8a7f6e5d4c3b2a"


class SleepRecorder:
    """Injected instead of ``asyncio.sleep``: records delays and returns at once."""

    def __init__(self) -> None:
        """Start with no recorded delays."""
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        """Record ``delay`` without waiting."""
        self.delays.append(delay)


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        json: Body to send as JSON (leave unset to send ``body`` instead).
        body: Raw body (str or bytes), e.g. an HTML error page.
        headers: Extra response headers.
        delay: Seconds to wait before answering (to provoke read timeouts).
        content_type: Content type for ``body``; JSON bodies always use JSON.
    """

    status: int = 200
    json: Any = _NO_JSON
    body: str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "text/html; charset=utf-8"


def sendbird_error(code: int, message: str, status: int = 400, **kwargs: Any) -> Reply:
    """A reply carrying Sendbird's error envelope."""
    return Reply(status=status, json={"error": True, "code": code, "message": message}, **kwargs)


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received.

    Attributes:
        method: HTTP method.
        raw_path: The path exactly as sent on the wire (still percent-encoded).
        path: The path as decoded by the server.
        headers: Request headers with lower-case names.
        body: Raw request body.
    """

    method: str
    raw_path: bytes
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def segments(self) -> list[str]:
        """Path segments, each percent-decoded separately (so ``%2F`` stays inside one)."""
        return [unquote(s) for s in self.raw_path.decode("ascii").split("/")[1:]]


Handler = Callable[[RecordedRequest], Reply]

#: Signature of the ``make_client`` fixture: keyword overrides -> a SendbirdClient.
ClientFactory = Callable[..., "SendbirdClient"]


class ScriptedServer:
    """The scripted server; use :meth:`running` to start one."""

    def __init__(self) -> None:
        """Create an idle server (not listening yet)."""
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._fallback: Handler | None = None
        self.base_url = ""
        self.app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    # ---- scripting API used by tests

    def reply(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    def set_fallback(self, handler: Handler | None) -> None:
        """Answer requests with ``handler`` whenever the queue is empty."""
        with self._lock:
            self._fallback = handler

    def reset(self) -> None:
        """Forget queued replies, recorded requests and the fallback."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._fallback = None

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str, suffix: str = "") -> int:
        """How many ``method`` requests had a decoded path ending in ``suffix``."""
        return sum(1 for r in self.requests if r.method == method and r.path.endswith(suffix))

    # ---- ASGI side

    async def _endpoint(self, request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            raw_path=request.scope["raw_path"],
            path=request.scope["path"],
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        with self._lock:
            self._requests.append(recorded)
            reply = self._queue.popleft() if self._queue else None
            fallback = self._fallback
        if reply is None:
            reply = fallback(recorded) if fallback else Reply(500, body="no scripted reply")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.json is not _NO_JSON:
            content = json.dumps(reply.json).encode()
            media_type = "application/json"
        else:
            content = reply.body.encode() if isinstance(reply.body, str) else reply.body
            media_type = reply.content_type
        return Response(
            content, status_code=reply.status, headers=reply.headers, media_type=media_type
        )

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[ScriptedServer]:
        """Serve on a free port of 127.0.0.1 in a daemon thread until the block exits."""
        server = cls()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            server.app,
            http="h11",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not uv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("scripted server did not start")
            time.sleep(0.002)
        server.base_url = f"http://127.0.0.1:{port}"
        try:
            yield server
        finally:
            uv.should_exit = True
            thread.join(timeout=5)
            sock.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on, for real "connection refused" errors."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeSendbird:
    """Stateful stand-in for Sendbird's users and session-token endpoints.

    Enough behaviour for service-level tests: users are stored, duplicate creates get
    400202, unknown users 400201, tokens are numbered JWT-shaped strings that echo the
    requested ``expires_at``. Per-route failures can be queued with :meth:`fail_next`.
    """

    def __init__(self, token_delay: float = 0.0) -> None:
        """Create an empty fake.

        Args:
            token_delay: Seconds each token issuance takes, to widen race windows.
        """
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: list[str] = []
        self.token_delay = token_delay
        self._serial = itertools.count(1)
        self._failures: dict[str, deque[Reply]] = {}

    def add_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store a user as if it had been created earlier (with no metadata by default)."""
        self.users[user_id] = {
            "user_id": user_id,
            "nickname": nickname,
            "profile_url": profile_url,
            "metadata": dict(metadata or {}),
        }

    def fail_next(self, route: str, *replies: Reply) -> None:
        """Answer the next requests to ``route`` with ``replies``.

        Args:
            route: One of ``"get_user"``, ``"create_user"``, ``"update_user"``,
                ``"issue_token"``, ``"revoke"``.
            *replies: The answers, in order.
        """
        self._failures.setdefault(route, deque()).extend(replies)

    def __call__(self, request: RecordedRequest) -> Reply:
        """Handle one request (called from the server thread)."""
        seg = request.segments  # ["v3", "users", <id>, "token"?]
        route = self._route(request.method, seg)
        queued = self._failures.get(route)
        if queued:
            return queued.popleft()
        if route == "create_user":
            data = request.json()
            if data["user_id"] in self.users:
                return sendbird_error(400202, '"User" already exists.')
            self.users[data["user_id"]] = {
                "user_id": data["user_id"],
                "nickname": data["nickname"],
                "profile_url": data.get("profile_url", ""),
                "metadata": dict(data.get("metadata") or {}),
            }
            return Reply(json=self.users[data["user_id"]])
        if route == "unknown":
            return Reply(404, body="<html><title>404 Not Found</title></html>")
        user = self.users.get(seg[2])
        if user is None:
            return sendbird_error(400201, '"User" not found.')
        if route == "get_user":
            return Reply(json={**user, "access_token": "", "is_online": False})
        if route == "update_user":
            user.update(request.json())
            return Reply(json=user)
        if route == "issue_token":
            token = f"eyJhbGciOiJIUzI1NiJ9.fake-{next(self._serial)}.c2lnbmF0dXJl"
            self.tokens.append(token)
            expires_at = request.json()["expires_at"]
            return Reply(json={"token": token, "expires_at": expires_at}, delay=self.token_delay)
        return Reply(json={})  # revoke

    @staticmethod
    def _route(method: str, seg: list[str]) -> str:
        if seg[:2] != ["v3", "users"]:
            return "unknown"
        if len(seg) == 2 and method == "POST":
            return "create_user"
        if len(seg) == 3:
            return {"GET": "get_user", "PUT": "update_user"}.get(method, "unknown")
        if len(seg) == 4 and seg[3] == "token":
            return {"POST": "issue_token", "DELETE": "revoke"}.get(method, "unknown")
        return "unknown"
