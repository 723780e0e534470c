"""The one client of the sandbox's control surface (``/__sandbox__/``), sync and async.

The app's demo buttons (async, inside the Reflex backend), the browser tests and the benchmark
(sync) drive the sandbox through these two classes. Every call is described once, as a
:class:`ControlCall` built by :class:`ControlCalls`; the two clients only differ in how they
send it. Both send the sandbox's API token in the ``Api-Token`` header, percent-encode user
ids, and raise :class:`httpx.HTTPStatusError` (through ``raise_for_status()``) when the sandbox
answers with an error, for example 400 with code 400201 for an unknown user.

Example::

    with SandboxControlClient(sandbox.http_url, api_token) as control:
        control.expire_token("sample-42")
        print(control.tokens("sample-42"))
        control.refuse_login("sample-42", code=400300, count=5)
        control.delete_user("sample-42")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, get_args
from urllib.parse import quote

import httpx

CONTROL_PREFIX = "/__sandbox__"
"""Where the control routes live (the sandbox's own routes use this constant too)."""

UserAction = Literal["expire-token", "expire-session-key", "revoke", "disconnect"]
USER_ACTIONS: tuple[UserAction, ...] = get_args(UserAction)
"""What ``POST /__sandbox__/users/{user_id}/{action}`` can do to a user."""


def _body(payload: Any) -> Any:
    return payload


@dataclass(frozen=True)
class ControlCall:
    """One request to the control surface and how to read its answer.

    Attributes:
        method: HTTP method.
        path: Path under the sandbox's base URL (ids already percent-encoded).
        params: Query parameters, if any.
        json: JSON body, if any.
        result: Picks the returned value out of the decoded JSON answer.
    """

    method: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    result: Callable[[Any], Any] = field(default=_body, repr=False)

    def read(self, response: httpx.Response) -> Any:
        """Raise on an error status, otherwise return the answer's interesting part.

        Raises:
            httpx.HTTPStatusError: The sandbox answered 4xx or 5xx.
        """
        response.raise_for_status()
        return self.result(response.json())


class ControlCalls:
    """Builders of every control request, shared by the sync and the async client."""

    @staticmethod
    def health() -> ControlCall:
        """``GET /health`` (needs no token); answers whether the sandbox is up."""
        return ControlCall("GET", f"{CONTROL_PREFIX}/health", result=lambda body: bool(body["ok"]))

    @staticmethod
    def info() -> ControlCall:
        """``GET /info``: app and bot ids, URLs, lifetimes, rate limits, user count."""
        return ControlCall("GET", f"{CONTROL_PREFIX}/info")

    @staticmethod
    def reset() -> ControlCall:
        """``POST /reset``: data, faults, counters and sockets cleared, bot re-created."""
        return ControlCall("POST", f"{CONTROL_PREFIX}/reset", result=lambda body: None)

    @staticmethod
    def act(user_id: str, action: UserAction) -> ControlCall:
        """``POST /users/{user_id}/{action}``; answers a summary of what was done.

        Raises:
            ValueError: Empty ``user_id`` or unknown ``action``.
        """
        if not user_id:
            raise ValueError("user_id must not be empty")
        if action not in USER_ACTIONS:
            raise ValueError(f"unknown action {action!r}: expected one of {USER_ACTIONS}")
        return ControlCall("POST", f"{CONTROL_PREFIX}/users/{quote(user_id, safe='')}/{action}")

    @staticmethod
    def delete_user(user_id: str) -> ControlCall:
        """``POST /users/{user_id}/delete``: the user, its credentials and memberships go.

        What deleting the user in Sendbird's dashboard (or ``DELETE /v3/users/{id}``) does;
        answers ``{"ok", "user_id", "memberships_deleted", "connections_closed"}``.

        Raises:
            ValueError: Empty ``user_id``.
        """
        if not user_id:
            raise ValueError("user_id must not be empty")
        return ControlCall("POST", f"{CONTROL_PREFIX}/users/{quote(user_id, safe='')}/delete")

    @staticmethod
    def refuse_login(
        user_id: str, code: int = 400300, count: int = 1, message: str | None = None
    ) -> ControlCall:
        """``POST /users/{user_id}/refuse-login``: the next ``count`` LOGIs fail with ``code``.

        ``user_id`` ``"*"`` refuses everyone's logins; ``count`` -1 refuses until cleared
        (``DELETE /faults`` or ``count`` 0). Answers the refusal as stored.

        Raises:
            ValueError: Empty ``user_id``.
        """
        if not user_id:
            raise ValueError("user_id must not be empty")
        body: dict[str, Any] = {"code": code, "count": count}
        if message is not None:
            body["message"] = message
        return ControlCall(
            "POST",
            f"{CONTROL_PREFIX}/users/{quote(user_id, safe='')}/refuse-login",
            json=body,
            result=lambda answer: answer["refusal"],
        )

    @staticmethod
    def fault(spec: Mapping[str, Any]) -> ControlCall:
        """``POST /faults``; answers the fault as the sandbox stored it."""
        return ControlCall(
            "POST", f"{CONTROL_PREFIX}/faults", json=dict(spec), result=lambda body: body["fault"]
        )

    @staticmethod
    def faults() -> ControlCall:
        """``GET /faults``: ``{"faults": [...], "outage_remaining": seconds}``."""
        return ControlCall("GET", f"{CONTROL_PREFIX}/faults")

    @staticmethod
    def clear_faults() -> ControlCall:
        """``DELETE /faults`` (also ends an outage); answers how many faults were cleared."""
        return ControlCall(
            "DELETE", f"{CONTROL_PREFIX}/faults", result=lambda body: int(body["cleared"])
        )

    @staticmethod
    def outage(seconds: float) -> ControlCall:
        """``POST /outage``; answers when the outage ends (epoch milliseconds)."""
        return ControlCall(
            "POST",
            f"{CONTROL_PREFIX}/outage",
            json={"seconds": seconds},
            result=lambda body: body["until"],
        )

    @staticmethod
    def set_rate_limits(limits: Mapping[str, int]) -> ControlCall:
        """``PUT /rate-limits`` (``{}`` turns the limiter off); answers the limits in force."""
        return ControlCall(
            "PUT",
            f"{CONTROL_PREFIX}/rate-limits",
            json=dict(limits),
            result=lambda body: body["rate_limits"],
        )

    @staticmethod
    def tokens(user_id: str | None = None) -> ControlCall:
        """``GET /tokens[?user_id=]``; answers the issued tokens (digests, never plaintext)."""
        params = None if user_id is None else {"user_id": user_id}
        return ControlCall(
            "GET", f"{CONTROL_PREFIX}/tokens", params=params, result=lambda body: body["tokens"]
        )

    @staticmethod
    def stats() -> ControlCall:
        """``GET /stats``: calls per route of the Platform API, the widget API and the socket."""
        return ControlCall("GET", f"{CONTROL_PREFIX}/stats")


def _http_options(base_url: str, api_token: str, timeout: float) -> dict[str, Any]:
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {"Api-Token": api_token},
        "timeout": timeout,
    }


