"""Fault injection, outages, rate limiting and call counters.

The point of the sandbox is to exercise the unhappy paths of our server and of the widget
(429 with Sendbird's rate-limit headers, 5xx, slow answers, total outages) on demand and
deterministically, and to count how many Platform API calls a page view costs.
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from .httputil import ApiError, error_response, json_response, now_ms

DEFAULT_CODES = {
    401: 400401,
    403: 403100,
    404: 400404,
    429: 500910,
    500: 500901,
    503: 500503,
}
DEFAULT_MESSAGES = {
    500901: "Internal server error (injected by the sandbox).",
    500503: "Service unavailable (injected by the sandbox).",
}
MAX_DELAY_SECONDS = 120.0
_NO_BODY = object()


def rate_limit_headers(limit: str, retry_after: float) -> dict[str, str]:
    """Headers Sendbird puts on a 429 (``X-RateLimit-*``) plus the standard ``Retry-After``."""
    return {
        "X-RateLimit-Limit": limit,
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-RetryAfter": _fmt_seconds(retry_after),
        "Retry-After": str(max(0, math.ceil(retry_after))),
    }


def rate_limit_error(limit: str, retry_after: float) -> ApiError:
    """A Sendbird-shaped 429: HTTP 429, code 500910 and the rate-limit headers."""
    message = (
        f"Too many requests (scope: app, limit: {limit}, remaining: 0, "
        f"retry_after: {_fmt_seconds(retry_after)}s)"
    )
    return ApiError(500910, message, status=429, headers=rate_limit_headers(limit, retry_after))


def _fmt_seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


@dataclass
class Fault:
    """One injected answer for the next ``remaining`` matching calls.

    Attributes:
        id: Sequence number, for listing.
        method: HTTP method or ``*``.
        path: ``fnmatch`` glob on the decoded path, e.g. ``/v3/users/*/token``.
        remaining: Calls left to fault; ``-1`` means until cleared.
        status: HTTP status to answer; ``None`` means "only delay, then answer normally".
        code: Sendbird error code of the envelope.
        message: Envelope message.
        delay: Seconds to wait before answering.
        headers: Extra response headers.
        retry_after: Seconds for the 429 headers.
        limit: ``X-RateLimit-Limit`` value for 429s.
        body: Raw JSON body replacing the envelope, if given.
        hits: Calls this fault has answered.
    """

    id: int
    method: str
    path: str
    remaining: int
    status: int | None
    code: int | None
    message: str | None
    delay: float
    headers: dict[str, str]
    retry_after: float
    limit: str
    body: Any = _NO_BODY
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether a call with this method and decoded path is affected."""
        if self.method not in ("*", method):
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def response(self) -> Response | None:
        """The injected response, or ``None`` for a delay-only fault."""
        if self.status is None:
            return None
        if self.body is not _NO_BODY:
            return json_response(self.body, status=self.status, headers=self.headers)
        code = self.code if self.code is not None else _default_code(self.status)
        if self.status == 429:
            error = rate_limit_error(self.limit, self.retry_after)
            error.code = code
            if self.message is not None:
                error.message = self.message
        else:
            message = self.message or DEFAULT_MESSAGES.get(code, "Error injected by the sandbox.")
            error = ApiError(code, message, status=self.status)
        error.headers.update(self.headers)
        return error_response(error)

    def to_json(self) -> dict[str, Any]:
        """Listing form."""
        data: dict[str, Any] = {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "remaining": self.remaining,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "delay": self.delay,
            "headers": self.headers,
            "retry_after": self.retry_after,
            "limit": self.limit,
            "hits": self.hits,
        }
        if self.body is not _NO_BODY:
            data["body"] = self.body
        return data


def _default_code(status: int) -> int:
    if status in DEFAULT_CODES:
        return DEFAULT_CODES[status]
    return 500901 if status >= 500 else 400111


class FaultEngine:
    """Holds injected faults, the outage window and the optional rate limiter."""

    def __init__(self, rate_limits: dict[str, int] | None = None) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1
        self._outage_until = 0.0
        self._rate_limits: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = {}
        self.set_rate_limits(rate_limits)

    # -- faults ---------------------------------------------------------------------------

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate a control-surface fault spec and register it.

        Raises:
            ApiError: 400100/400101/400111 for malformed specs.
        """
        method = _opt_str(spec, "method", "*").upper()
        path = _opt_str(spec, "path", "*")
        count = _opt_int(spec, "count", 1)
        if count == 0 or count < -1:
            raise ApiError(400111, '"count" must be a positive integer or -1 (until cleared).')
        status = spec.get("status")
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
        ):
            raise ApiError(400111, '"status" must be an HTTP status between 100 and 599.')
        code = spec.get("code")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise ApiError(400101, '"code" should be a number.')
        message = spec.get("message")
        if message is not None and not isinstance(message, str):
            raise ApiError(400100, '"message" should be a string.')
        delay = _opt_float(spec, "delay", 0.0)
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            raise ApiError(400111, f'"delay" must be between 0 and {MAX_DELAY_SECONDS:g} seconds.')
        if status is None and delay == 0 and "body" not in spec:
            raise ApiError(400111, 'A fault needs a "status", a "delay" or both.')
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ApiError(400103, '"headers" should be an object of strings.')
        retry_after = _opt_float(spec, "retry_after", 1.0)
        if retry_after < 0:
            raise ApiError(400111, '"retry_after" must not be negative.')
        limit = _opt_str(spec, "limit", "100;w=60")
        fault = Fault(
            id=self._next_id,
            method=method,
            path=path,
            remaining=count,
            status=status if status is not None else (200 if "body" in spec else None),
            code=code,
            message=message,
            delay=delay,
            headers=dict(headers),
            retry_after=retry_after,
            limit=limit,
            body=spec.get("body", _NO_BODY),
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume and return the oldest fault matching this call, if any."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def list(self) -> list[Fault]:
        """Active faults in registration order."""
        return list(self._faults)

    def clear(self) -> int:
        """Remove all faults and end any outage; returns how many faults were removed."""
        removed = len(self._faults)
        self._faults.clear()
        self._outage_until = 0.0
        return removed

    # -- outage ---------------------------------------------------------------------------

    def start_outage(self, seconds: float) -> int:
        """Answer every REST call with 503 for ``seconds``; returns the end in Unix ms."""
        self._outage_until = time.monotonic() + seconds if seconds > 0 else 0.0
        return now_ms() + int(seconds * 1000) if seconds > 0 else 0

    def outage_remaining(self) -> float:
        """Seconds of outage left (0 when none)."""
        return max(0.0, self._outage_until - time.monotonic())

    def outage_error(self) -> ApiError | None:
        """The 503 to answer while an outage lasts."""
        remaining = self.outage_remaining()
        if remaining <= 0:
            return None
        return ApiError(
            500503,
            "Service unavailable (sandbox outage).",
            status=503,
            headers={"Retry-After": str(max(1, math.ceil(remaining)))},
        )

    # -- rate limiting --------------------------------------------------------------------

    def set_rate_limits(self, limits: dict[str, int] | None) -> dict[str, int]:
        """Replace the per-endpoint limits (requests per second by HTTP method).

        Raises:
            ApiError: 400111 if a limit is not a positive integer.
        """
        cleaned: dict[str, int] = {}
        for method, value in (limits or {}).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ApiError(400111, "Rate limits must be positive integers per second.")
            cleaned[str(method).upper()] = value
        self._rate_limits = cleaned
        self._windows.clear()
        return dict(cleaned)

    @property
    def rate_limits(self) -> dict[str, int]:
        """Current limits (empty when disabled)."""
        return dict(self._rate_limits)

    def check_rate_limit(self, method: str, route_key: str) -> ApiError | None:
        """Count a call against its endpoint's one-second window; 429 error when over."""
        limit = self._rate_limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        window = self._windows.setdefault(route_key, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(0.001, 1.0 - (now - window[0]))
            return rate_limit_error(f"{limit};w=1", retry_after)
        window.append(now)
        return None

    def reset(self) -> None:
        """Forget faults, outage and rate-limit windows (limits themselves stay)."""
        self.clear()
        self._windows.clear()


async def apply_faults(engine: FaultEngine, method: str, path: str) -> Response | None:
    """Outage or injected fault for a REST call, or ``None`` to answer normally."""
    outage = engine.outage_error()
    if outage is not None:
        return error_response(outage)
    fault = engine.take(method, path)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    return fault.response()


@dataclass
class Stats:
    """Per-route call counters, exposed by ``GET /__sandbox__/stats``."""

    platform_api: Counter[str] = field(default_factory=Counter)
    widget_api: Counter[str] = field(default_factory=Counter)
    websocket: Counter[str] = field(default_factory=Counter)

    def count(self, surface: str, key: str) -> None:
        """Add one call to ``surface``'s counter for ``key`` (control calls are not counted)."""
        if surface == "platform_api":
            self.platform_api[key] += 1
        elif surface == "widget_api":
            self.widget_api[key] += 1

    def snapshot(self, active_connections: int) -> dict[str, Any]:
        """JSON form of all counters."""
        ws = {"connections": 0, "LOGI": 0, "MESG": 0}
        ws.update(self.websocket)
        ws["active_connections"] = active_connections
        return {
            "platform_api": dict(self.platform_api),
            "widget_api": dict(self.widget_api),
            "websocket": ws,
        }

    def reset(self) -> None:
        """Zero every counter."""
        self.platform_api.clear()
        self.widget_api.clear()
        self.websocket.clear()


def _opt_str(spec: dict[str, Any], name: str, default: str) -> str:
    value = spec.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or not value:
        raise ApiError(400100, f'"{name}" should be a non-empty string.')
    return value


def _opt_int(spec: dict[str, Any], name: str, default: int) -> int:
    value = spec.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400101, f'"{name}" should be a number.')
    return value


def _opt_float(spec: dict[str, Any], name: str, default: float) -> float:
    value = spec.get(name, default)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ApiError(400101, f'"{name}" should be a number.')
    return float(value)
