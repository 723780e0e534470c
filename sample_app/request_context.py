"""A request id for every log line: per HTTP request, WebSocket connection and Reflex event.

Behind the reverse proxy several backend workers write interleaved logs; a request id (and
the worker id, see :func:`sample_app.logging_config.worker_id`) ties the lines of one
request together, and to the proxy's own access log.

* :class:`RequestIdMiddleware`, the outermost ASGI middleware of the backend
  (``SampleApp.__call__``): takes ``X-Request-ID`` from the proxy when it is a sane value
  (1 to 128 characters of ``[A-Za-z0-9._-]``: nginx's ``$request_id`` is 32 hex digits), else
  makes one (32 hex digits), keeps it in :data:`~sample_app.logging_config.request_id_var`
  while the request runs, and sends it back as ``X-Request-ID``. Anything else the proxy
  (or a client) sent is dropped rather than cleaned up: a header that reaches log lines
  must not be able to forge them. A WebSocket connection (Reflex's ``/_event``) gets one
  id from its upgrade request, sent back on the accept.
* :class:`EventRequestIds`, a Reflex event middleware: Reflex runs every event handler in a
  task of its own, started by its event queue, not inside the WebSocket's request, so the
  connection's id does not reach handlers. This gives each event the id ``ev-<txid>``
  (Reflex's transaction id of the event, which its own error logs print as ``[txid=…]``)
  for the duration of its task: preprocessing, the handler, and what they log.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Final

from reflex.middleware.middleware import Middleware
from reflex_base.event.context import EventContext

from sample_app.logging_config import request_id_var

if TYPE_CHECKING:
    from reflex.app import App
    from reflex.state import BaseState, StateUpdate
    from reflex_base.event import Event
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_ID_HEADER",
    "EventRequestIds",
    "RequestIdMiddleware",
    "new_request_id",
    "sane_request_id",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
MAX_REQUEST_ID_LENGTH: Final = 128
_HEADER_KEY: Final = REQUEST_ID_HEADER.lower().encode("ascii")
_SANE: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID_LENGTH}}}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` when it is a usable request id, else ``None`` (to make a new one)."""
    if value is not None and _SANE.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    """A fresh request id: 32 hex digits, like nginx's ``$request_id``."""
    return uuid.uuid4().hex


def _given_request_id(scope: Scope) -> str | None:
    """The first ``X-Request-ID`` of the request, if it has one."""
    for key, value in scope.get("headers", ()):
        if key.lower() == _HEADER_KEY:
            return bytes(value).decode("latin-1")
    return None


def _with_request_id(
    headers: list[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    """Response headers with exactly one ``X-Request-ID``: ours."""
    kept = [(key, value) for key, value in headers if key.lower() != _HEADER_KEY]
    return [*kept, (_HEADER_KEY, request_id.encode("ascii"))]


class RequestIdMiddleware:
    """Bind each HTTP request and WebSocket connection to a request id (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id set, and send the id back with the response."""
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        request_id = sane_request_id(_given_request_id(scope)) or new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = list(message.get("headers", ()))
                message = {**message, "headers": _with_request_id(headers, request_id)}
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class EventRequestIds(Middleware):
    """Give each Reflex event handler its own request id, ``ev-<txid>`` (module docstring)."""

    async def preprocess(self, app: App, state: BaseState, event: Event) -> StateUpdate | None:
        """Set the event's id in its task's context; never changes the event.

        Returns:
            ``None``: the event is processed as usual.
        """
        try:
            txid = EventContext.get().txid
        except LookupError:  # not inside Reflex's event processor
            txid = ""
        # The event's task has a context of its own: nothing to reset afterwards.
        request_id_var.set(f"ev-{txid}" if sane_request_id(txid) else f"ev-{new_request_id()}")
        return None
