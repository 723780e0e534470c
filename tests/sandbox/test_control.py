"""The ``/__sandbox__`` control surface: authentication, reset, token listing, info."""

from __future__ import annotations

import hashlib

import pytest
from sandbox_helpers import API_TOKEN, BOT_ID, Sandbox, assert_error

GUARDED = [
    ("GET", "/__sandbox__/info", None),
    ("POST", "/__sandbox__/reset", None),
    ("POST", "/__sandbox__/users/alice/expire-token", None),
    ("POST", "/__sandbox__/users/alice/expire-session-key", None),
    ("POST", "/__sandbox__/users/alice/revoke", None),
    ("POST", "/__sandbox__/users/alice/disconnect", None),
    ("POST", "/__sandbox__/faults", {"status": 500}),
    ("GET", "/__sandbox__/faults", None),
    ("DELETE", "/__sandbox__/faults", None),
    ("POST", "/__sandbox__/outage", {"seconds": 5}),
    ("PUT", "/__sandbox__/rate-limits", {"POST": 1}),
    ("GET", "/__sandbox__/tokens", None),
    ("GET", "/__sandbox__/stats", None),
]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_control_requires_api_token(
    sandbox: Sandbox, method: str, path: str, body: dict | None, token: str | None
) -> None:
    sandbox.create_user("alice")
    headers = {} if token is None else {"Api-Token": token}
    response = sandbox.anon.request(method, path, json=body, headers=headers)
    assert_error(response, 401, 400401)
    # Nothing happened: the user still exists and no fault or outage is active.
    assert sandbox.http.get("/v3/users/alice").status_code == 200
    assert sandbox.http.get("/__sandbox__/faults").json()["faults"] == []


def test_health_is_open(sandbox: Sandbox) -> None:
    response = sandbox.anon.get("/__sandbox__/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_tokens_listing_has_no_plaintext(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    sandbox.create_user("bob")
    first = sandbox.issue_token("alice")
    second = sandbox.issue_token("bob", expires_at=4102444800000)
    sandbox.control("alice", "revoke")
    response = sandbox.http.get("/__sandbox__/tokens")
    assert first not in response.text and second not in response.text
    tokens = response.json()["tokens"]
    assert [t["user_id"] for t in tokens] == ["alice", "bob"]
    assert set(tokens[0]) == {
        "user_id",
        "issued_at",
        "expires_at",
        "revoked",
        "expired",
        "token_sha256",
        "version",
    }
    assert tokens[0]["token_sha256"] == hashlib.sha256(first.encode()).hexdigest()
    assert tokens[0]["revoked"] is True and tokens[0]["expired"] is False
    assert tokens[1]["revoked"] is False and tokens[1]["expires_at"] == 4102444800000
    assert tokens[0]["issued_at"] <= tokens[1]["issued_at"]
    only_bob = sandbox.http.get("/__sandbox__/tokens", params={"user_id": "bob"}).json()
    assert [t["user_id"] for t in only_bob["tokens"]] == ["bob"]


def test_reset_clears_everything_but_the_bot(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    sandbox.issue_token("alice")
    sandbox.http.post("/__sandbox__/faults", json={"path": "/nothing", "status": 500})
    assert sandbox.http.post("/__sandbox__/reset").json() == {"ok": True}
    assert sandbox.http.get("/v3/users/alice").json()["code"] == 400201
    assert sandbox.http.get("/__sandbox__/tokens").json() == {"tokens": []}
    assert sandbox.http.get("/__sandbox__/faults").json()["faults"] == []
    bot = sandbox.http.get(f"/v3/users/{BOT_ID}").json()
    assert bot["nickname"] == "Sandbox Bot"


async def test_reset_closes_sockets(sandbox: Sandbox) -> None:
    client = await sandbox.login()
    async with client:
        sandbox.http.post("/__sandbox__/reset").raise_for_status()
        assert await client.wait_closed() == 1000


def test_info(sandbox: Sandbox) -> None:
    info = sandbox.http.get("/__sandbox__/info").json()
    assert info["app_id"] == "TESTAPP"
    assert info["bot_id"] == BOT_ID
    assert info["http_url"] == sandbox.server.http_url
    assert info["ws_url"] == sandbox.server.ws_url
    assert API_TOKEN not in str(info)


def test_rate_limit_validation(sandbox: Sandbox) -> None:
    response = sandbox.http.put("/__sandbox__/rate-limits", json={"POST": 0})
    assert_error(response, 400, 400111)
