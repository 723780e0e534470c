"""Session lifecycle over the socket: token expiry, key expiry, key refresh, revocation."""

from __future__ import annotations

import asyncio
import time

from sandbox_helpers import Sandbox, user_path


async def test_expire_token_then_refresh_with_a_new_token(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat()
    old_token = sandbox.issue_token("user1")  # a second token, issued before the expiry
    async with client:
        result = sandbox.control("user1", "expire-token")
        assert result["connections_notified"] == 1
        assert result["tokens_expired"] == 2
        code, expr = await client.recv()
        assert (code, expr) == ("EXPR", {"reason": 400302, "expires_in": 0})

        # Refreshing with a token that expired is refused, with the req_id echoed.
        code, refused = await client.request("LOGI", {"token": old_token, "expiring_session": 1})
        assert code == "LOGI"
        assert refused["error"] is True
        assert refused["code"] == 400302
        assert refused["req_id"]

        # onSessionTokenRequired → server issues a new token → LOGI with it.
        new_token = sandbox.issue_token("user1")
        code, logi = await client.request("LOGI", {"token": new_token, "expiring_session": 1})
        assert code == "LOGI"
        assert "error" not in logi
        assert logi["new_key"] == logi["key"] != client.logi["key"]
        assert logi["user_id"] == "user1"
        assert logi["ping_interval"] == 15
        assert logi["reconnect"]["interval"] == 3
        assert "services" not in logi

        # The session keeps working.
        _, ack = await client.request("MESG", {"channel_url": url, "message": "after refresh"})
        assert ack["message"] == "after refresh"
    tokens = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "user1"}).json()
    assert [t["expired"] for t in tokens["tokens"]] == [True, True, False]


