"""A direct route for Reflex's event WebSocket, past the HTTP middleware it never uses.

Reflex builds its backend as two Starlette apps, one mounted in the other (the outer one
with CORS and Reflex's context middleware, the inner one with CORS again, error and
exception middleware and the router), and the app's own API dispatch sits between them.
Every layer is a coroutine, and for a WebSocket each one stays suspended for as long as the
tab is open, with its own wrapper around ``send`` that every outgoing delta passes through.
None of them does anything for the event socket: the CORS and error middleware pass
WebSockets straight on, the socket's origin is checked by Socket.IO itself
(``cors_allowed_origins``), and the API's routes are HTTP only.

`EventSocketShortcut` therefore hands a WebSocket for Reflex's event endpoint straight to
the app Reflex mounted there (its Socket.IO app, inside its own subprotocol-header
middleware), with Reflex's contexts set as its context middleware sets them
(``App.set_contexts``). Everything else takes the whole stack as before. Measured with
``benchmarks.capacity``: an idle tab costs about 10 KiB less, and each delta a little less
CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Mount

if TYPE_CHECKING:
    import reflex as rx
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["EventSocketShortcut", "mounted_event_app"]


def mounted_event_app(reflex_app: rx.App) -> tuple[str, ASGIApp]:
    """The event endpoint's path and the app Reflex mounted there.

    Raises:
        RuntimeError: Reflex mounted nothing at its event endpoint (a Reflex upgrade
            changed how it builds its backend): better to fail at start than to serve
            tabs through a guess.
    """
    from reflex_base import constants
    from reflex_base.config import get_config

    path = get_config().prepend_backend_path(str(constants.Endpoint.EVENT))
    api = reflex_app._api  # Reflex's backend Starlette app, built by App.__call__
    for route in api.routes if api is not None else ():
        if isinstance(route, Mount) and route.path == path:
            return path, route.app
    raise RuntimeError(f"Reflex mounted no app at its event endpoint {path!r}")


class EventSocketShortcut:
    """ASGI app: the event WebSocket to Reflex's socket app, everything else to `app`."""

    def __init__(self, app: ASGIApp, reflex_app: rx.App) -> None:
        """Find the socket app now; `app` is the backend `App.__call__` returned."""
        self.app = app
        self.reflex_app = reflex_app
        self.path, self.socket_app = mounted_event_app(reflex_app)
        self._prefix = self.path.rstrip("/") + "/"

    def is_event_socket(self, scope: Scope) -> bool:
        """Whether `scope` is a WebSocket for the path Starlette would route to the mount."""
        if scope["type"] != "websocket":
            return False
        path: str = scope["path"]
        return path == self.path or path.startswith(self._prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection or request."""
        if not self.is_event_socket(scope):
            await self.app(scope, receive, send)
            return
        # As Starlette's Mount passes it on (Socket.IO serves any path under it).
        mounted = {**scope, "root_path": scope.get("root_path", "") + self.path}
        with self.reflex_app.set_contexts():
            await self.socket_app(mounted, receive, send)
