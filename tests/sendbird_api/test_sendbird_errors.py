"""Mapping of error responses to typed exceptions, and the models (pure logic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sample_app.sendbird_api import (
    SendbirdAPIError,
    SendbirdApplicationUnavailableError,
    SendbirdAuthError,
    SendbirdBot,
    SendbirdConflictError,
    SendbirdError,
    SendbirdInputError,
    SendbirdNotAuthorizedError,
    SendbirdNotFoundError,
    SendbirdOriginNotAllowedError,
    SendbirdPlanLimitError,
    SendbirdRateLimitError,
    SendbirdRetryAfterTooLongError,
    SendbirdServerError,
    SendbirdUser,
    SendbirdValidationError,
    SessionToken,
)
from sample_app.sendbird_api.errors import error_from_response
from sample_app.sendbird_api.models import datetime_to_unix_ms, unix_ms_to_datetime
from tests.sendbird_api.scripted_server import API_TOKEN

JSON = {"content-type": "application/json"}
HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr>nginx</body></html>"
)


def envelope(code: int, message: str = "boom") -> bytes:
    return json.dumps({"error": True, "code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, envelope(400201, '"User" not found.'), SendbirdNotFoundError),
        (400, envelope(400202, '"User" already exists.'), SendbirdConflictError),
        (400, envelope(400401, 'Invalid value: "Api-Token".'), SendbirdAuthError),
        (400, envelope(400105), SendbirdValidationError),
        (400, envelope(400111), SendbirdValidationError),
        (400, envelope(400100), SendbirdValidationError),
        (400, envelope(400403), SendbirdValidationError),
        (429, envelope(500910), SendbirdRateLimitError),
        (500, envelope(500910), SendbirdRateLimitError),  # the code decides
        (500, envelope(500901), SendbirdServerError),
        (403, envelope(403100), SendbirdApplicationUnavailableError),
        (400, envelope(400108), SendbirdNotAuthorizedError),
        (400, envelope(400306), SendbirdPlanLimitError),
        (400, envelope(400307), SendbirdOriginNotAllowedError),
        (401, b"Unauthorized", SendbirdAuthError),
        (502, HTML_502, SendbirdServerError),
        (503, b"", SendbirdServerError),
        (429, b"slow down", SendbirdRateLimitError),
        (409, b"{}", SendbirdConflictError),
        (400, envelope(400300), SendbirdAPIError),
        (404, b"<html><title>404 Not Found</title></html>", SendbirdAPIError),
    ],
)
def test_code_first_then_status(status: int, body: bytes, expected: type[Exception]) -> None:
    error = error_from_response(status, body, JSON)
    assert type(error) is expected
    assert error.status_code == status


def test_bare_404_is_not_a_missing_user() -> None:
    error = error_from_response(404, b"<html><title>404 Not Found</title></html>", {})
    assert not isinstance(error, SendbirdNotFoundError)
    assert "base URL" in str(error)


def test_redirects_point_at_the_base_url() -> None:
    error = error_from_response(301, b"", {"location": "https://elsewhere"})
    assert type(error) is SendbirdAPIError
    assert "redirect" in str(error)
    assert "base URL" in str(error)


def test_invalid_api_token_never_reads_as_not_found() -> None:
    error = error_from_response(400, envelope(400401, 'Invalid value: "Api-Token".'), JSON)
    assert isinstance(error, SendbirdAuthError)
    assert not isinstance(error, SendbirdNotFoundError)
    assert "rejected the API token" in str(error)
    assert "check SENDBIRD_API_TOKEN" in str(error)
    assert error.code == 400401


def test_html_502_gives_a_clear_message() -> None:
    error = error_from_response(
        502, HTML_502, {"content-type": "text/html"}, endpoint="GET /v3/users/{user_id}"
    )
    text = str(error)
    assert text.startswith("GET /v3/users/{user_id}: Sendbird had a server-side problem")
    assert "HTTP 502" in text
    assert "non-JSON response (text/html): 502 Bad Gateway" in text
    assert error.code is None
    assert "<" not in text


def test_rate_limit_carries_retry_after_and_request_id() -> None:
    error = error_from_response(
        429,
        envelope(500910, "Too many requests"),
        {"X-RateLimit-RetryAfter": "1.5", "X-Request-Id": "req-1"},
    )
    assert isinstance(error, SendbirdRateLimitError)
    assert error.retry_after == 1.5
    assert error.request_id == "req-1"
    assert "retry after 1.5 s" in str(error)
    assert "retry_after=1.5" in repr(error)


def test_retry_after_too_long_is_a_rate_limit_error_with_the_bound() -> None:
    error = SendbirdRetryAfterTooLongError(
        429, 500910, "Too many requests", retry_after=30.0, max_retry_after=10.0
    )
    assert isinstance(error, SendbirdRateLimitError)
    assert "wait 30 s" in str(error)
    assert "max_retry_after (10 s)" in str(error)


def test_server_text_is_redacted() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYSJ9.c2lnbmF0dXJlLXNpZw"
    body = envelope(400401, f"bad token {API_TOKEN} and {jwt}")
    error = error_from_response(400, body, JSON, secrets=[API_TOKEN])
    for text in (str(error), repr(error), error.message):
        assert API_TOKEN not in text
        assert jwt not in text
        assert "[REDACTED]" in text


def test_long_bodies_are_shortened() -> None:
    error = error_from_response(500, b"x" * 10_000, {"content-type": "text/plain"})
    assert len(error.message) < 300


def test_non_envelope_json() -> None:
    error = error_from_response(400, b'{"detail": "nope"}', JSON)
    assert type(error) is SendbirdAPIError
    assert "unexpected JSON body" in error.message


def test_string_codes_are_understood() -> None:
    body = b'{"error": true, "code": "400201", "message": "not found"}'
    assert isinstance(error_from_response(400, body, JSON), SendbirdNotFoundError)


def test_input_error_is_a_value_error_and_says_nothing_was_sent() -> None:
    error = SendbirdInputError("user_id", "must not be empty")
    assert isinstance(error, ValueError)
    assert isinstance(error, SendbirdError)
    assert str(error) == "Invalid user_id: must not be empty. Nothing was sent to Sendbird."


def test_retryable_flags() -> None:
    assert SendbirdServerError(502, None, "").retryable
    assert SendbirdRateLimitError(429, 500910, "").retryable
    assert not SendbirdAuthError(400, 400401, "").retryable
    assert not SendbirdNotFoundError(400, 400201, "").retryable


# ---------------------------------------------------------------- models


def test_session_token_repr_redacts_the_token() -> None:
    token = SessionToken.from_api({"token": "eyJsecret.value.sig", "expires_at": 1598651815000})
    assert "eyJsecret" not in repr(token)
    assert "eyJsecret" not in str(token)
    assert "eyJsecret" not in f"{token}"
    assert "[REDACTED]" in repr(token)
    assert token.expires_at == datetime(2020, 8, 28, 21, 56, 55, tzinfo=UTC)
    assert token.expires_at.tzinfo is UTC


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"token": "t"},
        {"token": "", "expires_at": 1},
        {"token": "t", "expires_at": "1"},
        {"token": "t", "expires_at": True},
        {"token": 5, "expires_at": 1},
    ],
)
def test_session_token_rejects_malformed_responses(data: dict[str, object]) -> None:
    with pytest.raises(SendbirdError, match="unexpected response"):
        SessionToken.from_api(data)


def test_user_from_api_keeps_only_public_fields() -> None:
    user = SendbirdUser.from_api(
        {"user_id": "u1", "nickname": "Ada", "profile_url": None, "access_token": "secret-at"}
    )
    assert user == SendbirdUser("u1", "Ada", "")
    assert "secret-at" not in repr(user)
    with pytest.raises(SendbirdError):
        SendbirdUser.from_api({"nickname": "no id"})


def test_unix_ms_conversion_is_exact_and_needs_aware_datetimes() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert datetime_to_unix_ms(moment) == 1772366400123
    assert unix_ms_to_datetime(1772366400123) == moment
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert datetime_to_unix_ms(plus_two) == 1772366400123
    with pytest.raises(ValueError, match="timezone-aware"):
        datetime_to_unix_ms(datetime(2026, 3, 1, 12, 0, 0))


# ---- codes a newly set-up real application runs into ----------------------------------------


def test_application_unavailable_points_at_the_plan_not_the_token() -> None:
    error = error_from_response(403, envelope(403100, "Application is not available."), JSON)

    assert isinstance(error, SendbirdAuthError)  # still a configuration problem
    text = str(error)
    assert text.startswith("The Sendbird application is not available (code 403100, HTTP 403)")
    assert "plan or trial" in text or "free trial" in text
    assert "check SENDBIRD_API_TOKEN" not in text
    assert "The API token is not the problem" in text


@pytest.mark.parametrize(
    ("code", "expected_words"),
    [
        (400306, ("plan limit or quota", "upgrade")),
        (400307, ("domain restriction", "allowed domains")),
        (400108, ("refused access to this resource", "master or a secondary API token")),
    ],
)
def test_plan_origin_and_authorization_codes_say_what_to_do(
    code: int, expected_words: tuple[str, ...]
) -> None:
    error = error_from_response(400, envelope(code), JSON, endpoint="GET /v3/bots/{bot_id}")

    text = str(error)
    assert text.startswith("GET /v3/bots/{bot_id}: ")
    assert f"code {code}, HTTP 400" in text
    for words in expected_words:
        assert words in text
    assert not isinstance(error, SendbirdValidationError)  # 400108 sits in the 4001xx range
    assert not error.retryable


def test_bot_from_api_drops_the_bot_token_and_reads_the_app_id() -> None:
    data = {
        "bot": {"bot_userid": "b1", "bot_nickname": "Helper", "bot_token": "secret-bot-token"},
        "app_id": "APP",
    }
    bot = SendbirdBot.from_api(data)
    assert bot == SendbirdBot(bot_id="b1", nickname="Helper", app_id="APP")
    assert "secret-bot-token" not in repr(bot)
    assert SendbirdBot.from_api({"bot": {"bot_userid": "b2"}}).app_id is None
    with pytest.raises(SendbirdError):
        SendbirdBot.from_api({"bot": {}})
