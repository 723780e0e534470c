"""The sandbox behaves closer to Sendbird: JWT session tokens, revoke-as-version, 10-minute
session keys, "Deny login", user deletion and refused logins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import pytest
from sandbox_helpers import API_TOKEN, BOT_ID, Sandbox, assert_error

from sample_app.sandbox import SandboxConfig, hs256
from sample_app.sandbox.context import SandboxContext
from sample_app.sandbox.control_client import AsyncSandboxControlClient, SandboxControlClient

SECRET = b"k" * 32


def context(sandbox: Sandbox) -> SandboxContext:
    """The running sandbox's state (its store and credentials), for white-box checks."""
    app = sandbox.server._app
    assert app is not None
    ctx: SandboxContext = app.state.sandbox
    return ctx


# -- HS256 ----------------------------------------------------------------------------------


def test_hs256_round_trip_and_known_vector() -> None:
    token = hs256.encode({"e": 1, "u": 2, "v": 3}, SECRET)
    assert hs256.decode(token, SECRET) == {"e": 1, "u": 2, "v": 3}
    assert token == hs256.encode({"e": 1, "u": 2, "v": 3}, SECRET)  # deterministic
    # Recompute the signature independently of the module.
    head, body, sig = token.split(".")
    expected = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == sig
    assert hs256.unverified_parts(token) == (
        {"alg": "HS256", "typ": "JWT"},
        {"e": 1, "u": 2, "v": 3},
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t + "x",
        lambda t: t.rsplit(".", 1)[0] + "." + hs256.b64url_encode(b"\0" * 32),
        lambda t: t.replace(".", "", 1),
        lambda t: "",
        lambda t: "a.b.c",
        lambda t: "...",
        # alg "none" with the same payload and an empty signature
        lambda t: hs256.b64url_encode(b'{"alg":"none"}') + "." + t.split(".")[1] + ".",
    ],
)
def test_hs256_rejects_tampering(mutate: Callable[[str], str]) -> None:
    token = hs256.encode({"e": 1, "u": 2, "v": 3}, SECRET)
    with pytest.raises(hs256.TokenFormatError):
        hs256.decode(mutate(token), SECRET)
    with pytest.raises(hs256.TokenFormatError):
        hs256.decode(token, b"another secret")


def test_hs256_rejects_a_non_hs256_header_even_when_signed() -> None:
    head = hs256.b64url_encode(b'{"alg":"HS512","typ":"JWT"}')
    body = hs256.b64url_encode(b'{"e":1}')
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(hs256.TokenFormatError, match="HS256"):
        hs256.decode(f"{head}.{body}.{hs256.b64url_encode(sig)}", SECRET)


# -- token shape ----------------------------------------------------------------------------