async def test_expire_session_key_then_refresh_with_the_current_token(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    client = await sandbox.connect(token=token, user_id="user1")
    old_key = (await client.read_login())["key"]
    async with client:
        result = sandbox.control("user1", "expire-session-key")
        assert result["connections_notified"] == 1
        code, expr = await client.recv()
        assert (code, expr) == ("EXPR", {"reason": 400309, "expires_in": 0})
        # Until refreshed, commands needing the session are refused with 400309.
        code, refused = await client.request("READ", {"channel_url": "x"})
        assert (code, refused["code"]) == ("EROR", 400309)
        code, logi = await client.request("LOGI", {"token": token, "expiring_session": 1})
        assert code == "LOGI" and "error" not in logi
        assert logi["new_key"] != old_key
        await client.assert_silent(0.2)

    # Reconnecting with the expired key fails with 400309...
    stale = await sandbox.connect(key=old_key)
    async with stale:
        refused = await stale.read_login()
        assert (refused["error"], refused["code"]) == (True, 400309)
        assert refused["message"] == "This session has expired."
    # ...while the refreshed key logs in.
    fresh = await sandbox.connect(key=logi["new_key"])
    async with fresh:
        assert (await fresh.read_login())["user_id"] == "user1"


async def test_key_refresh_after_token_expired_needs_a_new_token(sandbox: Sandbox) -> None:
    """key_then_token.log: EXPR 400309, LOGI with the old token → 400302, new token → ok."""
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    client = await sandbox.connect(token=token, user_id="user1")
    await client.read_login()
    async with client:
        sandbox.control("user1", "expire-token")
        assert (await client.recv())[1]["reason"] == 400302
        sandbox.control("user1", "expire-session-key")
        assert (await client.recv())[1]["reason"] == 400309
        code, refused = await client.request("LOGI", {"token": token, "expiring_session": 1})
        assert (code, refused["error"], refused["code"]) == ("LOGI", True, 400302)
        _, logi = await client.request(
            "LOGI", {"token": sandbox.issue_token("user1"), "expiring_session": 1}
        )
        assert "error" not in logi and logi["new_key"]


async def test_reconnect_with_session_key(sandbox: Sandbox) -> None:
    """ws_close.log: the socket drops, the SDK reconnects with {"auth": key}, no user_id."""
    client = await sandbox.login("user1", "Alice")
    key = client.logi["key"]
    async with client:
        closed = sandbox.control("user1", "disconnect")
        assert closed["connections_closed"] == 1
        assert await client.wait_closed() == 1000
    again = await sandbox.connect(key=key)
    async with again:
        assert "user_id=" not in again.ws.request.path
        logi = await again.read_login()
        assert logi["user_id"] == "user1"
        assert logi["nickname"] == "Alice"
        assert logi["key"] == key


async def test_reconnect_after_key_and_token_expired(sandbox: Sandbox) -> None:
    """ws_close_expired.log: key refused on reconnect, REST refresh without then with a token."""
    client = await sandbox.login("user1")
    old_key = client.logi["key"]
    async with client:
        sandbox.control("user1", "expire-token")
        sandbox.control("user1", "expire-session-key")
        sandbox.control("user1", "disconnect")
        assert await client.wait_closed() == 1000
    stale = await sandbox.connect(key=old_key)
    async with stale:
        assert (await stale.read_login())["code"] == 400309
    path = user_path("user1", "/session_key")
    body = {"services": ["chat"], "expiring_session": True}
    first = sandbox.anon.post(path, json=body)
    assert first.json()["code"] == 400302
    second = sandbox.anon.post(path, json={"token": sandbox.issue_token("user1"), **body})
    new_key = second.json()["key"]
    again = await sandbox.connect(key=new_key)
    async with again:
        logi = await again.read_login()
        assert (logi["user_id"], logi["key"]) == ("user1", new_key)


async def test_unknown_session_key_is_refused(sandbox: Sandbox) -> None:
    client = await sandbox.connect(key="not-a-key")
    async with client:
        refused = await client.read_login()
        assert (refused["error"], refused["code"]) == (True, 400303)


async def test_session_key_expires_by_itself(start_sandbox) -> None:
    sandbox: Sandbox = start_sandbox(session_key_ttl=0.4)
    client = await sandbox.login()
    async with client:
        started = time.monotonic()
        code, expr = await client.recv(timeout=2.0)
        assert (code, expr) == ("EXPR", {"reason": 400309, "expires_in": 0})
        assert 0.3 <= time.monotonic() - started <= 1.5
        token = sandbox.issue_token("user1")
        _, logi = await client.request("LOGI", {"token": token, "expiring_session": 1})
        assert logi["new_key"]
        # The new key has its own timer.
        code, expr = await client.recv(timeout=2.0)
        assert expr["reason"] == 400309


async def test_revoke_closes_the_socket_and_kills_credentials(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    client = await sandbox.connect(token=token, user_id="user1")
    key = (await client.read_login())["key"]
    async with client:
        response = sandbox.http.delete(user_path("user1", "/token"))
        assert response.status_code == 200
        code, expr = await client.recv()
        assert (code, expr["reason"], expr["expires_in"]) == ("EXPR", 400310, 0)
        assert await client.wait_closed() == 1000
    by_token = await sandbox.connect(token=token, user_id="user1")
    async with by_token:
        refused = await by_token.read_login()
        assert (refused["error"], refused["code"]) == (True, 400310)
        assert await by_token.wait_closed() == 1000
    by_key = await sandbox.connect(key=key)
    async with by_key:
        refused = await by_key.read_login()
        assert (refused["error"], refused["code"]) == (True, 400310)
    # A token issued after the revocation works.
    fresh = await sandbox.connect(token=sandbox.issue_token("user1"), user_id="user1")
    async with fresh:
        assert "error" not in await fresh.read_login()


async def test_control_revoke_matches_platform_revoke(sandbox: Sandbox) -> None:
    client = await sandbox.login()
    async with client:
        result = sandbox.control("user1", "revoke")
        assert result["tokens_revoked"] == 1
        assert result["session_keys_revoked"] == 1
        assert result["connections_closed"] == 1
        assert (await client.recv())[1]["reason"] == 400310


async def test_initial_login_with_expired_token(sandbox: Sandbox) -> None:
    """initial_expired.log: LOGI error 400302, the socket closes, a new token works."""
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1", expires_at=int(time.time() * 1000) + 150)
    await asyncio.sleep(0.2)
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        refused = await client.read_login()
        assert refused == {"error": True, "code": 400302, "message": "Session token expired."}
        assert await client.wait_closed(2.0) == 1000
    fresh = await sandbox.connect(token=sandbox.issue_token("user1"), user_id="user1")
    async with fresh:
        assert (await fresh.read_login())["user_id"] == "user1"


async def test_other_users_are_not_affected(sandbox: Sandbox) -> None:
    alice = await sandbox.login("alice")
    bob, url = await sandbox.chat("bob")
    async with alice, bob:
        sandbox.control("alice", "revoke")
        assert (await alice.recv())[1]["reason"] == 400310
        await bob.assert_silent(0.2)
        _, ack = await bob.request("MESG", {"channel_url": url, "message": "still fine"})
        assert ack["message"] == "still fine"


def test_control_on_unknown_user_is_400201(sandbox: Sandbox) -> None:
    for action in ("expire-token", "expire-session-key", "revoke", "disconnect"):
        response = sandbox.http.post(f"/__sandbox__/users/ghost/{action}")
        assert response.status_code == 400
        assert response.json()["code"] == 400201
