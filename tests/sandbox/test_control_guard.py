"""The control surface needs the API token on every route, and a short pinned token is refused.

The route list comes from the running app, so a control route added later is covered without
touching this file.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from sandbox_helpers import API_TOKEN, Sandbox, assert_error, fast_config

from sample_app.config import MIN_SANDBOX_API_TOKEN_LENGTH
from sample_app.sandbox import SandboxConfig, SandboxServer, create_sandbox_app
from sample_app.sandbox.control import OPEN_ROUTES
from sample_app.sandbox.httputil import RouteSpec

WRONG_TOKENS = [None, "", "wrong", API_TOKEN.upper(), API_TOKEN + "x", API_TOKEN[:-1]]


def control_routes(sandbox: Sandbox) -> list[RouteSpec]:
    """Every control route the running sandbox serves."""
    routes: list[RouteSpec] = sandbox.server.app.state.sandbox_control_routes
    return routes


def concrete_path(spec: RouteSpec) -> str:
    """The route's path with every parameter set to ``alice``."""
    return "/" + "/".join(re.sub(r"^\{.*\}$", "alice", part) for part in spec.pattern)


def test_only_health_is_open(sandbox: Sandbox) -> None:
    assert {"GET /__sandbox__/health"} == OPEN_ROUTES
    keys = {spec.key for spec in control_routes(sandbox)}
    assert keys >= OPEN_ROUTES
    assert len(keys - OPEN_ROUTES) >= 15


@pytest.mark.parametrize("token", WRONG_TOKENS)
def test_every_control_route_needs_the_token(sandbox: Sandbox, token: str | None) -> None:
    sandbox.create_user("alice")
    headers = {} if token is None else {"Api-Token": token}
    guarded = [spec for spec in control_routes(sandbox) if spec.key not in OPEN_ROUTES]
    for spec in guarded:
        body = {"seconds": 5, "status": 500, "code": 400300, "POST": 1}
        response = sandbox.anon.request(
            spec.method, concrete_path(spec), json=body, headers=headers
        )
        assert response.status_code == 401, (spec.key, response.text)
        assert_error(response, 401, 400401)
    # Nothing happened: alice is there, with no fault, outage, refusal or limit.
    assert sandbox.http.get("/v3/users/alice").status_code == 200
    faults = sandbox.http.get("/__sandbox__/faults").json()
    assert faults == {"faults": [], "outage_remaining": 0, "login_refusals": []}
    assert sandbox.http.get("/__sandbox__/info").json()["rate_limits"] in (None, {})


@pytest.mark.parametrize("token", WRONG_TOKENS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/__sandbox__/not-a-route"),
        ("POST", "/__sandbox__"),
        ("HEAD", "/__sandbox__/info"),
        ("POST", "/__sandbox__/health"),
        ("GET", "/%5F%5Fsandbox%5F%5F/stats"),
    ],
)
def test_the_whole_mount_is_guarded(
    sandbox: Sandbox, method: str, path: str, token: str | None
) -> None:
    headers = {} if token is None else {"Api-Token": token}
    response = sandbox.anon.request(method, path, headers=headers)
    assert response.status_code == 401, response.text
    if method != "HEAD":
        assert_error(response, 401, 400401)


def test_unknown_control_routes_are_404_with_the_token(sandbox: Sandbox) -> None:
    assert_error(sandbox.http.get("/__sandbox__/not-a-route"), 404, 400404)
    assert sandbox.anon.get("/__sandbox__/health").json() == {"ok": True}


# -- the pinned token's length ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["t", "x" * (MIN_SANDBOX_API_TOKEN_LENGTH - 1), "short-token"])
def test_a_short_pinned_token_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="too short") as refused:
        SandboxConfig(api_token=token)
    assert str(MIN_SANDBOX_API_TOKEN_LENGTH) in str(refused.value)
    with pytest.raises(ValueError, match="too short"):
        SandboxConfig().replace(api_token=token)


def test_a_malformed_pinned_token_is_refused() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        SandboxConfig(api_token="sixteen chars with spaces")


def test_a_long_enough_token_is_accepted() -> None:
    assert SandboxConfig(api_token="x" * MIN_SANDBOX_API_TOKEN_LENGTH).api_token


def test_the_server_and_the_app_refuse_a_config_that_skipped_the_check(tmp_path) -> None:
    config = fast_config(str(tmp_path / "s.db"))
    forged = dataclasses.replace(config)
    object.__setattr__(forged, "api_token", "short")
    with pytest.raises(ValueError, match="too short"):
        SandboxServer(forged)
    with pytest.raises(ValueError, match="too short"):
        create_sandbox_app(forged)
