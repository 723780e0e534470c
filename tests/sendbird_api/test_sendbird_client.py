"""SendbirdClient against a real scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from sample_app.sendbird_api import (
    RetryPolicy,
    SendbirdAPIError,
    SendbirdAuthError,
    SendbirdClient,
    SendbirdConflictError,
    SendbirdConnectionError,
    SendbirdError,
    SendbirdInputError,
    SendbirdNotFoundError,
    SendbirdRateLimitError,
    SendbirdRetryAfterTooLongError,
    SendbirdServerError,
    SendbirdTimeoutError,
    SendbirdUser,
    SendbirdValidationError,
)
from tests.sendbird_api.scripted_server import (
    API_TOKEN,
    ClientFactory,
    Reply,
    ScriptedServer,
    SleepRecorder,
    closed_port_url,
    sendbird_error,
)

USER_JSON = {
    "user_id": "alice",
    "nickname": "Alice",
    "profile_url": "https://example.com/a.png",
    "access_token": "",
    "is_online": False,
}
NOT_FOUND = sendbird_error(400201, '"User" not found.')
BAD_TOKEN = sendbird_error(400401, 'Invalid value: "Api-Token".')
RATE_LIMITED = 429


def rate_limited(**headers: str) -> Reply:
    return sendbird_error(500910, "Too many requests", status=RATE_LIMITED, headers=headers)


# ------------------------------------------------------------ happy paths


async def test_requests_carry_the_documented_headers(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(json=USER_JSON))
    await client.get_user("alice")
    (request,) = server.requests
    assert request.method == "GET"
    assert request.raw_path == b"/v3/users/alice"
    assert request.headers["api-token"] == API_TOKEN
    assert request.headers["content-type"] == "application/json; charset=utf8"
    assert request.headers["user-agent"].startswith("sendbird-reflex-sample/")


async def test_get_user_returns_the_user(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(Reply(json=USER_JSON))
    user = await client.get_user("alice")
    assert user == SendbirdUser("alice", "Alice", "https://example.com/a.png")
    assert client.call_counts == {"GET /v3/users/{user_id}": 1}


async def test_get_user_returns_none_only_for_400201(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND)
    assert await client.get_user("ghost") is None


async def test_invalid_api_token_is_an_auth_error_not_a_missing_user(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(BAD_TOKEN)
    with pytest.raises(SendbirdAuthError) as caught:
        await client.get_user("alice")
    assert not isinstance(caught.value, SendbirdNotFoundError)
    assert caught.value.code == 400401
    assert caught.value.status_code == 400
    assert "check SENDBIRD_API_TOKEN" in str(caught.value)
    assert len(server.requests) == 1  # never retried
    assert sleeps.delays == []


async def test_create_user_sends_the_fields(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(Reply(json=USER_JSON))
    user = await client.create_user("alice", "Alice", "https://example.com/a.png")
    assert user.user_id == "alice"
    (request,) = server.requests
    assert (request.method, request.raw_path) == ("POST", b"/v3/users")
    assert request.json() == {
        "user_id": "alice",
        "nickname": "Alice",
        "profile_url": "https://example.com/a.png",
    }


MARK = {"created_by": "sendbird-reflex-sample"}


async def test_get_user_parses_the_metadata(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(Reply(json={**USER_JSON, "metadata": MARK}))
    user = await client.get_user("alice")
    assert user is not None
    assert user.metadata == MARK
    assert user == SendbirdUser("alice", "Alice", "https://example.com/a.png", MARK)


@pytest.mark.parametrize("metadata", [None, [], "created_by"], ids=["null", "list", "string"])
async def test_get_user_without_usable_metadata_has_none(
    server: ScriptedServer, client: SendbirdClient, metadata: object
) -> None:
    server.reply(Reply(json={**USER_JSON, "metadata": metadata}))
    user = await client.get_user("alice")
    assert user is not None
    assert user.metadata == {}


async def test_create_user_sends_the_metadata(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(json={**USER_JSON, "metadata": MARK}))
    user = await client.create_user("alice", "Alice", metadata=MARK)
    assert user.metadata == MARK
    (request,) = server.requests
    assert request.json() == {
        "user_id": "alice",
        "nickname": "Alice",
        "profile_url": "",
        "metadata": MARK,
    }


async def test_ensure_user_creates_a_missing_user_with_the_metadata(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND, Reply(json={**USER_JSON, "metadata": MARK}))
    user = await client.ensure_user("alice", "Alice", metadata=MARK)
    assert user.metadata == MARK
    assert server.requests[1].json()["metadata"] == MARK


async def test_ensure_user_returns_an_existing_users_metadata_unchanged(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    """The caller decides what an unmarked user means; ensure_user does not re-mark it."""
    server.reply(Reply(json={**USER_JSON, "metadata": {"team": "support"}}))
    user = await client.ensure_user("alice", "Alice", metadata=MARK)
    assert user.metadata == {"team": "support"}
    assert [r.method for r in server.requests] == ["GET"]


@pytest.mark.parametrize(
    "metadata",
    [{str(i): "x" for i in range(6)}, {"": "x"}, {"k": 1}],
    ids=["too-many", "empty-key", "non-string-value"],
)
async def test_bad_metadata_is_refused_before_sending(
    server: ScriptedServer, client: SendbirdClient, metadata: dict[str, str]
) -> None:
    with pytest.raises(SendbirdInputError, match="metadata"):
        await client.create_user("alice", "Alice", metadata=metadata)
    assert server.requests == []


async def test_create_existing_user_raises_conflict(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(sendbird_error(400202, '"User" already exists.'))
    with pytest.raises(SendbirdConflictError) as caught:
        await client.create_user("alice", "Alice")
    assert caught.value.code == 400202


async def test_ensure_user_returns_an_existing_user_with_one_call(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(json=USER_JSON))
    assert (await client.ensure_user("alice", "Alice")).nickname == "Alice"
    assert [r.method for r in server.requests] == ["GET"]


async def test_ensure_user_creates_a_missing_user(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND, Reply(json=USER_JSON))
    await client.ensure_user("alice", "Alice")
    assert [(r.method, r.raw_path) for r in server.requests] == [
        ("GET", b"/v3/users/alice"),
        ("POST", b"/v3/users"),
    ]


async def test_ensure_user_treats_a_concurrent_create_as_success(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND, sendbird_error(400202, "already exists"), Reply(json=USER_JSON))
    user = await client.ensure_user("alice", "Alice")
    assert user.user_id == "alice"
    assert [r.method for r in server.requests] == ["GET", "POST", "GET"]


async def test_ensure_user_reports_the_conflict_if_the_user_vanished(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND, sendbird_error(400202, "already exists"), NOT_FOUND)
    with pytest.raises(SendbirdConflictError):
        await client.ensure_user("alice", "Alice")


async def test_update_user_puts_only_the_given_fields(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(json={**USER_JSON, "nickname": "Al"}))
    user = await client.update_user("alice", nickname="Al")
    assert user.nickname == "Al"
    (request,) = server.requests
    assert (request.method, request.raw_path) == ("PUT", b"/v3/users/alice")
    assert request.json() == {"nickname": "Al"}


async def test_update_user_maps_not_found(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(NOT_FOUND)
    with pytest.raises(SendbirdNotFoundError):
        await client.update_user("ghost", profile_url="")


async def test_issue_session_token_sends_unix_ms_and_converts_back(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    expires_at = datetime(2026, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)
    server.reply(Reply(json={"token": "eyJhbGciOi.abc.def", "expires_at": 1772368200250}))
    token = await client.issue_session_token("alice", expires_at)
    assert token.token == "eyJhbGciOi.abc.def"
    assert token.expires_at == expires_at
    assert token.expires_at.tzinfo is not None
    (request,) = server.requests
    assert (request.method, request.raw_path) == ("POST", b"/v3/users/alice/token")
    body = request.json()
    assert body == {"expires_at": 1772368200250}
    assert isinstance(body["expires_at"], int)
    assert client.call_counts == {"POST /v3/users/{user_id}/token": 1}


async def test_issue_session_token_for_missing_user_raises_not_found(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(NOT_FOUND)
    with pytest.raises(SendbirdNotFoundError, match="ensure_user"):
        await client.issue_session_token("ghost", datetime.now(UTC) + timedelta(minutes=5))


async def test_revoke_session_tokens(server: ScriptedServer, client: SendbirdClient) -> None:
    server.reply(Reply(body=b""), NOT_FOUND)
    assert await client.revoke_session_tokens("alice") is None
    with pytest.raises(SendbirdNotFoundError):
        await client.revoke_session_tokens("ghost")
    assert [(r.method, r.raw_path) for r in server.requests] == [
        ("DELETE", b"/v3/users/alice/token"),
        ("DELETE", b"/v3/users/ghost/token"),
    ]


@pytest.mark.parametrize("code", [400105, 400111])
async def test_bad_fields_raise_validation_errors_without_retry(
    server: ScriptedServer, client: SendbirdClient, code: int
) -> None:
    server.reply(sendbird_error(code, "Invalid value"))
    with pytest.raises(SendbirdValidationError) as caught:
        await client.create_user("alice", "Alice")
    assert caught.value.code == code
    assert len(server.requests) == 1


# ------------------------------------------------------------------ retries


async def test_rate_limit_honours_sendbird_retry_after_header(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(rate_limited(**{"X-RateLimit-RetryAfter": "0.0697"}), Reply(json=USER_JSON))
    assert await client.get_user("alice") is not None
    assert sleeps.delays == [0.0697]
    assert client.call_counts["GET /v3/users/{user_id}"] == 2


async def test_rate_limit_honours_retry_after_seconds(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(rate_limited(**{"Retry-After": "2"}), Reply(json=USER_JSON))
    await client.get_user("alice")
    assert sleeps.delays == [2.0]


async def test_rate_limit_honours_retry_after_http_date(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    server.reply(rate_limited(**{"Retry-After": when}), Reply(json=USER_JSON))
    await client.get_user("alice")
    (delay,) = sleeps.delays
    assert 3.0 < delay <= 5.0  # HTTP-dates have whole-second precision


async def test_retry_after_above_the_bound_fails_at_once(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(rate_limited(**{"X-RateLimit-RetryAfter": "30"}))
    with pytest.raises(SendbirdRetryAfterTooLongError) as caught:
        await client.issue_session_token("alice", datetime.now(UTC) + timedelta(minutes=5))
    assert caught.value.retry_after == 30.0
    assert caught.value.max_retry_after == 10.0
    assert "longer than RetryPolicy.max_retry_after" in str(caught.value)
    assert sleeps.delays == []
    assert len(server.requests) == 1


async def test_rate_limit_without_header_uses_backoff_until_exhausted(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(rate_limited(), rate_limited(), rate_limited())
    with pytest.raises(SendbirdRateLimitError) as caught:
        await client.get_user("alice")
    assert type(caught.value) is SendbirdRateLimitError
    assert caught.value.retry_after is None
    assert sleeps.delays == [0.25, 0.5]
    assert len(server.requests) == 3


async def test_server_error_then_success_is_retried(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(
        sendbird_error(500901, "Internal error", status=500),
        Reply(json={"token": "eyJx.y.z", "expires_at": 1772368200000}),
    )
    token = await client.issue_session_token("alice", datetime.now(UTC) + timedelta(minutes=5))
    assert token.token == "eyJx.y.z"
    assert sleeps.delays == [0.25]
    assert client.call_counts["POST /v3/users/{user_id}/token"] == 2


async def test_server_errors_exhaust_the_retries(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    client = make_client(retry=RetryPolicy(max_retries=3, initial_delay=0.5, jitter=0))
    server.reply(*[Reply(503, body="unavailable")] * 4)
    with pytest.raises(SendbirdServerError) as caught:
        await client.get_user("alice")
    assert caught.value.status_code == 503
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert len(server.requests) == 4


async def test_server_error_asking_for_a_long_pause_is_not_waited_for(
    server: ScriptedServer, client: SendbirdClient, sleeps: SleepRecorder
) -> None:
    server.reply(Reply(503, body="maintenance", headers={"Retry-After": "120"}))
    with pytest.raises(SendbirdServerError):
        await client.get_user("alice")
    assert sleeps.delays == []


async def test_html_502_gives_a_clear_server_error(
    server: ScriptedServer, make_client: ClientFactory
) -> None:
    client = make_client(retry=RetryPolicy(max_retries=0))
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.reply(Reply(502, body=page))
    with pytest.raises(SendbirdServerError) as caught:
        await client.get_user("alice")
    message = str(caught.value)
    assert "HTTP 502" in message
    assert "non-JSON response (text/html): 502 Bad Gateway" in message
    assert caught.value.code is None


async def test_connect_error_is_retried_then_raised(
    make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    client = make_client(base_url=closed_port_url())
    with pytest.raises(SendbirdConnectionError) as caught:
        await client.get_user("alice")
    assert not isinstance(caught.value, SendbirdTimeoutError)
    assert caught.value.attempts == 3
    assert caught.value.endpoint == "GET /v3/users/{user_id}"
    assert "after 3 attempt(s)" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert sleeps.delays == [0.25, 0.5]
    assert client.call_counts["GET /v3/users/{user_id}"] == 3


async def test_read_timeout_is_retried_then_raised(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    client = make_client(
        timeout=httpx.Timeout(5.0, read=0.05),
        retry=RetryPolicy(max_retries=1, jitter=0),
    )
    server.reply(Reply(json=USER_JSON, delay=0.4), Reply(json=USER_JSON, delay=0.4))
    with pytest.raises(SendbirdTimeoutError) as caught:
        await client.get_user("alice")
    assert caught.value.attempts == 2
    assert "read timeout (0.05 s)" in str(caught.value)
    assert sleeps.delays == [0.25]
    assert len(server.requests) == 2


async def test_read_timeout_then_success(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    # Generous read timeout: the second answer must arrive in time even on a busy CI box.
    client = make_client(timeout=httpx.Timeout(5.0, read=0.3))
    server.reply(Reply(json=USER_JSON, delay=1.0), Reply(json=USER_JSON))
    assert await client.get_user("alice") is not None
    assert sleeps.delays == [0.25]


async def test_max_retries_zero_sends_once(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    client = make_client(retry=RetryPolicy(max_retries=0))
    server.reply(Reply(500, body="oops"))
    with pytest.raises(SendbirdServerError):
        await client.get_user("alice")
    assert len(server.requests) == 1
    assert sleeps.delays == []


# ------------------------------------------------------ odd success bodies


async def test_non_json_success_body_is_reported(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(200, body="<html>captive portal</html>"))
    with pytest.raises(SendbirdAPIError, match="not JSON"):
        await client.get_user("alice")


async def test_json_that_is_not_a_user_is_reported(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(json=["not", "an", "object"]))
    with pytest.raises(SendbirdError, match="unexpected response"):
        await client.get_user("alice")


async def test_bare_404_from_a_wrong_base_url_is_not_none(
    server: ScriptedServer, client: SendbirdClient
) -> None:
    server.reply(Reply(404, body="<html><title>404 Not Found</title></html>"))
    with pytest.raises(SendbirdAPIError, match="base URL") as caught:
        await client.get_user("alice")
    assert not isinstance(caught.value, SendbirdNotFoundError)


# ---------------------------------------------------------------- lifecycle


async def test_async_context_manager_closes_the_client(server: ScriptedServer) -> None:
    server.reply(Reply(json=USER_JSON))
    async with SendbirdClient(server.base_url, API_TOKEN) as client:
        assert await client.get_user("alice") is not None
    await client.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await client.get_user("alice")


async def test_for_application_builds_the_hosted_url() -> None:
    async with SendbirdClient.for_application("A1B2-C3", API_TOKEN) as client:
        assert client.base_url == "https://api-a1b2-c3.sendbird.com"  # hosts are case-insensitive
        assert API_TOKEN not in repr(client)
