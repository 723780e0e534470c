"""No one inherits another person's Sendbird user, channels or history.

The Sendbird application outlives the accounts database: it is recreated, moved (the
SQLite path is relative) or shared by two deployments. These tests open the chat through
the real handlers against one in-process sandbox and show that (1) a new account in a new
database gets a Sendbird user of its own, not the previous `{prefix}1`, and cannot see the
previous user's channel, and (2) a Sendbird user that already exists but was not created by
this app is refused: no token is issued and the panel says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from sample_app.accounts import Argon2Hasher
from sample_app.identity import sendbird_identity
from sample_app.services import use_services
from sample_app.state.session_phase import SessionPhase
from tests.state.conftest import (
    BOT_ID,
    PASSWORD,
    SANDBOX_TOKEN,
    StateHarness,
    harness_on,
    run,
)


def sandbox_http(sandbox_app: Any, harness: StateHarness) -> httpx.AsyncClient:
    """An HTTP client for the sandbox, as the widget (or an admin with the API token) uses it."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox_app),
        base_url=harness.services.settings.api_host,
    )


async def session_key(http: httpx.AsyncClient, user_id: str, token: str) -> str:
    """Exchange a session token for a widget session key, as the widget's SDK does."""
    response = await http.post(f"/v3/users/{user_id}/session_key", json={"token": token})
    response.raise_for_status()
    return str(response.json()["key"])


async def open_bot_channel(http: httpx.AsyncClient, key: str) -> dict[str, Any]:
    """Open the distinct channel with the bot, as the widget does when it starts."""
    response = await http.post(
        "/v3/group_channels",
        headers={"Session-Key": key},
        json={"user_ids": [BOT_ID], "is_distinct": True},
    )
    response.raise_for_status()
    return dict(response.json())


async def my_channels(http: httpx.AsyncClient, user_id: str, key: str) -> list[str]:
    """The channel URLs the user's widget would list."""
    response = await http.get(
        f"/v3/users/{user_id}/my_group_channels", headers={"Session-Key": key}
    )
    response.raise_for_status()
    return [channel["channel_url"] for channel in response.json()["channels"]]


async def test_a_new_account_after_the_database_is_replaced_gets_its_own_sendbird_user(
    tab: StateHarness, sandbox_app: Any, tmp_path: Path, hasher: Argon2Hasher
) -> None:
    # The first database: alice chats with the bot.
    await tab.open_chat("alice")
    alice_id = tab.chat.sendbird_user_id
    assert tab.chat.session_token
    async with sandbox_http(sandbox_app, tab) as http:
        alice_key = await session_key(http, alice_id, tab.chat.session_token)
        alice_channel = (await open_bot_channel(http, alice_key))["channel_url"]
        store = sandbox_app.state.sandbox.store
        store.add_message(alice_channel, alice_id, "my private question", now=1)

        # The database is recreated (same Sendbird application): the first account to
        # register gets integer id 1 again, as alice had.
        (tmp_path / "second").mkdir()
        async with harness_on(sandbox_app, tmp_path / "second" / "accounts.db", hasher) as new:
            with use_services(new.services):
                updates = await new.open_chat("mallory")
            mallory = new.accounts.resolve_sign_in(new.auth.sign_in_token)
            assert mallory is not None and mallory.id == 1  # the id alone would collide
            mallory_id = new.chat.sendbird_user_id
            assert new.chat.widget_visible, updates
            assert new.chat.session_token

            assert mallory_id != alice_id
            assert await new.issued(mallory_id) == 1
            assert await new.issued(alice_id) == 1  # only alice's own token
            # Mallory's widget sees none of alice's channels, and opening the bot chat
            # creates a new channel instead of returning alice's.
            mallory_key = await session_key(http, mallory_id, new.chat.session_token)
            assert await my_channels(http, mallory_id, mallory_key) == []
            opened = await open_bot_channel(http, mallory_key)
            assert opened["is_created"] is True
            assert opened["channel_url"] != alice_channel
            assert not store.is_member(alice_channel, mallory_id)
            assert store.member_ids(alice_channel) == [alice_id, BOT_ID]
            # And alice's token is no good for mallory's user.
            refused = await http.post(
                f"/v3/users/{mallory_id}/session_key", json={"token": tab.chat.session_token}
            )
            assert refused.status_code >= 400


async def test_an_existing_sendbird_user_not_created_by_this_app_gets_no_token(
    tab: StateHarness, sandbox_app: Any
) -> None:
    sign_in_token = tab.register("alice")
    account = tab.accounts.resolve_sign_in(sign_in_token)
    assert account is not None
    user_id = sendbird_identity(account, tab.services.settings.user_id_prefix).user_id
    # Someone else (another deployment, an older version of this app, the dashboard)
    # already created a user with that id, without this app's mark.
    async with sandbox_http(sandbox_app, tab) as http:
        created = await http.post(
            "/v3/users",
            headers={"Api-Token": SANDBOX_TOKEN},
            json={"user_id": user_id, "nickname": "Previous Owner", "profile_url": ""},
        )
        assert created.status_code == 200, created.text

    # A new account's first view creates its user first (AuthState.register notes it):
    # Sendbird answers 400202, the existing user is read, and it lacks this app's mark.
    tab.services.tokens.note_new_user(user_id)
    tab.auth.sign_in_token = sign_in_token
    await run(tab.chat.open_chat())

    chat = tab.chat
    assert await tab.control.tokens() == []
    assert chat.session_token == ""
    assert not chat.widget_visible
    assert chat.phase == SessionPhase.START_FAILED
    assert "already exists but was not created by this app" in chat.last_error
    assert "no session token is issued" in chat.last_error
    # The user was left as it was: not renamed, not re-marked.
    user = sandbox_app.state.sandbox.store.get_user(user_id)
    assert user["nickname"] == "Previous Owner"
    assert user["metadata"] == {}


async def test_users_this_app_creates_carry_its_mark(tab: StateHarness, sandbox_app: Any) -> None:
    await tab.open_chat("alice")
    user = sandbox_app.state.sandbox.store.get_user(tab.chat.sendbird_user_id)
    assert user["metadata"] == {"created_by": "sendbird-reflex-sample"}
    # ...so the next sign-in (a new process, say) is still served.
    await tab.services.tokens.forget(tab.chat.sendbird_user_id)
    await run(tab.chat.open_chat())
    assert tab.chat.session_token
    assert await tab.issued(tab.chat.sendbird_user_id) >= 1


async def test_platform_api_calls_per_page_view(tab: StateHarness) -> None:
    """New account: create + issue (2). Returning, new process: issue (1). Cached: 0."""
    calls = tab.services.sendbird.call_counts
    await run(
        tab.auth.register(
            {
                "username": "carol",
                "display_name": "Carol",
                "password": PASSWORD,
                "confirm_password": PASSWORD,
            }
        )
    )
    await run(tab.chat.open_chat())
    user_id = tab.chat.sendbird_user_id
    assert tab.chat.session_token
    assert dict(calls) == {"POST /v3/users": 1, "POST /v3/users/{user_id}/token": 1}

    await run(tab.chat.open_chat())  # a reload within the token's life
    assert sum(calls.values()) == 2

    await tab.services.tokens.forget(user_id)  # what a restarted process knows about the user
    calls.clear()
    await run(tab.chat.open_chat())
    assert dict(calls) == {"POST /v3/users/{user_id}/token": 1}
    assert await tab.issued(user_id) == 2
