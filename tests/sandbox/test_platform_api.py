"""Contract tests of the emulated Platform API: routes, validation and error codes."""

from __future__ import annotations

import time

import pytest
from sandbox_helpers import API_TOKEN, Sandbox, assert_error, user_path

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
ODD_IDS = ["a/b", "q?x", "h#x", "p%20", "sp ace", "ünï", "emoji-🙂", "dots..", "a+b&c=d"]


def test_create_and_get_user(sandbox: Sandbox) -> None:
    created = sandbox.http.post(
        "/v3/users",
        json={"user_id": "alice", "nickname": "Alice", "profile_url": "https://x/a.png"},
    )
    assert created.status_code == 200
    body = created.json()
    assert body["user_id"] == "alice"
    assert body["nickname"] == "Alice"
    assert body["profile_url"] == "https://x/a.png"
    fetched = sandbox.http.get("/v3/users/alice")
    assert fetched.status_code == 200
    user = fetched.json()
    for name in (
        "user_id",
        "nickname",
        "profile_url",
        "access_token",
        "is_online",
        "is_active",
        "has_ever_logged_in",
        "last_seen_at",
        "metadata",
        "created_at",
    ):
        assert name in user
    assert user["is_online"] is False
    assert user["is_active"] is True
    assert abs(user["created_at"] - time.time()) < 60  # seconds, as Sendbird sends them


def test_unknown_user_is_400201(sandbox: Sandbox) -> None:
    body = assert_error(sandbox.http.get("/v3/users/nobody"), 400, 400201)
    assert body["message"] == '"User" not found.'


def test_duplicate_user_is_400202(sandbox: Sandbox) -> None:
    sandbox.create_user("dup")
    response = sandbox.http.post(
        "/v3/users", json={"user_id": "dup", "nickname": "Again", "profile_url": ""}
    )
    assert_error(response, 400, 400202)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v3/users/alice", None),
        ("POST", "/v3/users", {"user_id": "x", "nickname": "x", "profile_url": ""}),
        ("PUT", "/v3/users/alice", {"nickname": "x"}),
        ("DELETE", "/v3/users/alice", None),
        ("POST", "/v3/users/alice/token", {}),
        ("DELETE", "/v3/users/alice/token", None),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token", API_TOKEN + "x", ""])
def test_api_token_required(sandbox: Sandbox, method, path, body, token) -> None:
    sandbox.create_user("alice")
    headers = {} if token is None else {"Api-Token": token}
    response = sandbox.anon.request(method, path, json=body, headers=headers)
    assert_error(response, 401, 400401)
    assert sandbox.http.get("/v3/users/alice").json()["nickname"] == "Alice"


@pytest.mark.parametrize(
    "body",
    [
        {"nickname": "n", "profile_url": ""},
        {"user_id": "u", "profile_url": ""},
        {"user_id": "u", "nickname": "n"},
        {"user_id": None, "nickname": "n", "profile_url": ""},
    ],
)
def test_missing_required_fields_are_400105(sandbox: Sandbox, body) -> None:
    assert_error(sandbox.http.post("/v3/users", json=body), 400, 400105)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"user_id": 42, "nickname": "n", "profile_url": ""}, 400100),
        ({"user_id": "u", "nickname": ["n"], "profile_url": ""}, 400100),
        ({"user_id": "u", "nickname": "n", "profile_url": 7}, 400100),
        ({"user_id": "u", "nickname": "n", "profile_url": "", "metadata": "x"}, 400103),
        ({"user_id": "u", "nickname": "n", "profile_url": "", "issue_access_token": "y"}, 400104),
        ({"user_id": "", "nickname": "n", "profile_url": ""}, 400111),
    ],
)
def test_wrong_types_are_rejected(sandbox: Sandbox, body, code) -> None:
    assert_error(sandbox.http.post("/v3/users", json=body), 400, code)


@pytest.mark.parametrize(
    ("field", "limit"), [("user_id", 80), ("nickname", 80), ("profile_url", 2048)]
)
def test_field_length_limits(sandbox: Sandbox, field: str, limit: int) -> None:
    body = {"user_id": "limit-user", "nickname": "n", "profile_url": ""}
    body[field] = "x" * (limit + 1)
    assert_error(sandbox.http.post("/v3/users", json=body), 400, 400111)
    body[field] = "y" * limit
    assert sandbox.http.post("/v3/users", json=body).status_code == 200


