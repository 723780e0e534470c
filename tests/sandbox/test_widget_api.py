"""The REST surface the widget's SDK uses: channels, messages, session keys, CORS."""

from __future__ import annotations

import asyncio
import time

import pytest
from sandbox_helpers import APP_ID, BOT_ID, Sandbox, assert_error, user_path

SDK_PREFLIGHT_HEADERS = (
    "access-token,app-id,content-type,request-sent-timestamp,sb-sdk-user-agent,sb-user-agent,"
    "sendbird,session-key"
)


def session_key(sandbox: Sandbox, user_id: str = "user1") -> str:
    """Create the user and get a session key the way the SDK does when offline."""
    sandbox.create_user(user_id)
    token = sandbox.issue_token(user_id)
    response = sandbox.anon.post(
        user_path(user_id, "/session_key"), json={"token": token, "expiring_session": True}
    )
    assert response.status_code == 200, response.text
    return response.json()["key"]


def test_widget_setting(sandbox: Sandbox) -> None:
    response = sandbox.anon.get(f"/v3/bots/{BOT_ID}/{APP_ID}/widget_setting")
    assert response.status_code == 200
    style = response.json()["bot_style"]
    assert style["color"]["accent_color"].startswith("#")
    assert "auto_open" in style
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(("bot", "app"), [("other-bot", APP_ID), (BOT_ID, "OTHERAPP")])
def test_widget_setting_unknown_bot_or_app(sandbox: Sandbox, bot: str, app: str) -> None:
    assert_error(sandbox.anon.get(f"/v3/bots/{bot}/{app}/widget_setting"), 400, 400201)