def test_session_token_is_a_sendbird_shaped_jwt(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    sandbox.create_user("bob")
    response = sandbox.http.post("/v3/users/alice/token")
    body = response.json()
    header, payload = hs256.unverified_parts(body["token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(payload) == {"e", "u", "v"}
    assert all(type(payload[claim]) is int for claim in ("e", "u", "v"))
    assert payload["e"] * 1000 == body["expires_at"]  # whole seconds
    assert body["expires_at"] % 1000 == 0
    assert payload["v"] == 0
    assert body["token"].startswith("eyJhbGciOi")  # as in Sendbird's documentation
    bob = hs256.unverified_parts(sandbox.issue_token("bob"))[1]
    assert bob["u"] != payload["u"]
    again = hs256.unverified_parts(sandbox.issue_token("alice"))[1]
    assert again["u"] == payload["u"]  # stable per user


def test_same_user_and_second_give_the_same_token_and_each_issuance_is_listed(
    sandbox: Sandbox,
) -> None:
    sandbox.create_user("alice")
    expires_at = (int(time.time()) + 600) * 1000
    first = sandbox.issue_token("alice", expires_at=expires_at + 10)
    second = sandbox.issue_token("alice", expires_at=expires_at + 990)
    assert first == second
    other_second = sandbox.issue_token("alice", expires_at=expires_at + 1000)
    assert other_second != first
    listed = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "alice"}).json()["tokens"]
    assert len(listed) == 3
    digest = hashlib.sha256(first.encode()).hexdigest()
    assert [row["token_sha256"] for row in listed[:2]] == [digest, digest]
    assert {row["expires_at"] for row in listed} == {expires_at, expires_at + 1000}


def test_tokens_survive_a_restart_on_the_same_database(
    start_sandbox: Callable[..., Sandbox], tmp_path
) -> None:
    db_path = str(tmp_path / "persist.db")
    first = start_sandbox(db_path)
    first.create_user("alice")
    expires_at = (int(time.time()) + 3600) * 1000
    token = first.issue_token("alice", expires_at=expires_at)
    first.server.stop()

    second = start_sandbox(db_path)
    # Same secret, number and version: the same token for the same second.
    assert second.issue_token("alice", expires_at=expires_at) == token
    response = second.anon.get("/v3/users/alice/my_group_channels", headers={"Access-Token": token})
    assert response.status_code == 200, response.text

    elsewhere = start_sandbox(str(tmp_path / "other.db"))
    elsewhere.create_user("alice")
    # Another database, another secret.
    assert elsewhere.issue_token("alice", expires_at=expires_at) != token


# -- validation -----------------------------------------------------------------------------


async def test_revoke_all_bumps_the_version(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    old = sandbox.issue_token("user1")
    result = sandbox.control("user1", "revoke")
    assert result["tokens_revoked"] == 1
    new = sandbox.issue_token("user1")
    assert hs256.unverified_parts(new)[1]["v"] == 1
    assert hs256.unverified_parts(old)[1]["v"] == 0
    assert new != old

    refused = await sandbox.connect(token=old, user_id="user1")
    async with refused:
        logi = await refused.read_login()
        assert (logi["error"], logi["code"]) == (True, 400310)
    accepted = await sandbox.connect(token=new, user_id="user1")
    async with accepted:
        assert "error" not in await accepted.read_login()

    # REST too, and the Platform API's DELETE does the same as the control route.
    assert sandbox.http.delete("/v3/users/user1/token").status_code == 200
    assert_error(
        sandbox.anon.get("/v3/users/user1/my_group_channels", headers={"Access-Token": new}),
        400,
        400310,
    )
    tokens = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "user1"}).json()["tokens"]
    assert [t["revoked"] for t in tokens] == [True, True]
    assert [t["version"] for t in tokens] == [0, 1]


async def test_expire_token_refuses_older_tokens_as_expired(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    expires_at = (int(time.time()) + 3600) * 1000
    old = sandbox.issue_token("user1", expires_at=expires_at)
    sandbox.control("user1", "expire-token")
    # The same user and second now give another token (the version moved on).
    new = sandbox.issue_token("user1", expires_at=expires_at)
    assert new != old
    refused = await sandbox.connect(token=old, user_id="user1")
    async with refused:
        logi = await refused.read_login()
        assert (logi["error"], logi["code"]) == (True, 400302)
    accepted = await sandbox.connect(token=new, user_id="user1")
    async with accepted:
        assert "error" not in await accepted.read_login()
    tokens = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "user1"}).json()["tokens"]
    assert [(t["expired"], t["revoked"]) for t in tokens] == [(True, False), (False, False)]


