"""The REST calls the widget's SDK makes with its ``Session-Key``.

Answers have the shapes widget 1.7.10 accepts. Two details matter:
``GET /v3/sdk/group_channels/{url}`` must return a real channel with the bot as a member
(``{}`` breaks the SDK's local cache), and a 400309/400302 error makes the SDK park the call,
refresh its session and re-send it, so those codes are produced exactly where the real service
would produce them. A session reads only the channels its user belongs to; the Platform API
(``Api-Token``) reads them all (:mod:`.access`).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.responses import Response

from .access import require_channel_access
from .context import SandboxContext
from .credentials import IssuedKey, short_hash
from .httputil import ApiError, ApiRequest, RouteSpec, json_response, now_ms, route
from .payloads import channel_json, message_json
from .platform_api import check_api_token

logger = logging.getLogger("sample_app.sandbox.widget")

MAX_PAGE = 200
MAX_GAP = 100
MAX_TS = 2**53 - 1


def authenticate(ctx: SandboxContext, req: ApiRequest) -> str | None:
    """Identify the caller of an SDK route (a store call: run it on ``ctx.db``).

    Returns:
        The user id behind the ``Session-Key`` (or ``Access-Token``), or ``None`` for a
        Platform API caller using ``Api-Token``.

    Raises:
        ApiError: 400309/400310/400303 for bad keys, 400302/400310 for bad tokens, 400401 for
            a wrong API token, 400108 when no credential is present.
    """
    key = req.header("Session-Key")
    if key:
        return ctx.credentials.require_session_key(key)
    if req.header("Api-Token") is not None:
        check_api_token(ctx, req)
        return None
    token = req.header("Access-Token")
    if token:
        return ctx.credentials.require_token(token)
    raise ApiError(400108, "A Session-Key header is required.")


def _int_query(req: ApiRequest, name: str, default: int, *, low: int, high: int) -> int:
    raw = req.query(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400101, f'"{name}" should be a number.') from exc
    return max(low, min(high, value))


def _bool_query(req: ApiRequest, name: str, default: bool) -> bool:
    raw = req.query(name)
    if raw is None or raw == "":
        return default
    return raw.lower() in ("true", "1", "yes")


def routes(ctx: SandboxContext) -> list[RouteSpec]:
    """The widget/SDK routes bound to one sandbox instance.

    User ids in SDK paths are captured greedily (``{user_id...}``): the SDK leaves ``/`` (and
    sometimes everything) unencoded in ``session_key``, ``mute`` and similar paths. Each
    handler runs its store work as one function on ``ctx.db`` (authentication included), and
    every channel route checks membership (:func:`~.access.require_channel_access`).
    """
    store = ctx.store

    def render_channel(channel_url: str, viewer: str | None, online: set[str]) -> dict[str, Any]:
        channel = require_channel_access(store, channel_url, viewer)
        return channel_json(
            channel,
            store.channel_members(channel_url),
            viewer_id=viewer,
            online_ids=online,
            last_message=store.last_message(channel_url),
        )

    def channel_caller(req: ApiRequest) -> str | None:
        """Authenticate, then require the caller's membership of the path's channel."""
        caller = authenticate(ctx, req)
        require_channel_access(store, req.params["channel_url"], caller)
        return caller

    async def widget_setting(req: ApiRequest) -> Response:
        if req.params["bot_id"] != ctx.config.bot_id or req.params["app_id"] != ctx.config.app_id:
            raise ApiError(400201, '"Bot" not found.')
        return json_response(
            {
                "bot_style": {
                    "color": {
                        "theme": "light",
                        "accent_color": "#742DDD",
                        "bot_message_color": "#EEEEEE",
                    },
                    "toggle_button_url": None,
                    "auto_open": ctx.config.widget_auto_open,
                },
            }
        )

    async def create_channel(req: ApiRequest) -> Response:
        caller = await ctx.db.run(authenticate, ctx, req)
        body = await req.json_body(required=True)
        user_ids = body.get("user_ids")
        if user_ids is None:
            raise ApiError(400105, '"user_ids" is required.')
        if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
            raise ApiError(400102, '"user_ids" should be a list of strings.')
        members = list(dict.fromkeys(([caller] if caller else []) + user_ids))
        if not members:
            raise ApiError(400111, '"user_ids" must not be empty.')
        fields: dict[str, str] = {}
        for name in ("name", "cover_url", "custom_type", "data", "channel_url"):
            value = body.get(name, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise ApiError(400100, f'"{name}" should be a string.')
            fields[name] = value
        is_distinct = body.get("is_distinct", False)
        if not isinstance(is_distinct, bool):
            raise ApiError(400104, '"is_distinct" should be a boolean.')
        online = ctx.hub.online_user_ids()

        def create() -> dict[str, Any]:
            for member in members:
                if store.get_user(member) is None:
                    raise ApiError(400201, f'"User" not found: "{member}".')
            if is_distinct:
                existing = store.find_distinct_channel(members)
                if existing is not None:
                    return {**render_channel(existing, caller, online), "is_created": False}
            now = now_ms()
            channel_url = fields["channel_url"] or (
                f"sendbird_group_channel_{now}_{secrets.token_hex(6)}"
            )
            if store.get_channel(channel_url) is not None:
                raise ApiError(
                    400202, f'"Channel" with channel_url "{channel_url}" already exists.'
                )
            store.create_channel(
                channel_url,
                name=fields["name"],
                cover_url=fields["cover_url"],
                custom_type=fields["custom_type"],
                data=fields["data"],
                is_distinct=is_distinct,
                created_by=caller or "",
                member_ids=members,
                now=now,
            )
            logger.info("created channel %s with members %r", channel_url, members)
            return {**render_channel(channel_url, caller, online), "is_created": True}

        return json_response(await ctx.db.run(create))

    async def get_channel(req: ApiRequest) -> Response:
        online = ctx.hub.online_user_ids()

        def read() -> dict[str, Any]:
            return render_channel(req.params["channel_url"], authenticate(ctx, req), online)

        return json_response(await ctx.db.run(read))

    async def list_messages(req: ApiRequest) -> Response:
        channel_url = req.params["channel_url"]
        prev_limit = _int_query(req, "prev_limit", 15, low=0, high=MAX_PAGE)
        next_limit = _int_query(req, "next_limit", 0, low=0, high=MAX_PAGE)
        include = _bool_query(req, "include", True)
        reverse = _bool_query(req, "reverse", False)
        ts = _int_query(req, "message_ts", MAX_TS, low=0, high=MAX_TS)
        anchor_id = req.query("message_id")

        def read() -> list[dict[str, Any]]:
            channel_caller(req)
            anchor_ts = ts
            if anchor_id:
                try:
                    anchor = store.get_message(int(anchor_id))
                except ValueError as exc:
                    raise ApiError(400101, '"message_id" should be a number.') from exc
                if anchor is None or anchor["channel_url"] != channel_url:
                    raise ApiError(400201, '"Message" not found.')
                anchor_ts = int(anchor["created_at"])
            prev_inclusive = include and prev_limit > 0
            before = store.messages_before(
                channel_url, anchor_ts, prev_limit, inclusive=prev_inclusive
            )
            after = store.messages_after(
                channel_url, anchor_ts, next_limit, inclusive=include and not prev_inclusive
            )
            return before + after

        rows = await ctx.db.run(read)
        if reverse:
            rows.reverse()
        return json_response({"messages": [message_json(row) for row in rows]})

    async def changelogs(req: ApiRequest) -> Response:
        await ctx.db.run(channel_caller, req)
        return json_response({"updated": [], "deleted": [], "has_more": False, "next": ""})

    async def messages_gap(req: ApiRequest) -> Response:
        channel_url = req.params["channel_url"]
        start = _int_query(req, "prev_start_ts", 0, low=0, high=MAX_TS)
        end = _int_query(req, "prev_end_ts", MAX_TS, low=0, high=MAX_TS)

        def read() -> list[dict[str, Any]]:
            channel_caller(req)
            return store.messages_between(channel_url, start, end, MAX_GAP + 1)

        rows = await ctx.db.run(read)
        huge = len(rows) > MAX_GAP
        if huge:
            rows = []
        if _bool_query(req, "reverse", False):
            rows.reverse()
        return json_response(
            {
                "is_huge_gap": huge,
                "prev_messages": [message_json(row) for row in rows],
                "prev_hasmore": False,
                "next_messages": [],
                "next_hasmore": False,
            }
        )

    async def mute_state(req: ApiRequest) -> Response:
        await ctx.db.run(channel_caller, req)
        return json_response(
            {
                "is_muted": False,
                "start_at": 0,
                "end_at": 0,
                "remaining_duration": -1,
                "description": "",
            }
        )

    async def session_key(req: ApiRequest) -> Response:
        user_id = req.params["user_id"]
        body = await req.json_body()
        token = body.get("token")

        def issue() -> IssuedKey:
            ctx.credentials.require_token(
                token if isinstance(token, str) else None, user_id=user_id
            )
            return ctx.credentials.issue_session_key(user_id)

        issued = await ctx.db.run(issue)
        logger.info(
            "issued session key %s... for user %r via REST", issued.key_sha256[:12], user_id
        )
        if isinstance(token, str):
            logger.debug("session key refresh used token %s...", short_hash(token))
        return json_response({"key": issued.key})

    def own_user(req: ApiRequest) -> str:
        """Authenticate; a session may only ask about its own user (the Platform API: any)."""
        caller = authenticate(ctx, req)
        user_id = req.params["user_id"]
        if caller is not None and caller != user_id:
            raise ApiError(400108, "A session can only list its own channels.")
        return user_id

    async def my_group_channels(req: ApiRequest) -> Response:
        limit = _int_query(req, "limit", 20, low=1, high=100)
        online = ctx.hub.online_user_ids()

        def read() -> list[dict[str, Any]]:
            user_id = own_user(req)
            ctx.require_user(user_id)
            urls = store.channels_of_user(user_id)[:limit]
            return [render_channel(url, user_id, online) for url in urls]

        channels = await ctx.db.run(read)
        return json_response({"channels": channels, "next": "", "ts": now_ms()})

    async def my_group_channel_changelogs(req: ApiRequest) -> Response:
        await ctx.db.run(own_user, req)
        return json_response({"updated": [], "deleted": [], "has_more": False, "next": ""})

    return [
        route("GET", "/v3/bots/{bot_id}/{app_id}/widget_setting", "widget_api", widget_setting),
        route("POST", "/v3/group_channels", "widget_api", create_channel),
        route("GET", "/v3/group_channels/{channel_url}", "widget_api", get_channel),
        route("GET", "/v3/sdk/group_channels/{channel_url}", "widget_api", get_channel),
        route("GET", "/v3/group_channels/{channel_url}/messages", "widget_api", list_messages),
        route(
            "GET", "/v3/group_channels/{channel_url}/messages/changelogs", "widget_api", changelogs
        ),
        route("GET", "/v3/group_channels/{channel_url}/messages_gap", "widget_api", messages_gap),
        route(
            "GET", "/v3/group_channels/{channel_url}/mute/{user_id...}", "widget_api", mute_state
        ),
        route("POST", "/v3/users/{user_id...}/session_key", "widget_api", session_key),
        route("GET", "/v3/users/{user_id...}/my_group_channels", "widget_api", my_group_channels),
        route(
            "GET",
            "/v3/users/{user_id...}/my_group_channels/changelogs",
            "widget_api",
            my_group_channel_changelogs,
        ),
    ]
