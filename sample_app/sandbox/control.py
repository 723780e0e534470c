"""Control surface under ``/__sandbox__/``: reset, session expiry, faults, inspection.

Tests, the benchmark and the demo page drive the unhappy paths through these routes, with the
clients of :mod:`.control_client`. They are protected by the same ``Api-Token`` as the
Platform API because the sandbox may be reachable from browsers on a demo site. The check is
not made here, route by route, but once for the whole ``/__sandbox__`` mount by the app's
dispatcher (:mod:`.app`): every path under it needs the token, unknown ones and routes added
later included, except the routes listed in :data:`OPEN_ROUTES`.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import Response

from .context import SandboxContext
from .control_client import CONTROL_PREFIX
from .credentials import token_row_state
from .httputil import ApiError, ApiRequest, RouteSpec, json_response, now_ms, route

PREFIX = CONTROL_PREFIX
MAX_OUTAGE_SECONDS = 3600.0
OPEN_ROUTES = frozenset({f"GET {PREFIX}/health"})
"""Route keys the dispatcher serves without the ``Api-Token``: only the liveness probe."""


def routes(ctx: SandboxContext, info: dict[str, Any]) -> list[RouteSpec]:
    """Control routes bound to one sandbox instance.

    Args:
        ctx: The sandbox instance.
        info: Mutable dict with display data (``http_url``/``ws_url`` once known).
    """

    async def health(req: ApiRequest) -> Response:
        return json_response({"ok": True})

    async def show_info(req: ApiRequest) -> Response:
        config = ctx.config
        return json_response(
            {
                "app_id": config.app_id,
                "bot_id": config.bot_id,
                "bot_nickname": config.bot_nickname,
                "session_key_ttl": config.session_key_ttl,
                "default_token_ttl": config.default_token_ttl,
                "allow_login_without_token": config.allow_login_without_token,
                "public_url": config.public_url,
                "http_url": info.get("http_url"),
                "ws_url": info.get("ws_url"),
                "rate_limits": ctx.faults.rate_limits,
                "users": await ctx.db.run(ctx.store.count_users),
            }
        )

    async def reset(req: ApiRequest) -> Response:
        await ctx.reset()
        return json_response({"ok": True})

    async def expire_token(req: ApiRequest) -> Response:
        return json_response(await ctx.expire_tokens(req.params["user_id"]))

    async def expire_session_key(req: ApiRequest) -> Response:
        return json_response(await ctx.expire_session_keys(req.params["user_id"]))

    async def revoke(req: ApiRequest) -> Response:
        return json_response(await ctx.revoke(req.params["user_id"]))

    async def disconnect(req: ApiRequest) -> Response:
        return json_response(await ctx.disconnect(req.params["user_id"]))

    async def delete_user(req: ApiRequest) -> Response:
        return json_response(await ctx.delete_user(req.params["user_id"]))

    async def refuse_login(req: ApiRequest) -> Response:
        body = await req.json_body()
        code = body.get("code", 400300)
        count = body.get("count", 1)
        message = body.get("message")
        for name, value in (("code", code), ("count", count)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError(400101, f'"{name}" should be an integer.')
        if not 400000 <= code <= 999999:
            raise ApiError(400111, '"code" must be a six-digit Sendbird error code.')
        if count < -1:
            raise ApiError(400111, '"count" must be -1 (until cleared), 0 (clear) or more.')
        if message is not None and not isinstance(message, str):
            raise ApiError(400100, '"message" should be a string.')
        refusal = ctx.refuse_login(req.params["user_id"], code, count, message)
        return json_response({"refusal": refusal})

    async def add_fault(req: ApiRequest) -> Response:
        body = await req.json_body(required=True)
        fault = ctx.faults.add(body)
        return json_response({"fault": fault.to_json()})

    async def list_faults(req: ApiRequest) -> Response:
        remaining = ctx.faults.outage_remaining()
        return json_response(
            {
                "faults": [fault.to_json() for fault in ctx.faults.list()],
                "outage_remaining": round(remaining, 3),
                "login_refusals": [
                    refusal.to_json(user_id) for user_id, refusal in ctx.login_refusals.items()
                ],
            }
        )

    async def clear_faults(req: ApiRequest) -> Response:
        cleared = ctx.faults.clear() + len(ctx.login_refusals)
        ctx.login_refusals.clear()
        return json_response({"ok": True, "cleared": cleared})

    async def outage(req: ApiRequest) -> Response:
        body = await req.json_body(required=True)
        seconds = body.get("seconds")
        if seconds is None:
            raise ApiError(400105, '"seconds" is required.')
        if (
            not isinstance(seconds, (int, float))
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
        ):
            raise ApiError(400101, '"seconds" should be a number.')
        if not 0 <= seconds <= MAX_OUTAGE_SECONDS:
            raise ApiError(400111, f'"seconds" must be between 0 and {MAX_OUTAGE_SECONDS:g}.')
        until = ctx.faults.start_outage(float(seconds))
        return json_response({"ok": True, "until": until})

    async def set_rate_limits(req: ApiRequest) -> Response:
        body = await req.json_body()
        limits = body.get("rate_limits", body)
        if not isinstance(limits, dict):
            raise ApiError(400103, '"rate_limits" should be a JSON object.')
        return json_response({"rate_limits": ctx.faults.set_rate_limits(limits)})

    async def tokens(req: ApiRequest) -> Response:
        user_id = req.query("user_id")
        now = now_ms()
        rows = await ctx.db.run(ctx.store.list_tokens, user_id)
        listed = []
        for row in rows:
            revoked, expired = token_row_state(row, now)
            listed.append(
                {
                    "user_id": row["user_id"],
                    "issued_at": row["issued_at"],
                    "expires_at": row["expires_at"],
                    "version": row["version"],
                    "revoked": revoked,
                    "expired": expired,
                    "token_sha256": row["token_sha256"],
                }
            )
        return json_response({"tokens": listed})

    async def stats(req: ApiRequest) -> Response:
        return json_response(ctx.stats.snapshot(ctx.hub.active_count))

    p = PREFIX
    return [
        route("GET", f"{p}/health", "control", health),
        route("GET", f"{p}/info", "control", show_info),
        route("POST", f"{p}/reset", "control", reset),
        route("POST", f"{p}/users/{{user_id}}/expire-token", "control", expire_token),
        route(
            "POST",
            f"{p}/users/{{user_id}}/expire-session-key",
            "control",
            expire_session_key,
        ),
        route("POST", f"{p}/users/{{user_id}}/revoke", "control", revoke),
        route("POST", f"{p}/users/{{user_id}}/disconnect", "control", disconnect),
        route("POST", f"{p}/users/{{user_id}}/delete", "control", delete_user),
        route("POST", f"{p}/users/{{user_id}}/refuse-login", "control", refuse_login),
        route("POST", f"{p}/faults", "control", add_fault),
        route("GET", f"{p}/faults", "control", list_faults),
        route("DELETE", f"{p}/faults", "control", clear_faults),
        route("POST", f"{p}/outage", "control", outage),
        route("PUT", f"{p}/rate-limits", "control", set_rate_limits),
        route("GET", f"{p}/tokens", "control", tokens),
        route("GET", f"{p}/stats", "control", stats),
    ]
