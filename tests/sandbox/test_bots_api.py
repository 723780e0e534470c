"""`GET /v3/bots/{bot_id}`, which the set-up check calls, and `SendbirdClient.get_bot` on it."""

from __future__ import annotations

import pytest
from sandbox_helpers import API_TOKEN, APP_ID, BOT_ID, Sandbox, assert_error

from sample_app.sendbird_api import SendbirdAuthError, SendbirdClient


def test_the_sandbox_bot_is_returned_with_its_app_id(sandbox: Sandbox) -> None:
    response = sandbox.http.get(f"/v3/bots/{BOT_ID}")
    assert response.status_code == 200, response.text
    bot = response.json()["bot"]
    assert bot["bot_userid"] == BOT_ID
    assert bot["bot_nickname"] == sandbox.config.bot_nickname
    assert bot["app_id"] == APP_ID


def test_another_bot_is_400201(sandbox: Sandbox) -> None:
    body = assert_error(sandbox.http.get("/v3/bots/someone-else"), 400, 400201)
    assert body["message"] == '"Bot" not found.'


def test_the_api_token_is_required(sandbox: Sandbox) -> None:
    assert_error(sandbox.anon.get(f"/v3/bots/{BOT_ID}"), 401, 400401)
    assert_error(
        sandbox.anon.get(f"/v3/bots/{BOT_ID}", headers={"Api-Token": "x" * 20}), 401, 400401
    )


async def test_client_get_bot(sandbox: Sandbox) -> None:
    async with SendbirdClient(sandbox.server.http_url, API_TOKEN) as client:
        bot = await client.get_bot(BOT_ID)
        assert bot is not None
        assert (bot.bot_id, bot.app_id) == (BOT_ID, APP_ID)
        assert await client.get_bot("nobody") is None
        assert client.call_counts["GET /v3/bots/{bot_id}"] == 2
    async with SendbirdClient(sandbox.server.http_url, "y" * 20) as wrong:
        with pytest.raises(SendbirdAuthError):
            await wrong.get_bot(BOT_ID)
