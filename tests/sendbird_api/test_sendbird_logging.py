"""What the client logs, and proof that no token ever appears in logs or errors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sample_app.sendbird_api import (
    RedactingFilter,
    RetryPolicy,
    SendbirdClient,
    SendbirdError,
    redact,
)
from tests.sendbird_api.scripted_server import (
    API_TOKEN,
    ClientFactory,
    Reply,
    ScriptedServer,
    closed_port_url,
    sendbird_error,
)

SESSION_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXNpZ25hdHVyZQ"
FUTURE = datetime.now(UTC) + timedelta(minutes=30)


def everything_logged(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


async def test_no_token_in_any_log_record_or_error(
    server: ScriptedServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    client = make_client()
    errors: list[BaseException] = []
    server.reply(
        sendbird_error(400201, '"User" not found.'),
        Reply(json={"user_id": "alice", "nickname": "Alice"}),
        sendbird_error(
            500910, "Too many requests", status=429, headers={"X-RateLimit-RetryAfter": "0.01"}
        ),
        Reply(json={"token": SESSION_TOKEN, "expires_at": 1772368200000}),
        # A (hypothetical) server that echoes secrets back in its error message.
        sendbird_error(400401, f"Invalid value: {API_TOKEN} / {SESSION_TOKEN}"),
        Reply(500, body=f"<html><title>oops {SESSION_TOKEN}</title></html>"),
        Reply(500, body="still down"),
        Reply(500, body="still down"),
    )
    await client.ensure_user("alice", "Alice")
    token = await client.issue_session_token("alice", FUTURE)
    assert token.token == SESSION_TOKEN
    for call in (
        client.get_user("alice"),
        client.get_user("alice"),
    ):
        try:
            await call
        except SendbirdError as exc:
            errors.append(exc)
    closed = make_client(base_url=closed_port_url(), retry=RetryPolicy(max_retries=1, jitter=0))
    slow = make_client(timeout=httpx.Timeout(5.0, read=0.02), retry=RetryPolicy(max_retries=0))
    server.reply(Reply(json={}, delay=0.2))
    for call in (closed.get_user("alice"), slow.get_user("alice")):
        try:
            await call
        except SendbirdError as exc:
            errors.append(exc)

    assert len(errors) == 4
    logged = everything_logged(caplog.records)
    assert "Sendbird GET /v3/users/{user_id} -> 400 (attempt 1" in logged
    assert "Sendbird POST /v3/users/{user_id}/token -> 200 (attempt 2" in logged
    assert "retry 1 of 2 in 0.01 s" in logged
    for secret in (API_TOKEN, SESSION_TOKEN):
        assert secret not in logged
        for exc in errors:
            assert secret not in str(exc)
            assert secret not in repr(exc)
        assert secret not in repr(token)
        assert secret not in repr(client)


async def test_one_debug_line_per_attempt_and_one_warning_per_retry(
    server: ScriptedServer, client: SendbirdClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sample_app.sendbird_api")
    server.reply(Reply(502, body="bad gateway"), Reply(json={"user_id": "a", "nickname": ""}))
    await client.get_user("a/b")
    ours = [r for r in caplog.records if r.name.startswith("sample_app.sendbird_api")]
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in ours] == [
        ("DEBUG", "Sendbird GET /v3/users/{user_id} -> 502"),
        ("WARNING", "Sendbird GET /v3/users/{user_id} failed"),
        ("DEBUG", "Sendbird GET /v3/users/{user_id} -> 200"),
    ]
    assert "HTTP 502); retry 1 of 2 in 0.25 s" in ours[1].getMessage()
    assert all("a/b" not in r.getMessage() and "a%2Fb" not in r.getMessage() for r in ours)


async def test_filter_scrubs_secrets_logged_through_the_clients_logger(
    server: ScriptedServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("tests.sendbird.custom")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    client = make_client(logger=logger)
    logger.warning("careless: %s and %s", API_TOKEN, SESSION_TOKEN)
    assert caplog.records[-1].getMessage() == "careless: [REDACTED] and [REDACTED]"
    await client.aclose()
    assert logger.filters == []  # removed again on close


def test_redact() -> None:
    assert redact(f"a {API_TOKEN} b", [API_TOKEN]) == "a [REDACTED] b"
    assert redact(f"jwt {SESSION_TOKEN}.") == "jwt [REDACTED]."
    assert redact("short secret a", ["a"]) == "short secret a"  # too short to scrub
    assert redact("nothing here", [API_TOKEN]) == "nothing here"


def test_filter_leaves_clean_records_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (5,), None)
    assert RedactingFilter([API_TOKEN]).filter(record)
    assert (record.msg, record.args) == ("n=%d", (5,))
    assert API_TOKEN not in repr(RedactingFilter([API_TOKEN]))
