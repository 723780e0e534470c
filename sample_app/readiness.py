"""``GET /readyz`` (and HEAD): whether this worker can serve, for the proxy and orchestrator.

Reflex's ``/ping`` says only that the process answers and its ``/_health`` looks at Reflex's
own pieces; neither knows about the accounts database or Sendbird. This endpoint checks, all
at once and each within a short timeout, what a request of this app needs:

* ``database``: ``SELECT 1`` through the accounts engine, on a worker thread (the driver
  blocks).
* ``redis``: ``PING`` to ``REFLEX_REDIS_URL`` (or Reflex's ``redis_url``) on a connection of
  its own, when one is configured; ``{"ok": true, "skipped": true}`` otherwise.
* ``sendbird``: an authenticated ``GET /v3/bots/{bot_id}`` through the process's
  ``SendbirdClient`` (Sendbird or the sandbox). A success is reused for
  :data:`SENDBIRD_SUCCESS_TTL` seconds, so a proxy or orchestrator polling every second
  spends one call of the application's Platform API rate limit per window and worker, not
  one per poll. A rejected API token, a missing bot, an error answer and an unreachable
  Sendbird are "not ready", with Sendbird's error code when it gave one.

Every check runs single-flight: while one is still running (a database that does not answer
keeps its thread busy past the timeout), later polls wait for that one instead of starting
another, so a hung dependency cannot pile up threads or connections.

Answers (``Cache-Control: no-store``; HEAD gets the same status and headers, no body)::

    200 {"status": "ready", "checks": {"database": {"ok": true, "ms": 1.2}, ...},
         "worker": "w1"}
    503 {"status": "not_ready", "failing": ["sendbird"],
         "checks": {..., "sendbird": {"ok": false, "ms": 8.1,
                                      "reason": "Sendbird rejected the API token",
                                      "code": 400401}},
         "worker": "w1"}

Reasons are fixed phrases: no URL, host name, password or token is ever in the answer
(the endpoint may be reachable by anyone the proxy lets through). The details an operator
needs (the driver's or client's own message, with any password in it masked) go to the log,
once each time the set of failures changes, at WARNING; recovering is logged at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sample_app.logging_config import worker_id
from sample_app.sendbird_api import (
    SendbirdAPIError,
    SendbirdAuthError,
    SendbirdClient,
    SendbirdConnectionError,
    SendbirdError,
    SendbirdRateLimitError,
    SendbirdTimeoutError,
)
from sample_app.services import Services, get_services

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "DATABASE_TIMEOUT",
    "READY_PATH",
    "REDIS_TIMEOUT",
    "REDIS_URL_VARIABLE",
    "SENDBIRD_SUCCESS_TTL",
    "SENDBIRD_TIMEOUT",
    "CheckResult",
    "Readiness",
    "configured_redis_url",
    "routes",
]

logger = logging.getLogger(__name__)

READY_PATH: Final = "/readyz"
#: Seconds each check may take before it counts as failed.
DATABASE_TIMEOUT: Final = 1.5
REDIS_TIMEOUT: Final = 1.0
SENDBIRD_TIMEOUT: Final = 2.0
#: Seconds a successful Sendbird check is reused (read when a `Readiness` is created).
SENDBIRD_SUCCESS_TTL = 10.0
#: Reflex's variable for its Redis state manager (it overrides rxconfig's `redis_url`).
REDIS_URL_VARIABLE: Final = "REFLEX_REDIS_URL"
_REDIS_SCHEMES: Final = ("redis", "rediss", "unix")

_NO_STORE: Final = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        ok: Whether the dependency is usable (a skipped check is ok).
        ms: How long the check took, in milliseconds (of the reused call, when cached).
        reason: A short fixed phrase when not ok, or why it was skipped; never a secret.
        code: The dependency's own error code, when it gave one (Sendbird's).
        skipped: Nothing to check (e.g. no Redis configured).
        cached: A recent success, reused without asking again.
        detail: For the log only, never the answer: the underlying error's message.
    """

    ok: bool
    ms: float
    reason: str | None = None
    code: int | None = None
    skipped: bool = False
    cached: bool = False
    detail: str | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        """The check's entry in the answer (no `detail`)."""
        body: dict[str, Any] = {"ok": self.ok, "ms": self.ms}
        if self.skipped:
            body["skipped"] = True
        if self.cached:
            body["cached"] = True
        if self.reason is not None:
            body["reason"] = self.reason
        if self.code is not None:
            body["code"] = self.code
        return body


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _masked(text: str, *secrets: str | None) -> str:
    """`text` (its first line, at most 300 characters) with each secret replaced by ***."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:300]


class _SingleFlight:
    """At most one run of a probe at a time; callers arriving meanwhile share its result."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._task: asyncio.Task[CheckResult] | None = None

    async def run(self, probe: Callable[[], Awaitable[CheckResult]]) -> CheckResult:
        """The probe's result, or a failure after `timeout` seconds (the probe goes on)."""
        timeout = self.timeout
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._task = asyncio.ensure_future(probe())
            task.add_done_callback(_retrieve)
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            return CheckResult(
                False,
                _elapsed_ms(started),
                reason=f"no answer within {timeout:g} s",
                detail=f"timed out after {timeout:g} s",
            )


