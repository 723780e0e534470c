"""The chat WebSocket: handshake, LOGI, PING, MESG with the bot, READ and bad input."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import pytest
from sandbox_helpers import BOT_ID, Sandbox
from wsclient import subprotocol_for

LOGI_FIELDS = {
    "user_id",
    "nickname",
    "profile_url",
    "metadata",
    "is_active",
    "key",
    "ekey",
    "login_ts",
    "ping_interval",
    "pong_timeout",
    "reconnect",
    "max_unread_cnt_on_super_group",
    "emoji_hash",
    "file_upload_size_limit",
    "use_reaction",
    "application_attributes",
    "premium_feature_list",
    "uikit_config",
    "message_template",
}


async def test_subprotocol_is_echoed_exactly(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        assert client.offered_subprotocol == subprotocol_for({"token": token})
        assert client.offered_subprotocol.startswith("%7B%22token%22%3A%22")
        assert client.accepted_subprotocol == client.offered_subprotocol


async def test_login_payload(sandbox: Sandbox) -> None:
    client = await sandbox.login("user1", "Alice")
    async with client:
        logi = client.logi
        assert logi is not None
        assert set(logi) == LOGI_FIELDS
        assert "services" not in logi
        assert logi["user_id"] == "user1"
        assert logi["nickname"] == "Alice"
        # Seconds, not milliseconds: the SDK multiplies them by 1000.
        assert logi["ping_interval"] == 15
        assert logi["pong_timeout"] == 5
        assert logi["reconnect"] == {"interval": 3, "max_interval": 60, "mul": 2, "retry_cnt": 5}
        assert isinstance(logi["key"], str) and len(logi["key"]) >= 32
        assert logi["login_ts"] > 1_600_000_000_000
    user = sandbox.http.get("/v3/users/user1").json()
    assert user["has_ever_logged_in"] is True


async def test_online_state_follows_the_socket(sandbox: Sandbox) -> None:
    client = await sandbox.login("user1")
    assert sandbox.http.get("/v3/users/user1").json()["is_online"] is True
    await client.close()
    for _ in range(50):
        if not sandbox.http.get("/v3/users/user1").json()["is_online"]:
            break
        await asyncio.sleep(0.02)
    user = sandbox.http.get("/v3/users/user1").json()
    assert user["is_online"] is False
    assert user["last_seen_at"] > 0


async def test_ping_pong(sandbox: Sandbox) -> None:
    client = await sandbox.login()
    async with client:
        await client.send("PING", {"id": 1732150000000, "active": 1, "req_id": "p-1"})
        code, payload = await client.recv()
        assert code == "PONG"
        assert payload["id"] == 1732150000000
        assert isinstance(payload["ts"], int)


async def test_message_ack_typing_and_bot_reply(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        await client.send(
            "MESG",
            {
                "channel_url": url,
                "message": "hello 1",
                "mention_type": "users",
                "mentioned_user_ids": [],
                "mentioned_message_template": "hello 1",
                "reply_to_channel": False,
                "req_id": "rq-1",
                "pin_message": False,
            },
        )
        code, ack = await client.recv()
        assert code == "MESG"
        assert ack["req_id"] == "rq-1"
        assert ack["message"] == "hello 1"
        assert ack["channel_url"] == url
        assert ack["channel_type"] == "group"
        assert ack["user"]["user_id"] == "user1"
        assert ack["type"] == "MESG"
        assert isinstance(ack["msg_id"], int) and ack["created_at"] > 0
        code, typing_start = await client.recv()
        assert (code, typing_start["cat"]) == ("SYEV", 10900)
        assert typing_start["data"]["user_id"] == BOT_ID
        assert typing_start["channel_url"] == url
        code, typing_end = await client.recv()
        assert (code, typing_end["cat"]) == ("SYEV", 10901)
        code, reply = await client.recv()
        assert code == "MESG"
        assert "req_id" not in reply
        assert reply["user"]["user_id"] == BOT_ID
        assert reply["user"]["nickname"] == "Sandbox Bot"
        assert reply["msg_id"] > ack["msg_id"]
        suggestions = reply["extended_message_payload"]["suggested_replies"]
        assert suggestions and all(isinstance(s, str) for s in suggestions)
        assert reply["message"].startswith("Hi! I'm the Sandbox Bot")


async def test_bot_is_deterministic_and_fast(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        replies = []
        for _ in range(2):
            loop = asyncio.get_running_loop()
            started = loop.time()
            await client.request(
                "MESG", {"channel_url": url, "message": "How does the token work?"}
            )
            reply, _ = await client.wait_for("MESG")
            assert loop.time() - started < 0.3 + 0.2
            replies.append(reply)
        assert replies[0]["message"] == replies[1]["message"]
        assert "POST /v3/users/{user_id}/token" in replies[0]["message"]
        assert (
            replies[0]["extended_message_payload"]["suggested_replies"]
            == replies[1]["extended_message_payload"]["suggested_replies"]
        )


async def test_message_pushed_to_the_users_other_socket(sandbox: Sandbox) -> None:
    first, url = await sandbox.chat()
    token = sandbox.issue_token("user1")
    second = await sandbox.connect(token=token, user_id="user1")
    await second.read_login()
    async with first, second:
        _, ack = await first.request("MESG", {"channel_url": url, "message": "both tabs"})
        pushed, _ = await second.wait_for("MESG")
        assert pushed["msg_id"] == ack["msg_id"]
        assert "req_id" not in pushed
        reply, _ = await second.wait_for("MESG")
        assert reply["user"]["user_id"] == BOT_ID


async def test_read_ack(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        await client.send("READ", {"channel_url": url, "req_id": "read-1"})
        code, ack = await client.recv()
        assert code == "READ"
        assert ack["req_id"] == "read-1"
        assert ack["channel_url"] == url
        assert ack["channel_type"] == "group"
        assert ack["user"]["user_id"] == "user1"
        assert isinstance(ack["ts"], int)
    channel = sandbox.anon.get(
        f"/v3/sdk/group_channels/{url}", headers={"Session-Key": client.logi["key"]}
    ).json()
    assert channel["read_receipt"]["user1"] == ack["ts"]


async def test_typing_and_mack_get_no_reply(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        await client.send("TPST", {"channel_url": url, "time": 1, "req_id": "t1"})
        await client.send("TPEN", {"channel_url": url, "time": 0, "req_id": "t2"})
        await client.send("MACK", {"channel_url": url, "msg_id": 1002, "req_id": "m1"})
        await client.assert_silent(0.3)


async def test_several_commands_in_one_frame(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        frame = (
            'PING{"id":1,"req_id":"a"}\n'
            + "READ"
            + json.dumps({"channel_url": url, "req_id": "b"})
            + '\nPING{"id":2,"req_id":"c"}\n'
        )
        await client.send_raw(frame)
        codes = [(await client.recv())[0] for _ in range(3)]
        assert codes == ["PONG", "READ", "PONG"]


async def test_gzip_binary_frame_is_accepted(sandbox: Sandbox) -> None:
    client = await sandbox.login()
    async with client:
        await client.send_raw(gzip.compress(b'PING{"id":5}\n'))
        code, payload = await client.recv()
        assert (code, payload["id"]) == ("PONG", 5)


@pytest.mark.parametrize(
    ("frame", "code", "req_id"),
    [
        ("??", 400403, None),
        ("hello world", 400403, None),
        ('MESG{"channel_url": "x", "req_id": "bad-json"', 400403, "bad-json"),
        ('MESG["not", "an", "object"]', 400403, None),
        ('ZZZZ{"req_id":"unknown-1"}', 400111, "unknown-1"),
        ('FILE{"req_id":"unsupported-1"}', 400111, "unsupported-1"),
        ('MESG{"message":"no channel","req_id":"m-1"}', 400105, "m-1"),
        ('MESG{"channel_url":"nope","message":"x","req_id":"m-2"}', 400201, "m-2"),
        ('READ{"channel_url":42,"req_id":"r-1"}', 400100, "r-1"),
    ],
)
async def test_bad_input_gets_eror_and_the_socket_survives(
    sandbox: Sandbox, frame: str, code: int, req_id: str | None
) -> None:
    client, url = await sandbox.chat()
    bystander, _ = await sandbox.chat("user2")
    async with client, bystander:
        await client.send_raw(frame + "\n")
        got, payload = await client.recv()
        assert got == "EROR"
        assert payload["code"] == code
        assert isinstance(payload["message"], str)
        assert payload.get("req_id") == req_id
        _, ack = await client.request("MESG", {"channel_url": url, "message": "still here"})
        assert ack["message"] == "still here"
        await bystander.send("PING", {"id": 9})
        pong, _ = await bystander.wait_for("PONG")
        assert pong["id"] == 9


async def test_message_to_someone_elses_channel_is_refused(sandbox: Sandbox) -> None:
    owner, url = await sandbox.chat("owner")
    intruder = await sandbox.login("intruder")
    async with owner, intruder:
        code, payload = await intruder.request("MESG", {"channel_url": url, "message": "hi"})
        assert (code, payload["code"]) == ("EROR", 400108)
        await owner.assert_silent(0.2)


async def test_oversize_frame_gets_eror(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        big = "x" * (70 * 1024)
        await client.send("MESG", {"channel_url": url, "message": big, "req_id": "big-1"})
        code, payload = await client.recv()
        assert code == "EROR"
        assert payload["code"] == 400111
        assert payload["req_id"] == "big-1"
        assert "too large" in payload["message"]
        _, ack = await client.request("MESG", {"channel_url": url, "message": "small"})
        assert ack["message"] == "small"
    key = client.logi["key"]
    messages = sandbox.anon.get(
        f"/v3/group_channels/{url}/messages",
        params={"prev_limit": 50},
        headers={"Session-Key": key},
    ).json()["messages"]
    assert big not in [m["message"] for m in messages]
    assert "small" in [m["message"] for m in messages]


async def test_missing_credentials(sandbox: Sandbox) -> None:
    client = await sandbox.connect(subprotocol=subprotocol_for({}))
    async with client:
        logi = await client.read_login()
        assert logi["error"] is True
        assert logi["code"] == 400302
        assert await client.wait_closed(2.0) == 1000


async def test_wrong_app_id_is_refused(sandbox: Sandbox) -> None:
    from wsclient import WidgetClient

    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    client = await WidgetClient.open(sandbox.ws_url, "OTHERAPP", token=token, user_id="user1")
    async with client:
        logi = await client.read_login()
        assert (logi["error"], logi["code"]) == (True, 400304)


async def test_token_for_another_user_is_refused(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    sandbox.create_user("user2")
    token = sandbox.issue_token("user2")
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        logi = await client.read_login()
        assert (logi["error"], logi["code"]) == (True, 400302)


async def test_stats_count_socket_traffic(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    async with client:
        await client.request("MESG", {"channel_url": url, "message": "count me"})
        await client.wait_for("MESG")
        await client.send("PING", {"id": 1})
        await client.wait_for("PONG")
        stats = sandbox.http.get("/__sandbox__/stats").json()["websocket"]
        assert stats["connections"] == 1
        assert stats["active_connections"] == 1
        assert stats["LOGI"] == 1
        assert stats["MESG"] == 1
        assert stats["PING"] == 1


async def test_logs_never_contain_credentials(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    client, url = await sandbox.chat()
    # Another expiry than the connect token's, so this JWT is not the one that the test's own
    # WebSocket client logs in its handshake.
    token = sandbox.issue_token("user1", expires_at=int(time.time() + 7200) * 1000)
    async with client:
        await client.request("MESG", {"channel_url": url, "message": "secret?"})
        _, refreshed = await client.request("LOGI", {"token": token, "expiring_session": 1})
        await client.wait_for("MESG")
    sandbox.control("user1", "revoke")
    text = caplog.text
    assert "sample_app.sandbox" in text
    for secret in (token, client.logi["key"], refreshed["new_key"], sandbox.config.api_token):
        assert secret not in text
