"""HTTP plumbing shared by the Platform API, the widget REST API and the control surface.

Sendbird answers every failure with the same JSON envelope, and user ids travel
percent-encoded inside path segments (``a%2Fb`` is the id ``a/b``). Starlette's router works on
the already-decoded ``path``, where ``%2F`` is indistinguishable from a real ``/``, so this
module routes on ``scope["raw_path"]`` and decodes each segment itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
MAX_REQUEST_BODY_BYTES = 64 * 1024
"""Largest request body any route reads (the biggest real one, a user with metadata, is a few
KiB). Enforced before the body is read by :mod:`.bodylimit`; see :func:`body_too_large`."""

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Expose-Headers": (
        "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-RetryAfter, Retry-After"
    ),
    "Access-Control-Max-Age": "600",
}


def now_ms() -> int:
    """Return the current Unix time in milliseconds (Sendbird's unit for most timestamps)."""
    return int(time.time() * 1000)


class ApiError(Exception):
    """A failure that must reach the client as a Sendbird error envelope.

    Args:
        code: Sendbird error code, e.g. 400201.
        message: Human-readable text; never contains secrets.
        status: HTTP status. Sendbird uses 400 for nearly every 400xxx code.
        headers: Extra response headers (rate-limit headers for 429).
    """

    def __init__(
        self,
        code: int,
        message: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}


def body_too_large() -> ApiError:
    """The answer to a body over :data:`MAX_REQUEST_BODY_BYTES`: HTTP 413, Sendbird's envelope.

    The code is 400403 (``InvalidJsonRequestBody``), the one the sandbox always used for an
    oversize body: Sendbird documents no code of its own for it.
    """
    return ApiError(
        400403,
        f"Request body is too large (limit {MAX_REQUEST_BODY_BYTES} bytes).",
        status=413,
        headers={"Connection": "close"},
    )


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise ``payload`` as UTF-8 JSON with the CORS headers the browser needs."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    merged = dict(CORS_HEADERS)
    if headers:
        merged.update(headers)
    return Response(body, status_code=status, headers=merged, media_type=JSON_MEDIA_TYPE)


def error_response(error: ApiError) -> Response:
    """Render an :class:`ApiError` as Sendbird's ``{"error", "code", "message"}`` envelope."""
    envelope = {"error": True, "code": error.code, "message": error.message}
    return json_response(envelope, status=error.status, headers=error.headers)


def raw_segments(scope: MutableMapping[str, Any]) -> list[str] | None:
    """Split the undecoded request path into percent-decoded segments.

    Returns:
        The decoded segments (leading empty segment dropped), or ``None`` when a segment is
        not valid UTF-8 after decoding.
    """
    raw = scope.get("raw_path")
    if raw is None:
        raw = scope.get("path", "/").encode("utf-8")
    raw = raw.split(b"?", 1)[0]
    parts = raw.split(b"/")
    if parts and parts[0] == b"":
        parts = parts[1:]
    decoded: list[str] = []
    for part in parts:
        try:
            decoded.append(unquote_to_bytes(part).decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return decoded


@dataclass
class ApiRequest:
    """What a route handler gets: the Starlette request plus decoded path parameters."""

    request: Request
    params: dict[str, str]
    route: RouteSpec
    _json: Any = field(default=None, init=False)
    _json_loaded: bool = field(default=False, init=False)

    def header(self, name: str) -> str | None:
        """Return a request header or ``None`` (case-insensitive)."""
        return self.request.headers.get(name)

    def query(self, name: str, default: str | None = None) -> str | None:
        """Return a query parameter or ``default``."""
        return self.request.query_params.get(name, default)

    async def json_body(self, *, required: bool = False) -> dict[str, Any]:
        """Parse the JSON body as an object.

        Args:
            required: When false, an empty body counts as ``{}``.

        Raises:
            ApiError: 400403 for bodies that are too big, not JSON or not a JSON object.
        """
        if self._json_loaded:
            return self._json
        body = await self.request.body()  # bounded by the body-limit middleware
        if len(body) > MAX_REQUEST_BODY_BYTES:
            raise body_too_large()
        if not body.strip():
            if required:
                raise ApiError(400403, "Invalid JSON request body: the body is empty.")
            parsed: Any = {}
        else:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400403, "Invalid JSON request body.") from exc
        if not isinstance(parsed, dict):
            raise ApiError(400403, "Invalid JSON request body: expected a JSON object.")
        self._json = parsed
        self._json_loaded = True
        return parsed


Handler = Callable[[ApiRequest], Awaitable[Response]]


@dataclass(frozen=True)
class RouteSpec:
    """One REST route.

    Attributes:
        method: HTTP method.
        pattern: Path segments; ``{name}`` captures one segment, ``{name...}`` captures one or
            more segments joined with ``/`` (the SDK does not encode the user id in
            ``/users/{id}/session_key``).
        surface: ``platform_api``, ``widget_api`` or ``control``; ``auto`` means "decided by
            the credential header" (``PUT /v3/users/{id}`` serves both).
        handler: The coroutine answering the request.
    """

    method: str
    pattern: tuple[str, ...]
    surface: str
    handler: Handler

    @property
    def key(self) -> str:
        """Stable name used in stats and logs, e.g. ``GET /v3/users/{user_id}``."""
        shown = [p.replace("...", "") for p in self.pattern]
        return f"{self.method} /" + "/".join(shown)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Return the captured parameters if ``segments`` fit this pattern."""
        greedy = [i for i, p in enumerate(self.pattern) if p.endswith("...}")]
        if not greedy:
            if len(segments) != len(self.pattern):
                return None
            return _match_fixed(self.pattern, segments)
        index = greedy[0]
        head, tail = self.pattern[:index], self.pattern[index + 1 :]
        if len(segments) < len(head) + len(tail) + 1:
            return None
        params = _match_fixed(head, segments[: len(head)])
        if params is None:
            return None
        tail_segments = segments[len(segments) - len(tail) :] if tail else []
        tail_params = _match_fixed(tail, tail_segments)
        if tail_params is None:
            return None
        middle = segments[len(head) : len(segments) - len(tail)]
        value = "/".join(middle)
        if not value:
            return None
        params.update(tail_params)
        params[self.pattern[index][1:-4]] = value
        return params


def _match_fixed(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith("{"):
            if actual == "":
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params


def route(method: str, path: str, surface: str, handler: Handler) -> RouteSpec:
    """Build a :class:`RouteSpec` from a readable path such as ``/v3/users/{user_id}``."""
    pattern = tuple(path.strip("/").split("/"))
    return RouteSpec(method=method, pattern=pattern, surface=surface, handler=handler)


def find_route(
    routes: list[RouteSpec], method: str, segments: list[str]
) -> tuple[RouteSpec, dict[str, str]] | None:
    """Return the route matching ``method`` and ``segments``.

    Fixed-length routes win over greedy ones, and among greedy routes the one with more
    literal segments wins, so ``/users/{id...}/my_group_channels`` beats ``/users/{id...}``.
    """

    def specificity(spec: RouteSpec) -> tuple[bool, int]:
        greedy = any(p.endswith("...}") for p in spec.pattern)
        literals = sum(1 for p in spec.pattern if not p.startswith("{"))
        return greedy, -literals

    ordered = sorted(routes, key=specificity)
    for spec in ordered:
        if spec.method != method:
            continue
        params = spec.match(segments)
        if params is not None:
            return spec, params
    return None
