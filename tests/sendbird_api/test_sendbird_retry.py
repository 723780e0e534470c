"""RetryPolicy validation, backoff arithmetic and Retry-After parsing (pure logic)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from sample_app.sendbird_api import RetryPolicy, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def test_defaults_match_the_documented_policy() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.initial_delay, policy.max_delay) == (2, 0.25, 4.0)
    assert (policy.max_retry_after, policy.jitter) == (10.0, 0.25)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"initial_delay": -0.1}, ValueError),
        ({"initial_delay": math.nan}, ValueError),
        ({"max_delay": math.inf}, ValueError),
        ({"max_retry_after": -1}, ValueError),
        ({"initial_delay": 5.0, "max_delay": 1.0}, ValueError),
        ({"jitter": 1.5}, ValueError),
        ({"jitter": -0.1}, ValueError),
        ({"initial_delay": "1"}, TypeError),
    ],
)
def test_invalid_policies_are_rejected_at_construction(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 4.0), (6, 4.0), (10_000, 4.0)],
)
def test_backoff_doubles_and_is_capped(attempt: int, expected: float) -> None:
    assert RetryPolicy(jitter=0).compute_delay(attempt) == expected


def test_jitter_only_shortens_the_delay() -> None:
    policy = RetryPolicy(jitter=0.25)
    assert policy.compute_delay(3, rand=lambda: 0.0) == 1.0
    assert policy.compute_delay(3, rand=lambda: 0.999999) == pytest.approx(0.75, abs=1e-5)
    for _ in range(200):  # with the real random source too
        assert 0.75 * 4.0 <= policy.compute_delay(8) <= 4.0


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(1.5, 1.5), (0.0697, 0.0697), (0.0, 0.0), (25.0, 10.0)]
)
def test_server_delay_wins_without_jitter_and_is_clamped(
    retry_after: float, expected: float
) -> None:
    assert RetryPolicy().compute_delay(1, retry_after, rand=lambda: 0.9) == expected


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().compute_delay(0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-RetryAfter": "0.0697"}, 0.0697),
        ({"X-RateLimit-RetryAfter": "2"}, 2.0),
        ({"x-ratelimit-retryafter": " 3.5 "}, 3.5),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"Retry-After": http_date(NOW + timedelta(seconds=20))}, 20.0),
        # Sendbird's own header wins over the generic one...
        ({"X-RateLimit-RetryAfter": "1.25", "Retry-After": "9"}, 1.25),
        # ...unless it is garbage, then Retry-After is the fallback.
        ({"X-RateLimit-RetryAfter": "soon", "Retry-After": "9"}, 9.0),
        ({}, None),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "1e3"}, None),
        ({"Retry-After": "1_000"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "tomorrow-ish"}, None),
        ({"X-RateLimit-RetryAfter": "-0.5"}, None),
        ({"Retry-After": http_date(NOW - timedelta(seconds=5))}, None),  # in the past
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=lambda: NOW) == expected


def test_parse_retry_after_accepts_httpx_headers() -> None:
    headers = httpx.Headers({"X-RATELIMIT-RETRYAFTER": "0.5"})
    assert parse_retry_after(headers) == 0.5


def test_http_date_without_zone_is_read_as_utc() -> None:
    value = "Sun, 01 Mar 2026 12:00:30 -0000"
    assert parse_retry_after({"Retry-After": value}, now=lambda: NOW) == 30.0
