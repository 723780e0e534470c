"""The event WebSocket's direct route (`sample_app.event_socket`), on a real uvicorn server.

A stand-in for Reflex's backend: a Starlette app whose middleware records every connection
it sees, with a WebSocket app mounted at Reflex's event endpoint, as Reflex mounts its
Socket.IO app. What the tests look at is where a connection ends up and what it carries
there: Reflex's contexts set, the mount's root path, the upgrade request's id.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from sample_app.event_socket import EventSocketShortcut, mounted_event_app
from sample_app.request_context import RequestIdMiddleware, request_id_var
from tests.http_api.conftest import serving


class FakeReflexApp:
    """What the shortcut uses of `rx.App`: its backend (`_api`) and `set_contexts`."""

    def __init__(self, api: Starlette | None) -> None:
        self._api = api
        self.contexts_set = False

    @contextlib.contextmanager
    def set_contexts(self) -> Iterator[None]:
        self.contexts_set = True
        try:
            yield
        finally:
            self.contexts_set = False


class Recorder:
    """Middleware noting the path of every connection that passes it."""

    seen: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            Recorder.seen.append(f"{scope['type']} {scope['path']}")
        await self.app(scope, receive, send)


@pytest.fixture
def backend() -> Iterator[tuple[str, FakeReflexApp]]:
    """The shortcut in front of the stand-in backend, request ids outermost, served."""
    Recorder.seen = []
    reflex_app = FakeReflexApp(None)

    async def socket_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # Engine.IO's polling, were it enabled
            await PlainTextResponse("mounted app, through the stack")(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        await websocket.send_json(
            {
                "path": scope["path"],
                "root_path": scope["root_path"],
                "contexts_set": reflex_app.contexts_set,
                "request_id": request_id_var.get(),
            }
        )
        await websocket.close()

    async def other_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"path": websocket.scope["path"], "stack": True})
        await websocket.close()

    api = Starlette(
        routes=[
            Mount("/_event", app=socket_app),
            WebSocketRoute("/_eventx", other_socket),
        ],
        middleware=[Middleware(Recorder)],
    )
    reflex_app._api = api
    app = RequestIdMiddleware(EventSocketShortcut(api, reflex_app))  # type: ignore[arg-type]
    with serving(app) as url:
        yield url, reflex_app


def _socket(url: str, path: str, **kwargs: Any) -> dict[str, Any]:
    ws_url = url.replace("http://", "ws://") + path
    with websockets.sync.client.connect(ws_url, **kwargs) as connection:
        assert connection.response is not None
        reply = json.loads(connection.recv(timeout=5))
        reply["response_request_id"] = connection.response.headers.get("X-Request-ID")
        return reply


def test_the_event_socket_goes_straight_to_the_mounted_app_with_reflexs_contexts(
    backend: tuple[str, FakeReflexApp],
) -> None:
    url, reflex_app = backend
    reply = _socket(
        url, "/_event/?EIO=4&transport=websocket", additional_headers={"X-Request-ID": "ws-1"}
    )
    assert reply["path"] == "/_event/"
    assert reply["root_path"] == "/_event"  # as Starlette's Mount passes it on
    assert reply["contexts_set"] is True
    # the upgrade request's id still reaches the connection and its answer
    assert reply["request_id"] == reply["response_request_id"] == "ws-1"
    assert Recorder.seen == []  # none of the backend's layers was entered
    assert reflex_app.contexts_set is False  # reset once the connection ended


def test_other_connections_take_the_whole_stack(backend: tuple[str, FakeReflexApp]) -> None:
    url, _reflex_app = backend
    # a WebSocket whose path only starts like the endpoint
    assert _socket(url, "/_eventx")["stack"] is True
    # HTTP to the endpoint (Engine.IO's polling, were it enabled)
    assert httpx.get(f"{url}/_event/", timeout=5).text == "mounted app, through the stack"
    assert Recorder.seen == ["websocket /_eventx", "http /_event/"]


def test_a_backend_without_the_event_mount_fails_at_start() -> None:
    empty = FakeReflexApp(Starlette(routes=[Route("/ping", lambda _r: PlainTextResponse("pong"))]))
    with pytest.raises(RuntimeError, match="no app at its event endpoint '/_event'"):
        mounted_event_app(empty)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no app at its event endpoint"):
        mounted_event_app(FakeReflexApp(None))  # type: ignore[arg-type]