async def test_a_token_past_its_expiry_is_refused(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1", expires_at=int(time.time() * 1000) + 1100)
    time.sleep(max(0.0, hs256.unverified_parts(token)[1]["e"] - time.time()) + 0.05)
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        logi = await client.read_login()
        assert (logi["error"], logi["code"]) == (True, 400302)


async def test_a_token_of_another_sandbox_or_forged_is_refused(
    sandbox: Sandbox, start_sandbox: Callable[..., Sandbox]
) -> None:
    sandbox.create_user("user1")
    other = start_sandbox()
    other.create_user("user1")
    foreign = other.issue_token("user1")
    forged = hs256.encode(hs256.unverified_parts(foreign)[1], b"guessed secret")
    for token in (foreign, forged, "not-a-jwt"):
        client = await sandbox.connect(token=token, user_id="user1")
        async with client:
            logi = await client.read_login()
            assert (logi["error"], logi["code"]) == (True, 400302)


# -- session keys ---------------------------------------------------------------------------


async def test_session_keys_live_ten_minutes_by_default(sandbox: Sandbox) -> None:
    assert SandboxConfig().session_key_ttl == 600
    assert sandbox.http.get("/__sandbox__/info").json()["session_key_ttl"] == 600
    client = await sandbox.login("user1")
    async with client:
        assert client.logi is not None
        digest = hashlib.sha256(client.logi["key"].encode()).hexdigest()
        check = context(sandbox).credentials.check_session_key_digest(digest)
        remaining = check.expires_at - time.time() * 1000
        assert 595_000 < remaining <= 600_000


# -- login without a token ------------------------------------------------------------------


async def test_login_without_a_token_is_refused_by_default(sandbox: Sandbox) -> None:
    assert sandbox.http.get("/__sandbox__/info").json()["allow_login_without_token"] is False
    sandbox.create_user("user1")
    for user_id in ("user1", "stranger"):
        client = await sandbox.connect(user_id=user_id)
        async with client:
            logi = await client.read_login()
            assert (logi["error"], logi["code"]) == (True, 400302)
    assert sandbox.http.get("/v3/users/stranger").status_code == 400  # not created


async def test_login_without_a_token_when_allowed(start_sandbox: Callable[..., Sandbox]) -> None:
    open_app = start_sandbox(allow_login_without_token=True)
    assert open_app.http.get("/__sandbox__/info").json()["allow_login_without_token"] is True
    open_app.create_user("user1", "Alice")
    client = await open_app.connect(user_id="user1")
    async with client:
        logi = await client.read_login()
        assert "error" not in logi
        assert (logi["user_id"], logi["nickname"]) == ("user1", "Alice")
        assert logi["key"]
    stranger = await open_app.connect(user_id="stranger")  # unknown users are created
    async with stranger:
        assert (await stranger.read_login())["user_id"] == "stranger"
    assert open_app.http.get("/v3/users/stranger").status_code == 200
    # A token, when one is given, is still checked.
    bad = await open_app.connect(token="not-a-jwt", user_id="user1")
    async with bad:
        assert (await bad.read_login())["code"] == 400302
    # Without a user id there is nobody to log in as.
    anonymous = await open_app.connect()
    async with anonymous:
        assert (await anonymous.read_login())["code"] == 400302


# -- deleting users -------------------------------------------------------------------------


async def test_deleting_a_user_drops_its_memberships(sandbox: Sandbox) -> None:
    client, url = await sandbox.chat("user1")
    old_token = sandbox.issue_token("user1")
    async with client:
        with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
            result = control.delete_user("user1")
        assert result == {
            "ok": True,
            "user_id": "user1",
            "memberships_deleted": 1,
            "connections_closed": 1,
        }
        code, expr = await client.recv()
        assert (code, expr["reason"]) == ("EXPR", 400301)
    store = context(sandbox).store
    assert store.member_ids(url) == [BOT_ID]
    assert store.get_channel(url) is not None  # the channel and its history stay

    sandbox.create_user("user1")
    new_token = sandbox.issue_token("user1")
    assert new_token != old_token  # a new user: a new number
    mine = sandbox.anon.get(
        "/v3/users/user1/my_group_channels", headers={"Access-Token": new_token}
    ).json()
    assert mine["channels"] == []
    refused = await sandbox.connect(token=old_token, user_id="user1")
    async with refused:
        assert (await refused.read_login())["code"] == 400302
    listed = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "user1"}).json()["tokens"]
    assert [t["token_sha256"] for t in listed] == [hashlib.sha256(new_token.encode()).hexdigest()]


def test_platform_api_delete_drops_memberships_too(sandbox: Sandbox) -> None:
    sandbox.create_user("user2")
    store = context(sandbox).store
    store.create_channel(
        "c1",
        name="",
        cover_url="",
        custom_type="",
        data="",
        is_distinct=False,
        created_by="user2",
        member_ids=["user2", BOT_ID],
        now=1,
    )
    assert sandbox.http.delete("/v3/users/user2").json() == {}
    assert store.channels_of_user("user2") == []
    assert store.member_ids("c1") == [BOT_ID]


