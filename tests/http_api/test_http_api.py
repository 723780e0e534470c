"""The HTTP API against a real server on 127.0.0.1 and the sandbox (see conftest.py).

What the sandbox's token list shows is the proof of what was issued or revoked: a refused
request must leave it unchanged.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sample_app.config import PROJECT_ROOT
from sample_app.http_api import (
    SESSION_PATH,
    SESSION_TOKEN_PATH,
    cors_allowed_origins,
)
from sample_app.services import ACCOUNT_SESSION_TTL
from tests.http_api.conftest import ALLOWED_ORIGIN, Api, closed_port_url, running_api
from tests.stack import SandboxHandle

OTHER_ORIGIN = "https://evil.example.net"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_token(api: Api, token: str | None, **kwargs: object) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
    if token is not None:
        headers.update(bearer(token))
    with api.client() as client:
        return client.post(SESSION_TOKEN_PATH, headers=headers, **kwargs)  # type: ignore[arg-type]


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == error
    assert body["message"].endswith("."), body["message"]


# ---- 401: nothing issued


def test_no_token_is_401_and_issues_nothing(api: Api) -> None:
    before = len(api.tokens())
    response = post_token(api, None)
    assert_error(response, 401, "not_signed_in")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(api.tokens()) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer forged-sign-in-token-0123456789abcdef0123456789",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "forged",
    ],
)
def test_forged_or_malformed_token_is_401_and_issues_nothing(api: Api, authorization: str) -> None:
    api.sign_in()  # an account exists; the forged token is not its
    before = len(api.tokens())
    response = post_token(api, None, headers={"Authorization": authorization})
    assert_error(response, 401, "not_signed_in")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(api.tokens()) == before


def test_expired_sign_in_is_401_and_issues_nothing(api: Api) -> None:
    token = api.sign_in()
    user_id = api.user_id(token)
    before = len(api.tokens())
    api.clock.advance(seconds=ACCOUNT_SESSION_TTL.total_seconds() + 1)
    response = post_token(api, token)
    assert_error(response, 401, "not_signed_in")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert len(api.tokens()) == before
    assert api.sandbox.tokens(user_id) == []


def test_revoked_sign_in_is_401_and_issues_nothing(api: Api) -> None:
    token = api.sign_in()
    user_id = api.user_id(token)
    api.services.accounts.sign_out(token)
    response = post_token(api, token)
    assert_error(response, 401, "not_signed_in")
    assert api.sandbox.tokens(user_id) == []


# ---- success


def test_success_returns_what_the_widget_needs(api: Api) -> None:
    token = api.sign_in("carol")
    response = post_token(api, token)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    settings = api.services.settings
    assert body["user_id"] == api.user_id(token)
    assert body["nickname"] == "Carol"
    assert body["app_id"] == settings.app_id
    assert body["bot_id"] == settings.bot_id
    assert body["api_host"] == settings.widget_api_host
    assert body["ws_host"] == settings.widget_ws_host
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() is not None and expires_at.utcoffset().total_seconds() == 0
    assert int(expires_at.timestamp() * 1000) == body["expires_at_ms"]
    issued = api.sandbox.tokens(body["user_id"])
    assert len(issued) == 1 and not issued[0]["revoked"]
    assert issued[0]["expires_at"] == body["expires_at_ms"]


def test_page_view_reuses_and_refresh_mints_a_new_token(api: Api) -> None:
    token = api.sign_in()
    first = post_token(api, token, json={"refresh": False}).json()
    again = post_token(api, token).json()  # no body: a page view
    assert again["token"] == first["token"]
    assert len(api.sandbox.tokens(first["user_id"])) == 1
    refreshed = post_token(api, token, json={"refresh": True})
    assert refreshed.status_code == 200
    # The sandbox's tokens are JWTs of (expiry second, user, version): count what it minted.
    assert len(api.sandbox.tokens(first["user_id"])) == 2


def test_over_the_issuance_budget_is_429_with_retry_after(api: Api) -> None:
    token = api.sign_in()
    assert post_token(api, token).status_code == 200  # creates the Sendbird user
    # A new user's first issue attempt (400201, then create and issue) counts too.
    statuses = [post_token(api, token, json={"refresh": True}) for _ in range(4)]
    codes = [r.status_code for r in statuses]
    assert codes[0] == 200 and codes[-1] == 429, codes
    refused = statuses[-1]
    assert_error(refused, 429, "too_many_token_requests")
    assert "try again in" in refused.json()["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    minted = len(api.sandbox.tokens(api.user_id(token)))
    assert minted <= 3  # TEST_BUDGET: 3 new tokens per user per minute
    assert post_token(api, token, json={"refresh": True}).status_code == 429
    assert len(api.sandbox.tokens(api.user_id(token))) == minted


# ---- Sendbird failing


@pytest.mark.allow_error_logs
def test_sendbird_server_error_is_502(api: Api) -> None:
    token = api.sign_in()
    api.sandbox.fault(method="POST", path="/v3/users/*/token", status=500, count=5)
    assert_error(post_token(api, token), 502, "sendbird_error")


def test_sendbird_rate_limiting_us_is_503_with_retry_after(api: Api) -> None:
    token = api.sign_in()
    api.sandbox.fault(method="POST", path="/v3/users/*/token", status=429, retry_after=30, count=5)
    response = post_token(api, token)
    assert_error(response, 503, "sendbird_unavailable")
    assert response.headers["Retry-After"] == "30"


def test_sendbird_outage_is_503(api: Api) -> None:
    token = api.sign_in()
    api.sandbox.control.outage(30)
    try:
        response = post_token(api, token)
    finally:
        api.sandbox.control.clear_faults()
    assert_error(response, 503, "sendbird_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_sendbird_unreachable_is_503(sandbox: SandboxHandle, tmp_path: Path) -> None:
    extra = {"SENDBIRD_API_HOST": closed_port_url()}
    with running_api(sandbox, tmp_path, settings_extra=extra) as api:
        token = api.sign_in()
        assert_error(post_token(api, token), 503, "sendbird_unavailable")


def test_foreign_sendbird_user_is_409(api: Api) -> None:
    token = api.sign_in()
    user_id = api.user_id(token)
    # Someone else created a user under this id (no "created_by" mark of this app).
    with httpx.Client(base_url=api.sandbox.url, headers={"Api-Token": api.sandbox.api_token}) as sb:
        created = sb.post(
            "/v3/users", json={"user_id": user_id, "nickname": "x", "profile_url": ""}
        )
        assert created.status_code == 200, created.text
    # The issue-first path trusts an existing user only if this process created it: make
    # the first issue fail as "not found" so the service creates, meets 400202, checks the mark.
    api.sandbox.fault(
        method="POST", path=f"/v3/users/{user_id}/token", status=400, code=400201, count=1
    )
    response = post_token(api, token)
    assert_error(response, 409, "foreign_sendbird_user")
    assert api.sandbox.tokens(user_id) == []


# ---- malformed requests


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"refresh": "maybe"}', "application/json"),
        (b'{"refresh": true, "user_id": "someone-else"}', "application/json"),
        (b"[]", "application/json"),
    ],
)
def test_malformed_body_is_422(api: Api, content: bytes, content_type: str) -> None:
    token = api.sign_in()
    response = post_token(api, token, content=content, headers={"Content-Type": content_type})
    assert_error(response, 422, "invalid_request")
    assert token not in response.text
    assert api.sandbox.tokens(api.user_id(token)) == []


def test_unknown_method_and_path_are_json_errors(api: Api) -> None:
    with api.client() as client:
        assert_error(client.get(SESSION_TOKEN_PATH), 405, "method_not_allowed")
        assert_error(client.get("/api/sendbird/nothing-here"), 404, "not_found")
        # Everything else is still Reflex's.
        assert client.get("/ping").text == "pong"


# ---- DELETE: revoke, sign out


def test_delete_revokes_the_sendbird_session_and_keeps_the_sign_in(api: Api) -> None:
    token = api.sign_in()
    issued = post_token(api, token).json()
    with api.client() as client:
        response = client.delete(SESSION_PATH, headers=bearer(token))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert all(t["revoked"] for t in api.sandbox.tokens(issued["user_id"]))
    # Still signed in: the next token is a new one (the revoked one was forgotten).
    assert post_token(api, token).status_code == 200
    listed = api.sandbox.tokens(issued["user_id"])
    assert len(listed) == 2 and not listed[-1]["revoked"]


def test_delete_with_sign_out_ends_the_sign_in_then_revokes(api: Api) -> None:
    token = api.sign_in()
    issued = post_token(api, token).json()
    with api.client() as client:
        response = client.delete(SESSION_PATH, params={"sign_out": "true"}, headers=bearer(token))
    assert response.status_code == 204, response.text
    assert api.services.accounts.resolve_sign_in(token) is None
    assert all(t["revoked"] for t in api.sandbox.tokens(issued["user_id"]))
    assert_error(post_token(api, token), 401, "not_signed_in")
    with api.client() as client:
        again = client.delete(SESSION_PATH, params={"sign_out": "true"}, headers=bearer(token))
    assert_error(again, 401, "not_signed_in")


def test_delete_without_a_valid_sign_in_is_401(api: Api) -> None:
    with api.client() as client:
        assert_error(client.delete(SESSION_PATH), 401, "not_signed_in")
        forged = client.delete(SESSION_PATH, headers=bearer("x" * 43))
        assert_error(forged, 401, "not_signed_in")
        bad_query = client.delete(SESSION_PATH, params={"sign_out": "perhaps"})
        assert bad_query.status_code in (401, 422)


@pytest.mark.allow_error_logs
def test_delete_when_sendbird_fails_is_502(api: Api) -> None:
    token = api.sign_in()
    post_token(api, token)
    api.sandbox.fault(method="DELETE", path="/v3/users/*/token", status=500, count=5)
    with api.client() as client:
        response = client.delete(SESSION_PATH, headers=bearer(token))
    assert_error(response, 502, "sendbird_error")


# ---- CORS


def preflight(api: Api, origin: str, method: str = "POST") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with api.client() as client:
        return client.options(SESSION_TOKEN_PATH, headers=headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def test_disallowed_origin_gets_no_cors_grant(api: Api) -> None:
    answer = preflight(api, OTHER_ORIGIN)
    assert answer.status_code == 403
    assert cors_headers(answer) == {}
    token = api.sign_in()
    response = post_token(api, token, headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200  # a server cannot stop a request; browsers are told no
    assert cors_headers(response) == {}
    assert "Origin" in response.headers["Vary"]
    with api.client() as client:
        deleted = client.delete(SESSION_PATH, headers={**bearer(token), "Origin": OTHER_ORIGIN})
        assert cors_headers(deleted) == {}
        # Reflex's own paths keep Reflex's policy (the guard only owns the API's).
        ping = client.get("/ping", headers={"Origin": OTHER_ORIGIN})
        assert ping.headers["access-control-allow-origin"] == OTHER_ORIGIN


def test_allowed_origin_gets_a_grant_without_credentials(api: Api) -> None:
    for method in ("POST", "DELETE"):
        answer = preflight(api, ALLOWED_ORIGIN, method)
        assert answer.status_code == 204
        headers = cors_headers(answer)
        assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert set(headers["access-control-allow-methods"].split(", ")) == {"POST", "DELETE"}
        assert headers["access-control-allow-headers"] == "Authorization, Content-Type"
        assert "access-control-allow-credentials" not in headers
    response = post_token(api, api.sign_in(), headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert headers["access-control-expose-headers"] == "Retry-After"
    assert "access-control-allow-credentials" not in headers
    assert "*" not in headers.values()


def test_allowed_origin_may_not_ask_for_other_methods_or_headers(api: Api) -> None:
    assert cors_headers(preflight(api, ALLOWED_ORIGIN, "PUT")) == {}
    with api.client() as client:
        answer = client.options(
            SESSION_TOKEN_PATH,
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, x-custom",
            },
        )
    assert answer.status_code == 403 and cors_headers(answer) == {}


def test_same_origin_needs_no_cors(api: Api) -> None:
    response = post_token(api, api.sign_in(), headers={"Origin": api.url})
    assert response.status_code == 200
    assert "access-control-allow-credentials" not in response.headers


def test_cors_allowed_origins_setting() -> None:
    assert cors_allowed_origins({}) == frozenset()
    listed = cors_allowed_origins(
        {"API_CORS_ALLOWED_ORIGINS": "https://A.example.com/, http://localhost:5173"}
    )
    assert listed == {"https://a.example.com", "http://localhost:5173"}
    for bad in ("*", "https://*.example.com", "example.com", "https://x.com/path", "ftp://x"):
        with pytest.raises(ValueError, match="API_CORS_ALLOWED_ORIGINS"):
            cors_allowed_origins({"API_CORS_ALLOWED_ORIGINS": bad})


def test_the_app_puts_the_guard_around_reflex() -> None:
    """The real app module wires the guard around Reflex's whole backend (request ids outside).

    Checked in a subprocess: importing the app module registers its pages with Reflex for
    the rest of the process, which would leave the browser tier's production build (in
    this same pytest process) without them.
    """
    script = textwrap.dedent(
        f"""
        import reflex as rx
        from sample_app.http_api import ApiCorsGuard, SampleApp, api_transformer
        from sample_app.request_context import RequestIdMiddleware
        from sample_app.sample_app import app

        assert isinstance(app, SampleApp)
        assert app.api_transformer is api_transformer
        rx.App.__call__ = lambda self: "reflex's top-level app"
        built = app()
        assert isinstance(built, RequestIdMiddleware), built
        guard = built.app.app  # inside the event socket's direct route
        assert isinstance(guard, ApiCorsGuard), guard
        assert guard.app == "reflex's top-level app"
        assert guard.allowed_origins == {{{ALLOWED_ORIGIN!r}}}, guard.allowed_origins
        print("guard outermost")
        """
    )
    env = {
        **os.environ,
        "API_CORS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "guard outermost" in result.stdout


# ---- logs


def test_no_token_in_logs_or_error_bodies(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = api.sign_in()
    secrets = [token, api.sandbox.api_token]
    bodies = []
    issued = post_token(api, token).json()
    secrets.append(issued["token"])
    refreshed = post_token(api, token, json={"refresh": True}).json()
    secrets.append(refreshed["token"])
    bodies.append(post_token(api, token + "x").text)
    bodies.append(
        post_token(api, token, content=b"{", headers={"Content-Type": "application/json"}).text
    )
    with api.client() as client:
        bodies.append(
            client.delete(SESSION_PATH, params={"sign_out": "1"}, headers=bearer(token)).text
        )
    bodies.append(post_token(api, token).text)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "api/sendbird/session-token" in logged  # the access log was captured
    for secret in secrets:
        assert secret not in logged
        for body in bodies:
            assert secret not in body


def test_token_issued_during_a_sign_out_is_dropped(api: Api) -> None:
    token = api.sign_in()
    user_id = api.user_id(token)
    assert post_token(api, token).status_code == 200  # the user exists; the next is one POST
    api.sandbox.fault(method="POST", path="/v3/users/*/token", delay=1.0, count=1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post_token, api, token, json={"refresh": True})
        time.sleep(0.4)  # Sendbird is answering slowly
        with api.client() as client:  # the app's sign-out: the database, then the cache
            signed_out = client.delete(
                SESSION_PATH, params={"sign_out": "true"}, headers=bearer(token)
            )
        assert signed_out.status_code == 204, signed_out.text
        response = pending.result(timeout=30)
    assert_error(response, 401, "signed_out")
    minted = api.sandbox.tokens(user_id)
    assert len(minted) == 2  # issued at Sendbird, but never handed out
    assert all(t["token_sha256"] not in response.text for t in minted)
