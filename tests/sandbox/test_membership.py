"""A session sees only its own channels, as at Sendbird; the Platform API sees everything.

A channel that exists but that the session's user is not a member of answers 400108 ("Not
authorized"); one that does not exist answers 400201 (see :mod:`sample_app.sandbox.access`).
"""

from __future__ import annotations

import pytest
from sandbox_helpers import BOT_ID, Sandbox, assert_error, user_path

SECRET_TEXT = "the owner's private question"


def session_key(sandbox: Sandbox, user_id: str) -> str:
    """Create the user and get a session key over REST, as the SDK does when offline."""
    sandbox.create_user(user_id)
    response = sandbox.anon.post(
        user_path(user_id, "/session_key"), json={"token": sandbox.issue_token(user_id)}
    )
    assert response.status_code == 200, response.text
    return response.json()["key"]


async def owner_channel_with_a_message(sandbox: Sandbox) -> str:
    """The owner's channel with the bot, holding one message of the owner and the bot's reply."""
    owner, url = await sandbox.chat("owner")
    async with owner:
        _, ack = await owner.request("MESG", {"channel_url": url, "message": SECRET_TEXT})
        assert ack["message"] == SECRET_TEXT
        await owner.wait_for("MESG")  # the bot's reply
    return url


def channel_read_paths(url: str, user_id: str) -> list[str]:
    """Every SDK route that reads a channel or its messages."""
    return [
        f"/v3/group_channels/{url}",
        f"/v3/sdk/group_channels/{url}",
        f"/v3/group_channels/{url}/messages?prev_limit=100&message_ts=9007199254740991",
        f"/v3/group_channels/{url}/messages/changelogs?change_ts=0",
        f"/v3/group_channels/{url}/messages_gap?prev_start_ts=0&prev_end_ts=9007199254740991",
        f"/v3/group_channels/{url}/mute/{user_id}",
    ]


@pytest.mark.parametrize("credential", ["Session-Key", "Access-Token"])
async def test_another_users_channel_is_not_authorized(sandbox: Sandbox, credential: str) -> None:
    url = await owner_channel_with_a_message(sandbox)
    key = session_key(sandbox, "intruder")
    value = key if credential == "Session-Key" else sandbox.issue_token("intruder")
    for path in channel_read_paths(url, "intruder"):
        response = sandbox.anon.get(path, headers={credential: value})
        assert_error(response, 400, 400108)
        assert SECRET_TEXT not in response.text
        assert "owner" not in response.text


async def test_members_still_read_their_channel(sandbox: Sandbox) -> None:
    url = await owner_channel_with_a_message(sandbox)
    owner_login = sandbox.anon.post(
        user_path("owner", "/session_key"), json={"token": sandbox.issue_token("owner")}
    ).json()["key"]
    for path in channel_read_paths(url, "owner"):
        response = sandbox.anon.get(path, headers={"Session-Key": owner_login})
        assert response.status_code == 200, (path, response.text)
    messages = sandbox.anon.get(
        f"/v3/group_channels/{url}/messages", headers={"Session-Key": owner_login}
    ).json()["messages"]
    assert [m["user"]["user_id"] for m in messages] == ["owner", BOT_ID]


async def test_the_platform_api_reads_any_channel(sandbox: Sandbox) -> None:
    url = await owner_channel_with_a_message(sandbox)
    for path in channel_read_paths(url, "owner"):
        response = sandbox.http.get(path)
        assert response.status_code == 200, (path, response.text)
    messages = sandbox.http.get(f"/v3/group_channels/{url}/messages").json()["messages"]
    assert SECRET_TEXT in [m["message"] for m in messages]


def test_an_unknown_channel_is_still_not_found(sandbox: Sandbox) -> None:
    key = session_key(sandbox, "intruder")
    for path in channel_read_paths("sendbird_group_channel_nope", "intruder"):
        assert_error(sandbox.anon.get(path, headers={"Session-Key": key}), 400, 400201)


async def test_channel_lists_are_the_sessions_own(sandbox: Sandbox) -> None:
    url = await owner_channel_with_a_message(sandbox)
    key = session_key(sandbox, "intruder")
    headers = {"Session-Key": key}
    for path in ("/my_group_channels", "/my_group_channels/changelogs?change_ts=0"):
        response = sandbox.anon.get(user_path("owner", path), headers=headers)
        assert_error(response, 400, 400108)
        assert url not in response.text
    own = sandbox.anon.get(user_path("intruder", "/my_group_channels"), headers=headers).json()
    assert own["channels"] == []
    listed = sandbox.http.get(user_path("owner", "/my_group_channels")).json()["channels"]
    assert [c["channel_url"] for c in listed] == [url]


async def test_reading_a_channel_over_the_socket_needs_membership(sandbox: Sandbox) -> None:
    url = await owner_channel_with_a_message(sandbox)
    intruder = await sandbox.login("intruder")
    async with intruder:
        for code, payload in (
            ("READ", {"channel_url": url}),
            ("MESG", {"channel_url": url, "message": "let me in"}),
        ):
            got_code, got = await intruder.request(code, payload)
            assert (got_code, got["code"]) == ("EROR", 400108), got
    messages = sandbox.http.get(f"/v3/group_channels/{url}/messages").json()["messages"]
    assert "let me in" not in [m["message"] for m in messages]


async def test_a_removed_member_loses_access(sandbox: Sandbox) -> None:
    """A user deleted and re-created with the same id is no longer a member."""
    url = await owner_channel_with_a_message(sandbox)
    assert sandbox.http.delete("/v3/users/owner").status_code == 200
    key = session_key(sandbox, "owner")
    response = sandbox.anon.get(f"/v3/group_channels/{url}/messages", headers={"Session-Key": key})
    assert_error(response, 400, 400108)
    assert SECRET_TEXT not in response.text