async def test_delete_user_client_methods(sandbox: Sandbox) -> None:
    sandbox.create_user("sync")
    sandbox.create_user("async")
    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        assert control.delete_user("sync")["memberships_deleted"] == 0
        with pytest.raises(httpx.HTTPStatusError) as gone:
            control.delete_user("sync")
        assert gone.value.response.json()["code"] == 400201
        with pytest.raises(ValueError):
            control.delete_user("")
    async with AsyncSandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        assert (await control.delete_user("async"))["user_id"] == "async"
    assert sandbox.http.get("/v3/users/async").status_code == 400


# -- refusing logins ------------------------------------------------------------------------


async def test_refuse_login_for_one_user(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    sandbox.create_user("user2")
    token = sandbox.issue_token("user1")
    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        refusal = control.refuse_login("user1", code=400300, count=2)
    assert refusal == {
        "user_id": "user1",
        "code": 400300,
        "count": 2,
        "message": "User is deactivated.",
    }
    for _ in range(2):
        client = await sandbox.connect(token=token, user_id="user1")
        async with client:
            logi = await client.read_login()
            assert (logi["error"], logi["code"]) == (True, 400300)
            assert await client.wait_closed() is not None
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        assert "error" not in await client.read_login()
    other = await sandbox.connect(token=sandbox.issue_token("user2"), user_id="user2")
    async with other:
        assert "error" not in await other.read_login()
    stats = sandbox.http.get("/__sandbox__/stats").json()["websocket"]
    assert stats["logins_refused"] == 2


async def test_refuse_every_login_until_cleared(sandbox: Sandbox) -> None:
    sandbox.create_user("user1")
    token = sandbox.issue_token("user1")
    async with AsyncSandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        refusal = await control.refuse_login("*", code=500901, count=-1, message="down")
        assert refusal["count"] == -1
        for _ in range(3):
            client = await sandbox.connect(token=token, user_id="user1")
            async with client:
                logi = await client.read_login()
                assert (logi["code"], logi["message"]) == (500901, "down")
        listed = (await control.faults())["login_refusals"]
        assert listed == [{"user_id": "*", "code": 500901, "count": -1, "message": "down"}]
        assert await control.clear_faults() == 1
    client = await sandbox.connect(token=token, user_id="user1")
    async with client:
        assert "error" not in await client.read_login()


async def test_refuse_login_applies_to_session_key_refresh(sandbox: Sandbox) -> None:
    client = await sandbox.login("user1")
    token = sandbox.issue_token("user1")
    async with client:
        sandbox.http.post(
            "/__sandbox__/users/user1/refuse-login", json={"code": 400310}
        ).raise_for_status()
        code, refused = await client.request("LOGI", {"token": token, "expiring_session": 1})
        assert (code, refused["code"]) == ("LOGI", 400310)
        code, logi = await client.request("LOGI", {"token": token, "expiring_session": 1})
        assert "error" not in logi


def test_refuse_login_validation_and_clearing(sandbox: Sandbox) -> None:
    path = "/__sandbox__/users/user1/refuse-login"
    assert_error(sandbox.http.post(path, json={"code": "x"}), 400, 400101)
    assert_error(sandbox.http.post(path, json={"code": 12}), 400, 400111)
    assert_error(sandbox.http.post(path, json={"count": -2}), 400, 400111)
    assert_error(sandbox.http.post(path, json={"message": 5}), 400, 400100)
    assert sandbox.anon.post(path, json={}).status_code == 401
    assert sandbox.http.post(path, json={}).json()["refusal"]["code"] == 400300  # defaults
    sandbox.http.post(path, json={"count": 0}).raise_for_status()
    assert sandbox.http.get("/__sandbox__/faults").json()["login_refusals"] == []
    sandbox.http.post(path, json={"count": 3}).raise_for_status()
    sandbox.http.post("/__sandbox__/reset").raise_for_status()
    assert sandbox.http.get("/__sandbox__/faults").json()["login_refusals"] == []
