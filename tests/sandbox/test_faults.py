"""Fault injection, outages and the rate limiter on the REST surfaces."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_helpers import Sandbox, assert_error, user_path


def add_fault(sandbox: Sandbox, **spec: object) -> dict:
    response = sandbox.http.post("/__sandbox__/faults", json=spec)
    assert response.status_code == 200, response.text
    return response.json()["fault"]


def test_injected_429_looks_like_sendbird(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    add_fault(
        sandbox,
        method="POST",
        path="/v3/users/*/token",
        count=1,
        status=429,
        retry_after=2.5,
        limit="5;w=1",
    )
    response = sandbox.http.post("/v3/users/alice/token")
    body = assert_error(response, 429, 500910)
    assert "Too many requests" in body["message"]
    assert response.headers["X-RateLimit-Limit"] == "5;w=1"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-RetryAfter"] == "2.5"
    assert response.headers["Retry-After"] == "3"
    # count=1: the next call is answered normally.
    assert sandbox.http.post("/v3/users/alice/token").status_code == 200


def test_injected_429_defaults(sandbox: Sandbox) -> None:
    add_fault(sandbox, path="/v3/users/*", status=429)
    response = sandbox.http.get("/v3/users/anyone")
    assert_error(response, 429, 500910)
    assert response.headers["X-RateLimit-RetryAfter"] == "1"
    assert response.headers["Retry-After"] == "1"
    assert "X-RateLimit-Limit" in response.headers


def test_injected_5xx(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    add_fault(sandbox, method="GET", path="/v3/users/alice", count=2, status=500)
    assert_error(sandbox.http.get("/v3/users/alice"), 500, 500901)
    assert_error(sandbox.http.get("/v3/users/alice"), 500, 500901)
    assert sandbox.http.get("/v3/users/alice").status_code == 200
    add_fault(
        sandbox,
        path="/v3/users",
        status=503,
        code=500503,
        message="maintenance",
        headers={"X-Custom": "yes"},
    )
    response = sandbox.http.post("/v3/users", json={})
    body = assert_error(response, 503, 500503)
    assert body["message"] == "maintenance"
    assert response.headers["X-Custom"] == "yes"


def test_fault_applies_to_widget_routes_too(sandbox: Sandbox) -> None:
    """Reproduces rest_400309_then_reconnect.log: one SDK call fails with 400309."""
    add_fault(sandbox, method="GET", path="/v3/sdk/group_channels/*", status=400, code=400309)
    response = sandbox.anon.get("/v3/sdk/group_channels/any")
    assert_error(response, 400, 400309)
    assert response.headers["access-control-allow-origin"] == "*"


def test_fault_matching(sandbox: Sandbox) -> None:
    sandbox.create_user("a/b")
    add_fault(sandbox, method="POST", path="/v3/users/a/b/token", status=500)
    assert sandbox.http.get(user_path("a/b")).status_code == 200  # other method
    assert_error(sandbox.http.post(user_path("a/b", "/token")), 500, 500901)  # decoded path
    add_fault(sandbox, path="*", count=-1, status=500)
    for _ in range(3):
        assert sandbox.http.get(user_path("a/b")).status_code == 500
    assert sandbox.http.get("/__sandbox__/health").status_code == 200  # control is never faulted
    listed = sandbox.http.get("/__sandbox__/faults").json()["faults"]
    assert len(listed) == 1
    assert listed[0]["remaining"] == -1
    assert listed[0]["hits"] == 3
    cleared = sandbox.http.delete("/__sandbox__/faults").json()
    assert cleared == {"ok": True, "cleared": 1}
    assert sandbox.http.get(user_path("a/b")).status_code == 200


def test_delay_only_fault_then_normal_answer(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    add_fault(sandbox, method="POST", path="/v3/users/*/token", delay=0.3)
    started = time.monotonic()
    response = sandbox.http.post("/v3/users/alice/token")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert response.json()["token"]


def test_delay_fault_causes_client_timeout(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    add_fault(sandbox, method="GET", path="/v3/users/alice", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        sandbox.http.get("/v3/users/alice", timeout=0.2)
    # The server is still healthy for everyone else.
    assert sandbox.http.get("/v3/users/alice").status_code == 200


def test_delay_with_status(sandbox: Sandbox) -> None:
    add_fault(sandbox, path="/v3/users", status=500, delay=0.2)
    started = time.monotonic()
    assert sandbox.http.post("/v3/users", json={}).status_code == 500
    assert time.monotonic() - started >= 0.2


def test_custom_body(sandbox: Sandbox) -> None:
    add_fault(sandbox, path="/v3/users/x", status=502, body={"oops": True})
    response = sandbox.http.get("/v3/users/x")
    assert response.status_code == 502
    assert response.json() == {"oops": True}


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"path": "/v3/*"}, 400111),  # neither status nor delay
        ({"status": 42}, 400111),
        ({"status": 500, "count": 0}, 400111),
        ({"status": 500, "delay": -1}, 400111),
        ({"status": 500, "delay": "slow"}, 400101),
        ({"status": 500, "headers": ["x"]}, 400103),
        ({"status": 500, "path": 5}, 400100),
    ],
)
def test_fault_validation(sandbox: Sandbox, spec: dict, code: int) -> None:
    assert_error(sandbox.http.post("/__sandbox__/faults", json=spec), 400, code)


def test_outage(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    response = sandbox.http.post("/__sandbox__/outage", json={"seconds": 0.4})
    assert response.status_code == 200
    assert response.json()["until"] > time.time() * 1000
    assert_error(sandbox.http.get("/v3/users/alice"), 503, 500503)
    assert_error(sandbox.anon.get("/v3/bots/bot1/TESTAPP/widget_setting"), 503, 500503)
    assert sandbox.http.get("/__sandbox__/health").status_code == 200
    time.sleep(0.45)
    assert sandbox.http.get("/v3/users/alice").status_code == 200


def test_outage_is_cleared_with_faults(sandbox: Sandbox) -> None:
    sandbox.http.post("/__sandbox__/outage", json={"seconds": 30}).raise_for_status()
    assert sandbox.http.get("/v3/users/x").status_code == 503
    sandbox.http.delete("/__sandbox__/faults").raise_for_status()
    assert sandbox.http.get("/v3/users/x").status_code == 400


@pytest.mark.parametrize(("body", "code"), [({}, 400105), ({"seconds": "x"}, 400101)])
def test_outage_validation(sandbox: Sandbox, body: dict, code: int) -> None:
    assert_error(sandbox.http.post("/__sandbox__/outage", json=body), 400, code)


def test_rate_limiter(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    response = sandbox.http.put("/__sandbox__/rate-limits", json={"POST": 2})
    assert response.json() == {"rate_limits": {"POST": 2}}
    assert sandbox.http.post("/v3/users/alice/token").status_code == 200
    assert sandbox.http.post("/v3/users/alice/token").status_code == 200
    limited = sandbox.http.post("/v3/users/alice/token")
    assert_error(limited, 429, 500910)
    assert limited.headers["X-RateLimit-Limit"] == "2;w=1"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < float(limited.headers["X-RateLimit-RetryAfter"]) <= 1
    # Limits are per endpoint and per method.
    assert sandbox.http.get("/v3/users/alice").status_code == 200
    assert sandbox.http.post("/v3/users", json={}).status_code == 400
    time.sleep(float(limited.headers["X-RateLimit-RetryAfter"]) + 0.05)
    assert sandbox.http.post("/v3/users/alice/token").status_code == 200


def test_stats_count_platform_calls_per_route(sandbox: Sandbox) -> None:
    sandbox.create_user("alice")
    sandbox.http.get("/v3/users/alice")
    sandbox.http.get("/v3/users/nobody")
    sandbox.issue_token("alice")
    add_fault(sandbox, path="/v3/users/*/token", status=500)
    sandbox.http.post("/v3/users/alice/token")
    sandbox.anon.get("/v3/bots/bot1/TESTAPP/widget_setting")
    stats = sandbox.http.get("/__sandbox__/stats").json()
    assert stats["platform_api"] == {
        "POST /v3/users": 1,
        "GET /v3/users/{user_id}": 2,
        "POST /v3/users/{user_id}/token": 2,
    }
    assert stats["widget_api"] == {"GET /v3/bots/{bot_id}/{app_id}/widget_setting": 1}
    assert stats["websocket"]["connections"] == 0
    sandbox.http.post("/__sandbox__/reset").raise_for_status()
    stats = sandbox.http.get("/__sandbox__/stats").json()
    assert stats["platform_api"] == {} and stats["widget_api"] == {}
