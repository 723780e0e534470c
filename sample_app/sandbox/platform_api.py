"""The Sendbird Platform API routes our server calls: users and session tokens.

Only the calls the reference app makes are emulated, with Sendbird's validation and error
codes, because the point is to exercise the server's error handling:
400201 for unknown users, 400202 for duplicates, 400105/400100/400111 for bad input and 400401
for a wrong ``Api-Token`` (answered with HTTP 401 here). Store work runs on ``ctx.db``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.responses import Response

from .context import SandboxContext, user_not_found
from .credentials import IssuedToken, short_hash
from .httputil import ApiError, ApiRequest, RouteSpec, json_response, now_ms, route
from .payloads import user_resource
from .store import DuplicateError

logger = logging.getLogger("sample_app.sandbox.platform")

MAX_USER_ID = 80
MAX_NICKNAME = 80
MAX_PROFILE_URL = 2048
MAX_METADATA_ITEMS = 5
MAX_EXPIRES_AT = 2**53 - 1


def check_api_token(ctx: SandboxContext, request: ApiRequest) -> None:
    """Require the configured ``Api-Token`` header.

    Raises:
        ApiError: 400401 with HTTP 401 when the header is missing or wrong.
    """
    require_api_token(ctx, request.header("Api-Token"))


def require_api_token(ctx: SandboxContext, presented: str | None) -> None:
    """Compare a presented ``Api-Token`` with the configured one in constant time.

    Raises:
        ApiError: 400401 with HTTP 401 when it is missing or wrong.
    """
    if not presented or not hmac.compare_digest(
        presented.encode("utf-8"), ctx.config.api_token.encode("utf-8")
    ):
        raise ApiError(400401, 'Invalid value: "Api-Token".', status=401)


def string_field(
    body: dict[str, Any],
    name: str,
    *,
    required: bool,
    max_len: int,
    allow_empty: bool = True,
) -> str | None:
    """Validate an optional or required string field the way Sendbird does.

    Raises:
        ApiError: 400105 (missing), 400100 (not a string) or 400111 (too long or empty).
    """
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400105, f'"{name}" is required.')
        return None
    if not isinstance(value, str):
        raise ApiError(400100, f'"{name}" should be a string.')
    if not allow_empty and value == "":
        raise ApiError(400111, f'"{name}" must not be empty.')
    if len(value) > max_len:
        raise ApiError(400111, f'"{name}" must be at most {max_len} characters long.')
    return value


def metadata_field(body: dict[str, Any]) -> dict[str, str] | None:
    """Validate ``metadata``: an object of at most five string values."""
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400103, '"metadata" should be a JSON object.')
    if len(value) > MAX_METADATA_ITEMS:
        raise ApiError(400111, f'"metadata" can hold at most {MAX_METADATA_ITEMS} items.')
    if not all(isinstance(v, str) for v in value.values()):
        raise ApiError(400100, '"metadata" values should be strings.')
    return {str(k): v for k, v in value.items()}


def routes(ctx: SandboxContext) -> list[RouteSpec]:
    """The Platform API routes bound to one sandbox instance."""

    def online(user_id: str) -> bool:
        return user_id in ctx.hub.online_user_ids()

    async def get_user(req: ApiRequest) -> Response:
        check_api_token(ctx, req)
        user = await ctx.db.run(ctx.require_user, req.params["user_id"])
        return json_response(user_resource(user, online=online(user["user_id"])))

    async def create_user(req: ApiRequest) -> Response:
        check_api_token(ctx, req)
        body = await req.json_body(required=True)
        user_id = string_field(
            body, "user_id", required=True, max_len=MAX_USER_ID, allow_empty=False
        )
        nickname = string_field(body, "nickname", required=True, max_len=MAX_NICKNAME)
        profile_url = string_field(body, "profile_url", required=True, max_len=MAX_PROFILE_URL)
        metadata = metadata_field(body)
        issue = body.get("issue_access_token")
        if issue is not None and not isinstance(issue, bool):
            raise ApiError(400104, '"issue_access_token" should be a boolean.')
        assert user_id is not None and nickname is not None and profile_url is not None
        try:
            user = await ctx.db.run(
                ctx.store.create_user, user_id, nickname, profile_url, metadata, now=now_ms()
            )
        except DuplicateError as exc:
            raise ApiError(400202, f'"User" with user_id "{user_id}" already exists.') from exc
        logger.info("created user %r", user_id)
        return json_response(user_resource(user, online=False))

    async def update_user(req: ApiRequest) -> Response:
        user_id = req.params["user_id"]
        key = req.header("Session-Key")
        if key and req.header("Api-Token") is None:
            owner = await ctx.db.run(ctx.credentials.require_session_key, key)
            if owner != user_id:
                raise ApiError(400108, "A session can only update its own user.")
        else:
            check_api_token(ctx, req)
        body = await req.json_body()
        nickname = string_field(body, "nickname", required=False, max_len=MAX_NICKNAME)
        profile_url = string_field(body, "profile_url", required=False, max_len=MAX_PROFILE_URL)
        metadata = metadata_field(body)
        user = await ctx.db.run(
            ctx.store.update_user,
            user_id,
            nickname=nickname,
            profile_url=profile_url,
            metadata=metadata,
        )
        if user is None:
            raise user_not_found()
        return json_response(user_resource(user, online=online(user_id)))

    async def delete_user(req: ApiRequest) -> Response:
        check_api_token(ctx, req)
        await ctx.delete_user(req.params["user_id"])
        return json_response({})

    async def issue_token(req: ApiRequest) -> Response:
        check_api_token(ctx, req)
        user_id = req.params["user_id"]
        await ctx.db.run(ctx.require_user, user_id)
        body = await req.json_body()
        expires_at = body.get("expires_at")
        if expires_at is not None:
            if not isinstance(expires_at, int) or isinstance(expires_at, bool):
                raise ApiError(400101, '"expires_at" should be a number (Unix milliseconds).')
            if expires_at <= now_ms():
                raise ApiError(400111, '"expires_at" must be a future time in Unix milliseconds.')
            if expires_at > MAX_EXPIRES_AT:
                raise ApiError(400111, '"expires_at" is too large.')

        def issue() -> IssuedToken:
            ctx.require_user(user_id)  # again: it may have been deleted meanwhile
            return ctx.credentials.issue_token(user_id, expires_at)

        issued = await ctx.db.run(issue)
        logger.info(
            "issued session token %s... for user %r, expires_at=%d",
            short_hash(issued.token),
            user_id,
            issued.expires_at,
        )
        return json_response({"token": issued.token, "expires_at": issued.expires_at})

    async def revoke_tokens(req: ApiRequest) -> Response:
        check_api_token(ctx, req)
        await ctx.revoke(req.params["user_id"])
        return json_response({})

    async def get_bot(req: ApiRequest) -> Response:
        # `GET /v3/bots/{bot_id}`: the set-up check (sample_app/setup_check.py) asks for the
        # configured bot. Only this sandbox's bot exists; its bot object carries the app id.
        check_api_token(ctx, req)
        if req.params["bot_id"] != ctx.config.bot_id:
            raise ApiError(400201, '"Bot" not found.')
        bot = {
            "bot_userid": ctx.config.bot_id,
            "bot_nickname": ctx.config.bot_nickname,
            "bot_profile_url": "",
            "bot_type": "ai_chatbot",
            "app_id": ctx.config.app_id,
        }
        return json_response({"bot": bot, "is_privacy_mode": False, "show_member": True})

    return [
        route("GET", "/v3/users/{user_id}", "platform_api", get_user),
        route("POST", "/v3/users", "platform_api", create_user),
        route("PUT", "/v3/users/{user_id...}", "auto", update_user),
        route("DELETE", "/v3/users/{user_id}", "platform_api", delete_user),
        route("POST", "/v3/users/{user_id}/token", "platform_api", issue_token),
        route("DELETE", "/v3/users/{user_id}/token", "platform_api", revoke_tokens),
        route("GET", "/v3/bots/{bot_id}", "platform_api", get_bot),
    ]
