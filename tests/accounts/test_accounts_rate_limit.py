"""The sign-in rate limit: per pair with backoff, per client key, per username, in the database."""

from __future__ import annotations

import copy
import pickle
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    RateLimit,
    SignInError,
    TooManyAttemptsError,
)
from sample_app.accounts.rate_limit import AttemptKey
from tests.accounts.helpers import PASSWORD, count_rows
from tests.clock import FakeClock

WINDOW = 15 * 60


@pytest.fixture
def alice(service: AccountService) -> None:
    service.register("alice", PASSWORD, "Alice")
    service.register("bob", PASSWORD, "Bob")


def fail(service: AccountService, username: str, client: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(SignInError) as raised:
            service.sign_in(username, "wrong password", client)
        assert type(raised.value) is SignInError


def blocked(service: AccountService, username: str, client: str) -> TooManyAttemptsError:
    with pytest.raises(TooManyAttemptsError) as raised:
        service.sign_in(username, PASSWORD, client)
    return raised.value


@pytest.mark.usefixtures("alice")
def test_four_failures_still_allow_the_right_password(service: AccountService) -> None:
    fail(service, "alice", "c", times=4)
    assert service.sign_in("alice", PASSWORD, "c").account.username == "alice"


@pytest.mark.usefixtures("alice")
def test_client_key_is_refused_after_max_client_failures_on_any_usernames(
    service: AccountService, clock: FakeClock
) -> None:
    for n in range(30):
        fail(service, f"user{n}", "198.51.100.9")
        clock.advance(seconds=1)
    error = blocked(service, "bob", "198.51.100.9")
    assert error.retry_after_seconds == WINDOW - 30
    # The same accounts still work from elsewhere.
    assert service.sign_in("bob", PASSWORD, "203.0.113.1").account.username == "bob"


@pytest.mark.usefixtures("alice")
def test_unknown_usernames_are_limited_too(service: AccountService) -> None:
    fail(service, "nobody", "c", times=5)
    assert blocked(service, "nobody", "c").retry_after_seconds == 1


@pytest.mark.usefixtures("alice")
def test_blocked_attempts_leave_no_trace(service: AccountService, engine: Engine) -> None:
    fail(service, "alice", "c", times=5)
    for _ in range(3):
        assert blocked(service, "alice", "c").retry_after_seconds == 1
    assert count_rows(engine, "sign_in_attempts") == 5


@pytest.mark.usefixtures("alice")
def test_success_forgives_only_the_same_username_from_the_same_client(
    service: AccountService, clock: FakeClock
) -> None:
    fail(service, "alice", "home", times=4)
    service.sign_in("alice", PASSWORD, "home")
    fail(service, "alice", "home", times=4)  # the first four were forgiven
    assert service.sign_in("alice", PASSWORD, "home").account.username == "alice"
    fail(service, "carol", "home", times=5)  # not forgiven by alice's success
    assert blocked(service, "carol", "home").retry_after_seconds == 1


@pytest.mark.usefixtures("alice")
def test_empty_client_key_only_applies_the_username_limit(service: AccountService) -> None:
    for username in ("carol", "dave", "erin", "frank", "gina", "heidi"):
        fail(service, username, "")
    assert service.sign_in("alice", PASSWORD, "").account.username == "alice"


def test_limit_survives_a_restart_and_is_shared_by_workers(
    engine: Engine, hasher: Argon2Hasher, clock: FakeClock
) -> None:
    first = AccountService(engine, hasher=hasher, clock=clock)
    first.register("alice", PASSWORD, "Alice")
    fail(first, "alice", "c", times=3)
    second = AccountService(engine, hasher=hasher, clock=clock)  # another worker / restart
    fail(second, "alice", "c", times=2)
    blocked(first, "alice", "c")
    blocked(second, "alice", "c")


def test_backoff_is_capped(engine: Engine, hasher: Argon2Hasher, clock: FakeClock) -> None:
    limit = RateLimit(free_failures=1, backoff_cap=timedelta(seconds=5))
    service = AccountService(engine, hasher=hasher, clock=clock, rate_limit=limit)
    assert [limit.backoff(n).total_seconds() for n in range(6)] == [0, 1, 2, 4, 5, 5]
    fail(service, "nobody", "c")
    assert blocked(service, "nobody", "c").retry_after_seconds == 1


@pytest.mark.usefixtures("alice")
def test_old_attempts_are_pruned(service: AccountService, engine: Engine, clock: FakeClock) -> None:
    fail(service, "alice", "c", times=3)
    service.sign_in("bob", PASSWORD, "c")
    assert count_rows(engine, "sign_in_attempts") == 4
    clock.advance(minutes=15, seconds=1)
    fail(service, "bob", "c")  # an attempt prunes the failures outside the window
    assert count_rows(engine, "sign_in_attempts") == 2  # bob's success is kept (known client)
    clock.advance(days=31)
    assert service.prune().attempts == 2
    assert count_rows(engine, "sign_in_attempts") == 0


def test_attempt_key_is_normalised_and_cut_to_the_column_lengths() -> None:
    assert AttemptKey.of("  \uff21LICE ", " 203.0.113.7 ") == ("alice", "203.0.113.7", None)
    key = AttemptKey.of("x" * 500, "c" * 500)
    assert (len(key.username), len(key.client)) == (64, 128)
    assert AttemptKey.of("a", "device:1").client == ""  # a client cannot pose as a device
    assert AttemptKey.of("a", "10.0.0.1", 7).bucket == "device:7"


def test_rate_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="free_failures"):
        RateLimit(free_failures=0)
    with pytest.raises(ValueError, match="window"):
        RateLimit(window=timedelta(0))
    with pytest.raises(ValueError, match="max_client_failures"):
        RateLimit(max_client_failures=0)
    with pytest.raises(ValueError, match="backoff_cap"):
        RateLimit(backoff_cap=timedelta(0))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 second"), (59, "59 seconds"), (60, "1 minute"), (61, "2 minutes"), (900, "15 minutes")],
)
def test_retry_message_wording(seconds: int, text: str) -> None:
    error = TooManyAttemptsError(seconds)
    assert error.retry_after_seconds == seconds
    assert str(error) == f"Too many failed sign-in attempts. Try again in {text}."
    assert isinstance(error, SignInError)


def test_errors_survive_copy_and_pickle() -> None:
    error = pickle.loads(pickle.dumps(TooManyAttemptsError(90)))  # noqa: S301 - our own bytes
    assert error.retry_after_seconds == 90
    assert str(error) == "Too many failed sign-in attempts. Try again in 2 minutes."
    wrong = copy.copy(SignInError())
    assert str(wrong) == wrong.message == "Wrong username or password."
