"""The control-surface clients (sync and async) against a real sandbox on 127.0.0.1."""

from __future__ import annotations

import hashlib
import inspect

import httpx
import pytest
from sandbox_helpers import API_TOKEN, APP_ID, BOT_ID, Sandbox

from sample_app.sandbox.control_client import (
    USER_ACTIONS,
    AsyncSandboxControlClient,
    ControlCalls,
    SandboxControlClient,
)

# Needs percent-encoding in a path: a space, a slash, a question mark and non-ASCII.
ODD_ID = "odd user/ü?x"


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_both_clients_offer_the_same_calls() -> None:
    sync_api = public_methods(SandboxControlClient)
    async_api = public_methods(AsyncSandboxControlClient)

    assert set(sync_api) - {"close"} == set(async_api) - {"aclose"}
    for name, signature in sync_api.items():
        if name != "close":
            assert list(signature.parameters) == list(async_api[name].parameters), name
            assert inspect.iscoroutinefunction(getattr(AsyncSandboxControlClient, name)), name
    assert {
        "expire_token",
        "expire_session_key",
        "revoke",
        "reset",
        "tokens",
        "stats",
        "fault",
    } <= set(sync_api)


def test_user_ids_are_percent_encoded() -> None:
    call = ControlCalls.act(ODD_ID, "expire-token")

    assert call.path == "/__sandbox__/users/odd%20user%2F%C3%BC%3Fx/expire-token"
    assert call.method == "POST"


@pytest.mark.parametrize(("user_id", "action"), [("", "revoke"), ("alice", "explode")])
def test_bad_user_actions_are_refused_before_sending(user_id: str, action: str) -> None:
    with pytest.raises(ValueError):
        ControlCalls.act(user_id, action)  # type: ignore[arg-type]


def test_sync_client_drives_a_user(sandbox: Sandbox) -> None:
    sandbox.create_user(ODD_ID)
    token = sandbox.issue_token(ODD_ID)
    sandbox.create_user("bob")
    sandbox.issue_token("bob")

    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        assert control.base_url == sandbox.server.http_url
        issued = control.tokens(ODD_ID)
        assert [t["user_id"] for t in issued] == [ODD_ID]
        assert issued[0]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
        assert len(control.tokens()) == 2

        expired = control.expire_token(ODD_ID)
        assert expired["user_id"] == ODD_ID and expired["tokens_expired"] == 1
        assert control.tokens(ODD_ID)[0]["expired"] is True
        assert control.expire_session_key(ODD_ID)["session_keys_expired"] == 0
        assert control.disconnect(ODD_ID)["connections_closed"] == 0
        assert control.revoke(ODD_ID)["tokens_revoked"] == 1
        assert control.tokens(ODD_ID)[0]["revoked"] is True
        assert control.act("bob", "revoke")["tokens_revoked"] == 1

        platform_calls = control.stats()["platform_api"]
        assert platform_calls["POST /v3/users/{user_id}/token"] == 2

        control.reset()
        assert control.tokens() == []
        assert control._http.is_closed is False
    assert control._http.is_closed is True


def test_sync_client_faults_outages_and_limits(sandbox: Sandbox) -> None:
    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        assert control.health() is True
        info = control.info()
        assert (info["app_id"], info["bot_id"]) == (APP_ID, BOT_ID)
        assert API_TOKEN not in str(info)

        fault = control.fault(method="POST", path="/v3/users", count=1, status=500, code=500901)
        assert fault["status"] == 500 and fault["path"] == "/v3/users"
        assert len(control.faults()["faults"]) == 1
        refused = sandbox.http.post(
            "/v3/users", json={"user_id": "x", "nickname": "X", "profile_url": ""}
        )
        assert refused.json()["code"] == 500901

        control.fault(path="/v3/users/*", status=503)
        assert control.clear_faults() >= 1
        assert control.faults()["faults"] == []

        assert control.outage(5) > 0
        assert sandbox.http.get("/v3/users/x").status_code == 503
        control.clear_faults()
        assert sandbox.http.get("/v3/users/x").json()["code"] == 400201  # no outage: unknown user

        assert control.set_rate_limits({"POST": 5}) == {"POST": 5}
        assert control.set_rate_limits({}) == {}


def test_sync_client_raises_for_error_answers(sandbox: Sandbox) -> None:
    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        with pytest.raises(httpx.HTTPStatusError) as unknown:
            control.expire_token("nobody")
        assert unknown.value.response.json()["code"] == 400201
        with pytest.raises(httpx.HTTPStatusError):
            control.fault(status="not a status")

    with SandboxControlClient(sandbox.server.http_url, "wrong-token-0123456789") as intruder:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            intruder.reset()
        assert refused.value.response.status_code == 401
        assert intruder.health() is True  # the one open route


async def test_async_client_drives_a_user(sandbox: Sandbox) -> None:
    sandbox.create_user(ODD_ID)
    sandbox.issue_token(ODD_ID)

    async with AsyncSandboxControlClient(sandbox.server.http_url + "/", API_TOKEN) as control:
        assert control.base_url == sandbox.server.http_url
        assert await control.health() is True
        assert (await control.expire_token(ODD_ID))["tokens_expired"] == 1
        assert (await control.expire_session_key(ODD_ID))["user_id"] == ODD_ID
        assert (await control.disconnect(ODD_ID))["connections_closed"] == 0
        assert (await control.revoke(ODD_ID))["tokens_revoked"] == 1
        tokens = await control.tokens(ODD_ID)
        assert tokens[0]["expired"] is True and tokens[0]["revoked"] is True
        assert (await control.stats())["platform_api"]["POST /v3/users"] == 1
        fault = await control.fault(path="/v3/users/*/token", status=500, count=2)
        assert fault["remaining"] == 2
        assert len((await control.faults())["faults"]) == 1
        assert await control.clear_faults() == 1
        assert await control.set_rate_limits({"GET": 3}) == {"GET": 3}
        assert (await control.info())["app_id"] == APP_ID
        assert await control.outage(0) == 0
        with pytest.raises(httpx.HTTPStatusError):
            await control.revoke("nobody")
        await control.reset()
        assert await control.tokens() == []
    assert control._http.is_closed


def test_every_user_action_is_a_control_route(sandbox: Sandbox) -> None:
    sandbox.create_user("carol")

    with SandboxControlClient(sandbox.server.http_url, API_TOKEN) as control:
        for action in USER_ACTIONS:
            assert control.act("carol", action)["ok"] is True