class SandboxControlClient:
    """Blocking client of the control surface (tests, benchmark, scripts).

    Args:
        base_url: The sandbox's base URL, e.g. ``http://127.0.0.1:8090``.
        api_token: The sandbox's API token (sent in the ``Api-Token`` header, never logged).
        timeout: Seconds to wait for each answer.
    """

    def __init__(self, base_url: str, api_token: str, *, timeout: float = 5.0) -> None:
        self._http = httpx.Client(**_http_options(base_url, api_token, timeout))

    @property
    def base_url(self) -> str:
        """The sandbox's base URL."""
        return str(self._http.base_url).rstrip("/")

    def _send(self, call: ControlCall) -> Any:
        response = self._http.request(call.method, call.path, params=call.params, json=call.json)
        return call.read(response)

    def health(self) -> bool:
        """Whether the sandbox answers (``/health`` needs no token)."""
        return self._send(ControlCalls.health())

    def info(self) -> dict[str, Any]:
        """App and bot ids, URLs, lifetimes, rate limits and the user count."""
        return self._send(ControlCalls.info())

    def reset(self) -> None:
        """Clear users, channels, messages, faults, counters and sockets."""
        self._send(ControlCalls.reset())

    def act(self, user_id: str, action: UserAction) -> dict[str, Any]:
        """Apply one of :data:`USER_ACTIONS` to a user; returns the sandbox's summary."""
        return self._send(ControlCalls.act(user_id, action))

    def expire_token(self, user_id: str) -> dict[str, Any]:
        """Expire the user's session tokens now (``EXPR 400302`` to its sockets)."""
        return self.act(user_id, "expire-token")

    def expire_session_key(self, user_id: str) -> dict[str, Any]:
        """Expire the user's session keys now (the SDK logs in again with its token)."""
        return self.act(user_id, "expire-session-key")

    def revoke(self, user_id: str) -> dict[str, Any]:
        """Revoke the user's tokens and keys (``EXPR 400310``, sockets closed)."""
        return self.act(user_id, "revoke")

    def disconnect(self, user_id: str) -> dict[str, Any]:
        """Close the user's sockets, credentials untouched (the SDK reconnects)."""
        return self.act(user_id, "disconnect")

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete the user as the dashboard would: credentials and memberships go too."""
        return self._send(ControlCalls.delete_user(user_id))

    def refuse_login(
        self, user_id: str, code: int = 400300, count: int = 1, message: str | None = None
    ) -> dict[str, Any]:
        """Refuse the next ``count`` LOGIs of ``user_id`` (``"*"``: anyone) with ``code``.

        ``count`` -1 refuses until cleared, 0 clears; :meth:`clear_faults` clears it too.
        """
        return self._send(ControlCalls.refuse_login(user_id, code, count, message))

    def fault(self, **spec: Any) -> dict[str, Any]:
        """Make the next matching calls fail or slow down; returns the stored fault.

        Keyword arguments are the fault's fields: ``method``, ``path`` (a glob), ``count``,
        ``status``, ``code``, ``message``, ``delay``, ``headers``, ``retry_after``, ``limit``,
        ``body``.
        """
        return self._send(ControlCalls.fault(spec))

    def faults(self) -> dict[str, Any]:
        """The active faults and the outage's remaining seconds."""
        return self._send(ControlCalls.faults())

    def clear_faults(self) -> int:
        """Remove every fault and login refusal, end an outage; returns how many were cleared."""
        return self._send(ControlCalls.clear_faults())

    def outage(self, seconds: float) -> int:
        """Answer every ``/v3`` call with 503 for ``seconds``; returns the end (epoch ms)."""
        return self._send(ControlCalls.outage(seconds))

    def set_rate_limits(self, limits: Mapping[str, int]) -> dict[str, int]:
        """Per-method requests per second on the Platform API (``{}``: no limit)."""
        return self._send(ControlCalls.set_rate_limits(limits))

    def tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The session tokens issued so far (all, or one user's), as digests."""
        return self._send(ControlCalls.tokens(user_id))

    def stats(self) -> dict[str, Any]:
        """Calls per route (``platform_api``, ``widget_api``, ``websocket``)."""
        return self._send(ControlCalls.stats())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSandboxControlClient:
    """Non-blocking client of the control surface (the Reflex backend's demo buttons).

    Args:
        base_url: The sandbox's base URL, e.g. ``http://127.0.0.1:8090``.
        api_token: The sandbox's API token (sent in the ``Api-Token`` header, never logged).
        timeout: Seconds to wait for each answer.
        transport: An httpx transport, e.g. ``httpx.ASGITransport`` to reach a sandbox app
            in this process (the handler tests do).
    """

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            **_http_options(base_url, api_token, timeout), transport=transport
        )

    @property
    def base_url(self) -> str:
        """The sandbox's base URL."""
        return str(self._http.base_url).rstrip("/")

    async def _send(self, call: ControlCall) -> Any:
        response = await self._http.request(
            call.method, call.path, params=call.params, json=call.json
        )
        return call.read(response)

    async def health(self) -> bool:
        """Whether the sandbox answers (``/health`` needs no token)."""
        return await self._send(ControlCalls.health())

    async def info(self) -> dict[str, Any]:
        """App and bot ids, URLs, lifetimes, rate limits and the user count."""
        return await self._send(ControlCalls.info())

    async def reset(self) -> None:
        """Clear users, channels, messages, faults, counters and sockets."""
        await self._send(ControlCalls.reset())

    async def act(self, user_id: str, action: UserAction) -> dict[str, Any]:
        """Apply one of :data:`USER_ACTIONS` to a user; returns the sandbox's summary."""
        return await self._send(ControlCalls.act(user_id, action))

    async def expire_token(self, user_id: str) -> dict[str, Any]:
        """Expire the user's session tokens now (``EXPR 400302`` to its sockets)."""
        return await self.act(user_id, "expire-token")

    async def expire_session_key(self, user_id: str) -> dict[str, Any]:
        """Expire the user's session keys now (the SDK logs in again with its token)."""
        return await self.act(user_id, "expire-session-key")

    async def revoke(self, user_id: str) -> dict[str, Any]:
        """Revoke the user's tokens and keys (``EXPR 400310``, sockets closed)."""
        return await self.act(user_id, "revoke")

    async def disconnect(self, user_id: str) -> dict[str, Any]:
        """Close the user's sockets, credentials untouched (the SDK reconnects)."""
        return await self.act(user_id, "disconnect")

    async def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete the user as the dashboard would: credentials and memberships go too."""
        return await self._send(ControlCalls.delete_user(user_id))

    async def refuse_login(
        self, user_id: str, code: int = 400300, count: int = 1, message: str | None = None
    ) -> dict[str, Any]:
        """Refuse the next ``count`` LOGIs of ``user_id`` (``"*"``: anyone) with ``code``."""
        return await self._send(ControlCalls.refuse_login(user_id, code, count, message))

    async def fault(self, **spec: Any) -> dict[str, Any]:
        """Make the next matching calls fail or slow down; returns the stored fault.

        Keyword arguments are the fault's fields, as for :meth:`SandboxControlClient.fault`.
        """
        return await self._send(ControlCalls.fault(spec))

    async def faults(self) -> dict[str, Any]:
        """The active faults and the outage's remaining seconds."""
        return await self._send(ControlCalls.faults())

    async def clear_faults(self) -> int:
        """Remove every fault and end an outage; returns how many faults were cleared."""
        return await self._send(ControlCalls.clear_faults())

    async def outage(self, seconds: float) -> int:
        """Answer every ``/v3`` call with 503 for ``seconds``; returns the end (epoch ms)."""
        return await self._send(ControlCalls.outage(seconds))

    async def set_rate_limits(self, limits: Mapping[str, int]) -> dict[str, int]:
        """Per-method requests per second on the Platform API (``{}``: no limit)."""
        return await self._send(ControlCalls.set_rate_limits(limits))

    async def tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The session tokens issued so far (all, or one user's), as digests."""
        return await self._send(ControlCalls.tokens(user_id))

    async def stats(self) -> dict[str, Any]:
        """Calls per route (``platform_api``, ``widget_api``, ``websocket``)."""
        return await self._send(ControlCalls.stats())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