def _retrieve(task: asyncio.Task[CheckResult]) -> None:
    """Collect a probe's outcome even when every caller timed out (no 'never retrieved')."""
    if not task.cancelled():
        task.exception()


# ------------------------------------------------------------------------------- checks


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


async def _check_database(engine: Engine) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.to_thread(_select_one, engine)
    except Exception as error:  # any driver, any failure: not ready
        cause = getattr(error, "orig", None) or error
        return CheckResult(
            False,
            _elapsed_ms(started),
            reason=f"cannot connect or query ({type(error).__name__})",
            detail=f"{type(cause).__name__}: {_masked(str(cause), engine.url.password)}",
        )
    return CheckResult(True, _elapsed_ms(started))


def configured_redis_url() -> str | None:
    """Reflex's Redis URL: ``REFLEX_REDIS_URL``, else rxconfig's ``redis_url``; or None.

    Read at each check, so that it is always the URL Reflex's state manager uses.
    """
    url = os.environ.get(REDIS_URL_VARIABLE, "").strip()
    if url:
        return url
    from reflex_base.config import get_config

    configured = get_config().redis_url
    return configured.strip() if configured and configured.strip() else None


async def _check_redis(url: str) -> CheckResult:
    started = time.perf_counter()
    try:
        password = urlsplit(url).password
        scheme = urlsplit(url).scheme
    except ValueError:
        password, scheme = None, ""
    if scheme not in _REDIS_SCHEMES:
        return CheckResult(
            False,
            0.0,
            reason="the URL is not redis://, rediss:// or unix://",
            detail=f"{REDIS_URL_VARIABLE} has an unsupported scheme",
        )
    try:
        # A connection of its own (not the state manager's pool) and no retries: a failure
        # shows at once, and a pool's state cannot hide one.
        client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            # redis-py types ping() for its sync and async clients alike.
            await cast("Awaitable[bool]", client.ping())
        finally:
            await client.aclose()
    except (RedisError, OSError, ValueError) as error:
        if isinstance(error, AuthenticationError):
            reason = "authentication failed"
        elif isinstance(error, RedisTimeoutError):
            reason = "no answer in time"
        elif isinstance(error, RedisConnectionError | OSError):
            reason = "cannot connect"
        elif isinstance(error, ResponseError):
            reason = "answered with an error"
        elif isinstance(error, ValueError):
            reason = "the URL is malformed"
        else:
            reason = "the request failed"
        return CheckResult(
            False,
            _elapsed_ms(started),
            reason=f"{reason} ({type(error).__name__})",
            detail=f"{type(error).__name__}: {_masked(str(error), password)}",
        )
    return CheckResult(True, _elapsed_ms(started))


async def _check_sendbird(client: SendbirdClient, bot_id: str) -> CheckResult:
    started = time.perf_counter()
    code: int | None = None
    try:
        bot = await client.get_bot(bot_id)
    except SendbirdError as error:
        # The client's messages are free of secrets already (sendbird_api.redaction); the
        # answer still gets only fixed phrases: they name endpoints and server text.
        if isinstance(error, SendbirdAuthError):
            reason, code = "Sendbird rejected the API token", error.code
        elif isinstance(error, SendbirdRateLimitError):
            reason, code = "Sendbird is rate-limiting the application", error.code
        elif isinstance(error, SendbirdTimeoutError):
            reason = "Sendbird did not answer in time"
        elif isinstance(error, SendbirdConnectionError):
            reason = "Sendbird cannot be reached"
        elif isinstance(error, SendbirdAPIError):
            reason, code = f"Sendbird answered with HTTP {error.status_code}", error.code
        else:
            reason = f"the request failed ({type(error).__name__})"
        return CheckResult(
            False,
            _elapsed_ms(started),
            reason=reason,
            code=code,
            detail=f"{type(error).__name__}: {_masked(str(error))}",
        )
    if bot is None:
        return CheckResult(
            False,
            _elapsed_ms(started),
            reason="the bot (SENDBIRD_BOT_ID) does not exist in the application",
            code=400201,
            detail=f"GET /v3/bots/{bot_id}: no such bot",
        )
    return CheckResult(True, _elapsed_ms(started))


