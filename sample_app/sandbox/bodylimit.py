"""ASGI middleware bounding request bodies before any handler reads them.

A public sandbox must not buffer whatever a client sends. A declared ``Content-Length`` above
the limit is answered 413 at once, before the body is read and before routing or
authentication; a chunked body is counted as it arrives and cut off the moment it passes the
limit. Either way the answer is Sendbird's error envelope (:func:`.httputil.body_too_large`)
with CORS headers, and the connection is closed, since the rest of the body was never read.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .httputil import ApiError, body_too_large, error_response

logger = logging.getLogger("sample_app.sandbox.http")


class _BodyTooLarge(ApiError):
    """Raised from ``receive`` so the dispatcher renders it like any other API error."""


class BodyLimitMiddleware:
    """Refuse HTTP requests whose body exceeds ``limit`` bytes (WebSockets pass through).

    Args:
        app: The wrapped ASGI app.
        limit: Largest accepted body in bytes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            logger.info(
                "%s %s -> 413 (Content-Length %d)", scope["method"], scope["path"], declared
            )
            await error_response(body_too_large())(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    error = body_too_large()
                    raise _BodyTooLarge(error.code, error.message, error.status, error.headers)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge as error:  # a handler let it through: answer it here
            if started:
                raise
            await error_response(error)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length (the server has already refused malformed values)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
