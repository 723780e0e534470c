"""Starlette application wiring the sandbox's HTTP and WebSocket surfaces on one port.

All HTTP requests go through one dispatcher so that every ``/v3`` call gets the same treatment
in the same order: count it, apply an outage or injected fault, apply the rate limiter, run the
handler, render errors as Sendbird envelopes, add CORS headers, log one line. WebSocket upgrades
on any path go to the chat socket (the widget connects to ``{wsHost}/?p=JS&...``).

Two guards sit in front of everything, so that no route can forget them: request bodies are
bounded before they are read (:mod:`.bodylimit`), and the whole ``/__sandbox__`` mount needs the
``Api-Token`` except the routes in :data:`.control.OPEN_ROUTES`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import control, platform_api, widget_api
from .bodylimit import BodyLimitMiddleware
from .config import SandboxConfig, check_api_token_value
from .context import SandboxContext
from .faults import apply_faults
from .httputil import (
    CORS_HEADERS,
    MAX_REQUEST_BODY_BYTES,
    ApiError,
    ApiRequest,
    RouteSpec,
    error_response,
    find_route,
    json_response,
    raw_segments,
)
from .platform_api import require_api_token
from .websocket import handle_websocket

logger = logging.getLogger("sample_app.sandbox.http")

HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

__all__ = ["SandboxConfig", "create_sandbox_app"]


def create_sandbox_app(config: SandboxConfig) -> Starlette:
    """Build the sandbox ASGI app.

    The app owns a :class:`~sample_app.sandbox.context.SandboxContext` (available as
    ``app.state.sandbox``); its lifespan shutdown closes sockets and the database.

    Args:
        config: Sandbox settings.

    Returns:
        A Starlette app serving the Platform API, the widget REST API, the chat WebSocket and
        the ``/__sandbox__`` control surface (its routes are ``app.state.sandbox_control_routes``).

    Raises:
        ValueError: The API token is too short or malformed (also for a configuration built
            without ``SandboxConfig.__post_init__``).
    """
    check_api_token_value(config.api_token)
    ctx = SandboxContext(config)
    info: dict[str, Any] = {"http_url": config.public_url, "ws_url": None}
    api_routes = platform_api.routes(ctx) + widget_api.routes(ctx)
    control_routes = control.routes(ctx, info)

    async def http_endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS_HEADERS)
        segments = raw_segments(request.scope)
        if segments is None:
            return error_response(ApiError(400111, "Invalid percent-encoding in the path."))
        if segments and segments[0] == "__sandbox__":
            return await _dispatch_control(request, segments)
        if segments and segments[0] == "v3":
            return await _dispatch_api(request, segments)
        logger.info("%s %s -> 404", request.method, request.url.path)
        return error_response(ApiError(400404, "Not found.", status=404))

    async def _dispatch_control(request: Request, segments: list[str]) -> Response:
        match = find_route(control_routes, _method(request), segments)
        if match is None or match[0].key not in control.OPEN_ROUTES:
            try:  # one guard for the whole mount: unknown and future routes included
                require_api_token(ctx, request.headers.get("Api-Token"))
            except ApiError as error:
                logger.info("%s %s -> 401 (control)", request.method, request.url.path)
                return error_response(error)
        if match is None:
            logger.info("%s %s -> 404", request.method, request.url.path)
            return error_response(ApiError(400404, "Unknown sandbox control route.", status=404))
        spec, params = match
        response = await _run(spec, request, params)
        _log(spec.key, params, response)
        return response

    async def _dispatch_api(request: Request, segments: list[str]) -> Response:
        method = _method(request)
        match = find_route(api_routes, method, segments)
        params: dict[str, str]
        if match is None:
            key, surface, spec, params = f"{method} /v3/* (unhandled)", "widget_api", None, {}
        else:
            spec, params = match
            key, surface = spec.key, spec.surface
            if surface == "auto":
                by_session = "Session-Key" in request.headers and "Api-Token" not in request.headers
                surface = "widget_api" if by_session else "platform_api"
        ctx.stats.count(surface, key)
        decoded_path = "/" + "/".join(segments)
        injected = await apply_faults(ctx.faults, method, decoded_path)
        if injected is not None:
            _log(key, params, injected, note="injected")
            return injected
        if surface == "platform_api":
            limited = ctx.faults.check_rate_limit(method, key)
            if limited is not None:
                response = error_response(limited)
                _log(key, params, response, note="rate limited")
                return response
        if spec is None:
            logger.info("%s %s -> 200 {} (unhandled SDK route)", method, request.url.path)
            return json_response({})
        response = await _run(spec, request, params)
        _log(key, params, response)
        return response

    async def _run(spec: RouteSpec, request: Request, params: dict[str, str]) -> Response:
        try:
            return await spec.handler(ApiRequest(request=request, params=params, route=spec))
        except ApiError as error:
            return error_response(error)
        except Exception:
            logger.exception("%s failed", spec.key)
            return error_response(ApiError(500901, "Internal error in the sandbox.", status=500))

    async def ws_endpoint(websocket: WebSocket) -> None:
        await handle_websocket(ctx, websocket)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.shutdown()

    app = Starlette(
        routes=[
            Route("/{path:path}", http_endpoint, methods=HTTP_METHODS),
            WebSocketRoute("/{path:path}", ws_endpoint),
        ],
        lifespan=lifespan,
        middleware=[Middleware(BodyLimitMiddleware, limit=MAX_REQUEST_BODY_BYTES)],
    )
    app.state.sandbox = ctx
    app.state.sandbox_control_routes = control_routes
    app.state.sandbox_info = info
    return app


def _method(request: Request) -> str:
    return "GET" if request.method == "HEAD" else request.method


def _log(key: str, params: dict[str, str], response: Response, note: str = "") -> None:
    """One INFO line per call: route key, ids, status and Sendbird code. Never credentials."""
    ids = " ".join(f"{name}={value!r}" for name, value in params.items())
    code = ""
    if response.status_code >= 400:
        body = bytes(response.body)
        marker = b'"code":'
        at = body.find(marker)
        if at >= 0:
            digits = body[at + len(marker) : at + len(marker) + 7]
            code = f" code={digits.decode('ascii', 'replace').rstrip(',}')}"
    suffix = f" ({note})" if note else ""
    ids = f" {ids}" if ids else ""
    logger.info("%s%s -> %d%s%s", key, ids, response.status_code, code, suffix)
