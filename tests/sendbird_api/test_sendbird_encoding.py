"""User ids on the wire, and local validation that costs no request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sample_app.sendbird_api import (
    SendbirdClient,
    SendbirdInputError,
    encode_path_segment,
)
from tests.sendbird_api.scripted_server import API_TOKEN, Reply, ScriptedServer

# (user id, the segment expected on the wire) - written out by hand on purpose, so the
# test does not just repeat the implementation's quote() call.
IDS = [
    ("alice", "alice"),
    ("a/b", "a%2Fb"),
    ("a?b=c", "a%3Fb%3Dc"),
    ("a#frag", "a%23frag"),
    ("100%", "100%25"),
    ("%2F", "%252F"),
    ("with space", "with%20space"),
    ("plus+sign", "plus%2Bsign"),
    ("ünïcödé", "%C3%BCn%C3%AFc%C3%B6d%C3%A9"),
    ("用户", "%E7%94%A8%E6%88%B7"),
    ("emoji-😀", "emoji-%F0%9F%98%80"),
    ("dots.in.id", "dots.in.id"),
    (".", "%2E"),
    ("..", "%2E%2E"),
    ("tilde~_-", "tilde~_-"),
]


@pytest.mark.parametrize(("user_id", "segment"), IDS)
def test_encode_path_segment(user_id: str, segment: str) -> None:
    assert encode_path_segment(user_id) == segment


@pytest.mark.parametrize(("user_id", "segment"), IDS)
async def test_user_ids_reach_the_server_intact(
    server: ScriptedServer, client: SendbirdClient, user_id: str, segment: str
) -> None:
    server.reply(
        Reply(json={"user_id": user_id, "nickname": "n"}),
        Reply(json={"token": "eyJa.b.c", "expires_at": 1772368200000}),
    )
    await client.get_user(user_id)
    await client.issue_session_token(user_id, datetime.now(UTC) + timedelta(minutes=5))
    get, post = server.requests
    assert get.raw_path == f"/v3/users/{segment}".encode("ascii")
    assert post.raw_path == f"/v3/users/{segment}/token".encode("ascii")
    # The server decodes the one segment back to exactly the id we meant.
    assert get.segments == ["v3", "users", user_id]
    assert post.segments == ["v3", "users", user_id, "token"]


async def test_base_url_with_a_path_prefix_and_v3_suffix(server: ScriptedServer) -> None:
    server.reply(Reply(json={"user_id": "a/b", "nickname": ""}))
    async with SendbirdClient(f"{server.base_url}/v3/", API_TOKEN) as client:
        assert client.base_url == server.base_url
        await client.get_user("a/b")
    assert server.requests[0].raw_path == b"/v3/users/a%2Fb"

    server.reset()
    server.reply(Reply(json={"user_id": "a/b", "nickname": ""}))
    async with SendbirdClient(f"{server.base_url}/emulator", API_TOKEN) as client:
        await client.get_user("a/b")
    assert server.requests[0].raw_path == b"/emulator/v3/users/a%2Fb"


# ---------------------------------------------------------- local validation

LONG_ID = "u" * 81
FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_user(""), "user_id"),
        (lambda c: c.get_user(LONG_ID), "user_id"),
        (lambda c: c.get_user(42), "user_id"),
        (lambda c: c.create_user("", "Nick"), "user_id"),
        (lambda c: c.create_user("ok", "n" * 81), "nickname"),
        (lambda c: c.create_user("ok", "Nick", "https://x/" + "p" * 2040), "profile_url"),
        (lambda c: c.ensure_user("ok", "n" * 81), "nickname"),
        (lambda c: c.ensure_user("", "Nick"), "user_id"),
        (lambda c: c.update_user("ok"), "update_user"),
        (lambda c: c.update_user("ok", nickname="n" * 81), "nickname"),
        (lambda c: c.issue_session_token(LONG_ID, FUTURE), "user_id"),
        (lambda c: c.issue_session_token("ok", datetime(2030, 1, 1)), "expires_at"),
        (lambda c: c.issue_session_token("ok", 1893456000000), "expires_at"),
        (lambda c: c.revoke_session_tokens(""), "user_id"),
    ],
)
async def test_bad_input_is_rejected_without_a_request(
    server: ScriptedServer, client: SendbirdClient, call, field: str
) -> None:
    with pytest.raises(SendbirdInputError) as caught:
        await call(client)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert "Nothing was sent to Sendbird" in str(caught.value)
    assert server.requests == []
    assert sum(client.call_counts.values()) == 0


async def test_limits_are_inclusive(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(Reply(json={"user_id": "u" * 80, "nickname": "n" * 80}))
    await client.create_user("u" * 80, "n" * 80, "p" * 2048)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "base_url",
    [
        "",
        "api.sendbird.com",
        "ftp://api.sendbird.com",
        "https://user:pw@api.sendbird.com",
        "https://api.sendbird.com/?x=1",
        "http://",
    ],
)
def test_unusable_base_urls_are_rejected(base_url: str) -> None:
    with pytest.raises(SendbirdInputError) as caught:
        SendbirdClient(base_url, API_TOKEN)
    assert caught.value.field == "base_url"


@pytest.mark.parametrize("token", ["", "has space", "line\nbreak", None])
def test_unusable_api_tokens_are_rejected_without_echoing_them(token: object) -> None:
    with pytest.raises(SendbirdInputError) as caught:
        SendbirdClient("https://api-x.sendbird.com", token)  # type: ignore[arg-type]
    assert "SENDBIRD_API_TOKEN" in str(caught.value)
    if token:
        assert str(token) not in str(caught.value)


def test_application_id_is_validated() -> None:
    with pytest.raises(SendbirdInputError, match="SENDBIRD_APP_ID"):
        SendbirdClient.for_application("evil.com/x", API_TOKEN)