def test_cors_preflight(sandbox: Sandbox) -> None:
    response = sandbox.anon.options(
        "/v3/group_channels/x/messages",
        headers={
            "Origin": "http://127.0.0.1:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": SDK_PREFLIGHT_HEADERS,
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == "*"
    for method in ("GET", "POST", "PUT", "DELETE"):
        assert method in response.headers["access-control-allow-methods"]
    assert sandbox.http.get("/__sandbox__/stats").json()["widget_api"] == {}


def test_cors_headers_on_errors(sandbox: Sandbox) -> None:
    response = sandbox.anon.get("/v3/group_channels/nope", headers={"Session-Key": "bad"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_create_and_get_channel(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    created = sandbox.anon.post(
        "/v3/group_channels",
        headers={"Session-Key": key},
        json={
            "user_ids": ["user1", BOT_ID],
            "is_distinct": False,
            "name": "AI Chatbot Widget Channel",
            "data": '{"first_message_data":[]}',
        },
    )
    assert created.status_code == 200, created.text
    channel = created.json()
    assert channel["is_created"] is True
    assert channel["name"] == "AI Chatbot Widget Channel"
    assert channel["data"] == '{"first_message_data":[]}'
    assert {m["user_id"] for m in channel["members"]} == {"user1", BOT_ID}
    assert channel["member_count"] == 2
    url = channel["channel_url"]
    for path in (f"/v3/group_channels/{url}", f"/v3/sdk/group_channels/{url}"):
        fetched = sandbox.anon.get(
            path, params={"show_member": "true"}, headers={"Session-Key": key}
        )
        assert fetched.status_code == 200
        body = fetched.json()
        assert body["channel_url"] == url
        bot = next(m for m in body["members"] if m["user_id"] == BOT_ID)
        assert bot["nickname"] == "Sandbox Bot"


def test_distinct_channel_is_reused(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    body = {"user_ids": ["user1", BOT_ID], "is_distinct": True}
    first = sandbox.anon.post("/v3/group_channels", headers={"Session-Key": key}, json=body)
    second = sandbox.anon.post("/v3/group_channels", headers={"Session-Key": key}, json=body)
    assert first.json()["channel_url"] == second.json()["channel_url"]
    assert second.json()["is_created"] is False


def test_channel_creation_validation(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    headers = {"Session-Key": key}
    post = sandbox.anon.post
    assert_error(post("/v3/group_channels", headers=headers, json={}), 400, 400105)
    assert_error(post("/v3/group_channels", headers=headers, json={"user_ids": "x"}), 400, 400102)
    response = post("/v3/group_channels", headers=headers, json={"user_ids": ["ghost"]})
    assert_error(response, 400, 400201)


def test_unknown_channel_is_400201(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    headers = {"Session-Key": key}
    for path in (
        "/v3/group_channels/nope",
        "/v3/sdk/group_channels/nope",
        "/v3/group_channels/nope/messages",
        "/v3/group_channels/nope/mute/user1",
    ):
        assert_error(sandbox.anon.get(path, headers=headers), 400, 400201)


async def test_messages_after_chat(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        for text in ("hello 1", "hello 2"):
            await client.request("MESG", {"channel_url": url, "message": text})
            await client.wait_for("MESG")  # the bot's reply
            await asyncio.sleep(0.005)  # distinct timestamps for the pagination checks
    headers = {"Session-Key": client.logi["key"]}
    base = f"/v3/group_channels/{url}/messages"
    latest = {
        "is_sdk": "true",
        "prev_limit": 100,
        "next_limit": 0,
        "include": "true",
        "reverse": "false",
        "message_ts": 9007199254740991,
    }
    messages = sandbox.anon.get(base, params=latest, headers=headers).json()["messages"]
    assert [m["user"]["user_id"] for m in messages] == ["user1", BOT_ID, "user1", BOT_ID]
    assert messages[0]["message"] == "hello 1"
    assert [m["created_at"] for m in messages] == sorted(m["created_at"] for m in messages)
    assert messages[1]["extended_message_payload"]["suggested_replies"]
    assert all(m["message_id"] == m["msg_id"] for m in messages)

    reverse = dict(latest, prev_limit=30, next_limit=30, reverse="true")
    reversed_msgs = sandbox.anon.get(base, params=reverse, headers=headers).json()["messages"]
    assert [m["msg_id"] for m in reversed_msgs] == [m["msg_id"] for m in reversed(messages)]

    limited = dict(latest, prev_limit=2)
    last_two = sandbox.anon.get(base, params=limited, headers=headers).json()["messages"]
    assert [m["msg_id"] for m in last_two] == [m["msg_id"] for m in messages[2:]]

    pivot = messages[1]["created_at"]
    after = dict(latest, prev_limit=0, next_limit=100, message_ts=pivot, include="false")
    newer = sandbox.anon.get(base, params=after, headers=headers).json()["messages"]
    assert [m["msg_id"] for m in newer] == [m["msg_id"] for m in messages[2:]]
    around = dict(latest, prev_limit=1, next_limit=1, message_ts=pivot)
    middle = sandbox.anon.get(base, params=around, headers=headers).json()["messages"]
    assert [m["msg_id"] for m in middle] == [m["msg_id"] for m in messages[1:3]]

    gap = sandbox.anon.get(
        f"/v3/group_channels/{url}/messages_gap",
        params={
            "prev_start_ts": messages[0]["created_at"],
            "prev_end_ts": 9007199254740991,
            "prev_cache_count": 2,
            "next_start_ts": 0,
            "next_end_ts": 9007199254740991,
            "next_cache_count": 2,
            "reverse": "true",
        },
        headers=headers,
    ).json()
    assert gap["is_huge_gap"] is False
    assert len(gap["prev_messages"]) == 4
    assert set(gap) >= {"prev_hasmore", "next_messages", "next_hasmore"}

    channel = sandbox.anon.get(f"/v3/sdk/group_channels/{url}", headers=headers).json()
    assert channel["last_message"]["msg_id"] == messages[-1]["msg_id"]


def test_changelogs_mute_and_my_channels(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    url = sandbox.create_channel(key, "user1")
    headers = {"Session-Key": key}
    changelogs = sandbox.anon.get(
        f"/v3/group_channels/{url}/messages/changelogs",
        params={"change_ts": int(time.time() * 1000)},
        headers=headers,
    )
    assert changelogs.json() == {"updated": [], "deleted": [], "has_more": False, "next": ""}
    mute = sandbox.anon.get(f"/v3/group_channels/{url}/mute/user1", headers=headers).json()
    assert mute["is_muted"] is False
    assert mute["remaining_duration"] == -1
    mine = sandbox.anon.get("/v3/users/user1/my_group_channels", headers=headers).json()
    assert [c["channel_url"] for c in mine["channels"]] == [url]


def test_session_key_requires_a_valid_token(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    path = user_path("user1", "/session_key")
    body = {"services": ["chat"], "expiring_session": True}
    assert_error(sandbox.anon.post(path, json=body), 400, 400302)
    assert_error(sandbox.anon.post(path, json={"token": "forged"}), 400, 400302)
    sandbox.create_user("user2")
    other = sandbox.issue_token("user2")
    assert_error(sandbox.anon.post(path, json={"token": other}), 400, 400302)
    own = sandbox.issue_token("user1")
    response = sandbox.anon.post(path, json={"token": own, **body})
    assert response.status_code == 200
    assert set(response.json()) == {"key"}


def test_session_key_path_is_not_encoded_by_the_sdk(sandbox: Sandbox) -> None:
    sandbox.create_user("a/b")
    token = sandbox.issue_token("a/b")
    response = sandbox.anon.post("/v3/users/a/b/session_key", json={"token": token})
    assert response.status_code == 200, response.text


def test_sdk_paths_with_unencoded_user_ids(sandbox: Sandbox) -> None:
    """The browser SDK leaves ``/`` unencoded in some paths (seen for ``mute``)."""
    key = session_key(sandbox, "user 1/ü")
    url = sandbox.create_channel(key, "user 1/ü")
    headers = {"Session-Key": key}
    mute = sandbox.anon.get(f"/v3/group_channels/{url}/mute/user%201/%C3%BC", headers=headers)
    assert mute.status_code == 200 and mute.json()["is_muted"] is False
    mine = sandbox.anon.get("/v3/users/user%201/%C3%BC/my_group_channels", headers=headers)
    assert [c["channel_url"] for c in mine.json()["channels"]] == [url]
    renamed = sandbox.anon.put(
        "/v3/users/user%201/%C3%BC", headers=headers, json={"nickname": "Bob"}
    )
    assert renamed.json()["nickname"] == "Bob"
    stats = sandbox.http.get("/__sandbox__/stats").json()["widget_api"]
    assert "GET /v3/* (unhandled)" not in stats


def test_expired_token_cannot_refresh_the_key(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    sandbox.control("user1", "expire-token")
    response = sandbox.anon.post(user_path("user1", "/session_key"), json={"token": token})
    body = assert_error(response, 400, 400302)
    assert "expired" in body["message"].lower()


def test_session_key_validation(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    url = sandbox.create_channel(key, "user1")
    path = f"/v3/sdk/group_channels/{url}"
    assert sandbox.anon.get(path, headers={"Session-Key": key}).status_code == 200
    assert_error(sandbox.anon.get(path, headers={"Session-Key": "unknown"}), 400, 400303)
    assert_error(sandbox.anon.get(path), 400, 400108)
    sandbox.control("user1", "expire-session-key")
    body = assert_error(sandbox.anon.get(path, headers={"Session-Key": key}), 400, 400309)
    assert body["message"] == "This session has expired."
    fresh = sandbox.anon.post(
        user_path("user1", "/session_key"), json={"token": sandbox.issue_token("user1")}
    ).json()["key"]
    assert sandbox.anon.get(path, headers={"Session-Key": fresh}).status_code == 200
    sandbox.control("user1", "revoke")
    assert_error(sandbox.anon.get(path, headers={"Session-Key": fresh}), 400, 400310)
    assert_error(sandbox.anon.get(path, headers={"Session-Key": key}), 400, 400310)


def test_access_token_header_is_accepted(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    url = sandbox.create_channel(key, "user1")
    token = sandbox.issue_token("user1")
    response = sandbox.anon.get(f"/v3/sdk/group_channels/{url}", headers={"Access-Token": token})
    assert response.status_code == 200


def test_update_own_user_with_session_key(sandbox: Sandbox) -> None:
    key = session_key(sandbox)
    response = sandbox.anon.put(
        "/v3/users/user1", headers={"Session-Key": key}, json={"nickname": "Bob", "profile_url": ""}
    )
    assert response.status_code == 200
    assert sandbox.http.get("/v3/users/user1").json()["nickname"] == "Bob"
    sandbox.create_user("user2")
    response = sandbox.anon.put(
        "/v3/users/user2", headers={"Session-Key": key}, json={"nickname": "Mallory"}
    )
    assert_error(response, 400, 400108)
    stats = sandbox.http.get("/__sandbox__/stats").json()
    assert stats["widget_api"]["PUT /v3/users/{user_id}"] == 2
    assert "PUT /v3/users/{user_id}" not in stats["platform_api"]


def test_unknown_sdk_route_answers_empty_object(sandbox: Sandbox) -> None:
    response = sandbox.anon.get("/v3/sdk/statistics")
    assert response.status_code == 200
    assert response.json() == {}
    assert sandbox.anon.post("/v3/some/new/route", json={}).json() == {}
    stats = sandbox.http.get("/__sandbox__/stats").json()
    assert stats["widget_api"]["GET /v3/* (unhandled)"] == 1


def test_unknown_non_v3_route_is_404(sandbox: Sandbox) -> None:
    assert_error(sandbox.anon.get("/favicon.ico"), 404, 400404)
    assert_error(sandbox.http.get("/__sandbox__/nope"), 404, 400404)
    assert_error(sandbox.anon.get("/__sandbox__/nope"), 401, 400401)  # the mount is guarded