def test_invalid_json_body_is_400403(sandbox: Sandbox) -> None:
    response = sandbox.http.post(
        "/v3/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, 400403)
    assert_error(sandbox.http.post("/v3/users", json=["a"]), 400, 400403)


def test_update_user(sandbox: Sandbox) -> None:
    sandbox.create_user("bob", "Bob")
    response = sandbox.http.put(
        "/v3/users/bob", json={"nickname": "Robert", "profile_url": "https://x/b.png"}
    )
    assert response.status_code == 200
    assert response.json()["nickname"] == "Robert"
    assert sandbox.http.get("/v3/users/bob").json()["profile_url"] == "https://x/b.png"
    assert_error(sandbox.http.put("/v3/users/nobody", json={"nickname": "x"}), 400, 400201)
    assert_error(sandbox.http.put("/v3/users/bob", json={"nickname": "x" * 81}), 400, 400111)


def test_delete_user(sandbox: Sandbox) -> None:
    sandbox.create_user("gone")
    assert sandbox.http.delete("/v3/users/gone").json() == {}
    assert_error(sandbox.http.get("/v3/users/gone"), 400, 400201)
    assert_error(sandbox.http.delete("/v3/users/gone"), 400, 400201)


def test_token_default_expiry_is_seven_days(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    before = time.time() * 1000
    response = sandbox.http.post("/v3/users/alice/token")
    after = time.time() * 1000
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    # Whole seconds, like the JWT's "e" claim: rounded down from now + 7 days.
    assert body["expires_at"] % 1000 == 0
    assert before + SEVEN_DAYS_MS - 1000 <= body["expires_at"] <= after + SEVEN_DAYS_MS
    assert len(body["token"]) >= 120
    assert body["token"].isascii() and " " not in body["token"]


def test_token_explicit_expiry_is_echoed(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    expires_at = int(time.time() * 1000) + 10 * 60 * 1000
    response = sandbox.http.post("/v3/users/alice/token", json={"expires_at": expires_at})
    assert response.status_code == 200
    # The token carries whole seconds, so the answer is rounded down to a multiple of 1000.
    assert response.json()["expires_at"] == expires_at // 1000 * 1000


@pytest.mark.parametrize(
    ("expires_at", "code"),
    [
        (int(time.time()) + 600, 400111),  # seconds instead of milliseconds: in 1970
        (1000, 400111),
        (-5, 400111),
        ("soon", 400101),
        (True, 400101),
        (1.5e12, 400101),
    ],
)
def test_token_bad_expiry(sandbox: Sandbox, expires_at, code) -> None:
    sandbox.create_user("alice")
    response = sandbox.http.post("/v3/users/alice/token", json={"expires_at": expires_at})
    assert_error(response, 400, code)


def test_tokens_are_deterministic_per_user_and_expiry_second(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    sandbox.create_user("bob")
    expires_at = int(time.time()) * 1000 + 3_600_000
    alice = {sandbox.issue_token("alice", expires_at=expires_at + ms) for ms in (0, 1, 999)}
    assert len(alice) == 1  # same user, same second: the same JWT
    later = sandbox.issue_token("alice", expires_at=expires_at + 1000)
    bob = sandbox.issue_token("bob", expires_at=expires_at)
    assert later not in alice and bob not in alice  # another "e", another "u"
    # Each issuance is still recorded, even when the string repeats.
    assert (
        len(sandbox.http.get("/__sandbox__/tokens", params={"user_id": "alice"}).json()["tokens"])
        == 4
    )


def test_token_for_unknown_user_is_400201(sandbox: Sandbox) -> None:
    assert_error(sandbox.http.post("/v3/users/nobody/token"), 400, 400201)
    assert_error(sandbox.http.delete("/v3/users/nobody/token"), 400, 400201)


def test_revoke_all_tokens(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    old = sandbox.issue_token("alice")
    response = sandbox.http.delete("/v3/users/alice/token")
    assert response.status_code == 200
    assert response.json() == {}
    rejected = sandbox.anon.post("/v3/users/alice/session_key", json={"token": old})
    assert_error(rejected, 400, 400310)
    fresh = sandbox.issue_token("alice")
    accepted = sandbox.anon.post("/v3/users/alice/session_key", json={"token": fresh})
    assert accepted.status_code == 200
    assert accepted.json()["key"]


@pytest.mark.parametrize("user_id", ODD_IDS)
def test_odd_ids_round_trip(sandbox: Sandbox, user_id: str) -> None:
    created = sandbox.http.post(
        "/v3/users", json={"user_id": user_id, "nickname": "Odd", "profile_url": ""}
    )
    assert created.status_code == 200, created.text
    fetched = sandbox.http.get(user_path(user_id))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["user_id"] == user_id
    token = sandbox.http.post(user_path(user_id, "/token"))
    assert token.status_code == 200, token.text
    listed = sandbox.http.get("/__sandbox__/tokens", params={"user_id": user_id}).json()
    assert [t["user_id"] for t in listed["tokens"]] == [user_id]
    key = sandbox.anon.post(
        user_path(user_id, "/session_key"), json={"token": token.json()["token"]}
    )
    assert key.status_code == 200, key.text
    revoked = sandbox.http.delete(user_path(user_id, "/token"))
    assert revoked.status_code == 200, revoked.text
    assert sandbox.http.get("/__sandbox__/tokens", params={"user_id": user_id}).json()["tokens"][0][
        "revoked"
    ]


def test_odd_id_does_not_collide_with_prefix(sandbox: Sandbox) -> None:
    sandbox.create_user("a", "Plain")
    sandbox.create_user("a/b", "Slashed")
    assert sandbox.http.get(user_path("a")).json()["nickname"] == "Plain"
    assert sandbox.http.get(user_path("a/b")).json()["nickname"] == "Slashed"
    # Unencoded, "a/b" is two segments and is not the user "a/b".
    assert sandbox.http.get("/v3/users/a/b").json() == {}