# ------------------------------------------------------------------------------- endpoint


class Readiness:
    """The readiness checks of one backend, with their single flights and Sendbird cache.

    One per backend (``api_transformer`` builds it), so a test's fresh backend starts with
    an empty cache.
    """

    def __init__(self, *, sendbird_success_ttl: float | None = None) -> None:
        self.sendbird_success_ttl = (
            SENDBIRD_SUCCESS_TTL if sendbird_success_ttl is None else sendbird_success_ttl
        )
        self._flights = {
            "database": _SingleFlight(DATABASE_TIMEOUT),
            "redis": _SingleFlight(REDIS_TIMEOUT),
            "sendbird": _SingleFlight(SENDBIRD_TIMEOUT),
        }
        # (client, monotonic expiry, result): reused only for the client that answered.
        self._sendbird_ok: tuple[SendbirdClient, float, CheckResult] | None = None
        self._reported: tuple[tuple[str, str | None], ...] = ()

    async def check(self) -> dict[str, CheckResult]:
        """Run every check concurrently; each result by name."""
        services = get_services()
        names = ("database", "redis", "sendbird")
        results = await asyncio.gather(
            self._database(services), self._redis(), self._sendbird(services)
        )
        checks = dict(zip(names, results, strict=True))
        self._report(checks)
        return checks

    async def _database(self, services: Services) -> CheckResult:
        engine: Engine = services.accounts.engine
        return await self._flights["database"].run(lambda: _check_database(engine))

    async def _redis(self) -> CheckResult:
        url = configured_redis_url()
        if url is None:
            return CheckResult(True, 0.0, reason="not configured", skipped=True)
        return await self._flights["redis"].run(lambda: _check_redis(url))

    async def _sendbird(self, services: Services) -> CheckResult:
        client, bot_id = services.sendbird, services.settings.bot_id
        cached = self._sendbird_ok
        if cached is not None and cached[0] is client and time.monotonic() < cached[1]:
            return CheckResult(True, cached[2].ms, cached=True)

        async def probe() -> CheckResult:
            result = await _check_sendbird(client, bot_id)
            # Set here, not by the caller: a success that comes after a timeout still counts.
            if result.ok:
                self._sendbird_ok = (
                    client,
                    time.monotonic() + self.sendbird_success_ttl,
                    result,
                )
            elif self._sendbird_ok is not None and self._sendbird_ok[0] is client:
                self._sendbird_ok = None
            return result

        return await self._flights["sendbird"].run(probe)

    def _report(self, checks: dict[str, CheckResult]) -> None:
        """Log when the failures change (not every poll): what fails and why, in detail."""
        failing = tuple((name, r.reason) for name, r in checks.items() if not r.ok)
        if failing == self._reported:
            return
        if failing:
            logger.warning(
                "not ready: %s",
                "; ".join(
                    f"{name}: {checks[name].reason} [{checks[name].detail}]" for name, _ in failing
                ),
            )
        else:
            logger.info("ready again")
        self._reported = failing

    async def endpoint(self, request: Request) -> Response:
        """``GET``/``HEAD /readyz``: 200 when every check passes, else 503."""
        checks = await self.check()
        failing = [name for name, result in checks.items() if not result.ok]
        body: dict[str, Any] = {"status": "not_ready" if failing else "ready"}
        if failing:
            body["failing"] = failing
        body["checks"] = {name: result.as_json() for name, result in checks.items()}
        body["worker"] = worker_id()
        response = JSONResponse(body, status_code=503 if failing else 200, headers=_NO_STORE)
        if request.method == "HEAD":
            # Same status and headers (Content-Length included), no body; servers differ
            # in whether they drop a HEAD body themselves.
            return Response(status_code=response.status_code, headers=dict(response.headers))
        return response

    def routes(self) -> list[BaseRoute]:
        """The route (GET, and HEAD with it) for the backend's router."""
        return [Route(READY_PATH, self.endpoint, methods=["GET"], name="readyz")]


def routes() -> list[BaseRoute]:
    """``/readyz`` for a new backend (``sample_app.http_api.api_transformer`` wires it in)."""
    return Readiness().routes()
