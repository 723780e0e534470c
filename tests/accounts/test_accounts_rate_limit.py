"""The sign-in rate limit: per username, per client key, in the database."""

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
def test_username_is_locked_after_max_failures_from_any_clients(
    service: AccountService, clock: FakeClock
) -> None:
    for client in ("c1", "c2", "c3", "c4", "c5"):
        fail(service, "alice", client)
        clock.advance(seconds=10)
    # Even the right password from a fresh client is not checked.
    error = blocked(service, "ALICE", "fresh-client")
    assert error.retry_after_seconds == WINDOW - 50
    assert "Try again in 15 minutes" in str(error)
    # Other accounts are unaffected.
    assert service.sign_in("bob", PASSWORD, "fresh-client").account.username == "bob"


@pytest.mark.usefixtures("alice")
def test_four_failures_still_allow_the_right_password(service: AccountService) -> None:
    fail(service, "alice", "c", times=4)
    assert service.sign_in("alice", PASSWORD, "c").account.username == "alice"


@pytest.mark.usefixtures("alice")
def test_client_key_is_locked_after_max_failures_on_any_usernames(
    service: AccountService, clock: FakeClock
) -> None:
    for username in ("alice", "bob", "carol", "dave", "erin"):
        fail(service, username, "198.51.100.9")
        clock.advance(seconds=1)
    error = blocked(service, "bob", "198.51.100.9")
    assert error.retry_after_seconds == WINDOW - 5
    # The same accounts still work from elsewhere: no username reached its own limit.
    assert service.sign_in("bob", PASSWORD, "203.0.113.1").account.username == "bob"


@pytest.mark.usefixtures("alice")
def test_unknown_usernames_are_limited_too(service: AccountService) -> None:
    fail(service, "nobody", "c", times=5)
    error = blocked(service, "nobody", "c2")
    assert error.retry_after_seconds == WINDOW


@pytest.mark.usefixtures("alice")
def test_lock_lifts_as_failures_leave_the_window(service: AccountService, clock: FakeClock) -> None:
    fail(service, "alice", "c")  # at t=0
    clock.advance(minutes=5)
    fail(service, "alice", "c", times=4)  # at t=5min
    error = blocked(service, "alice", "c")
    assert error.retry_after_seconds == 10 * 60
    assert "Try again in 10 minutes" in str(error)
    clock.advance(seconds=10 * 60 - 1)
    assert blocked(service, "alice", "c").retry_after_seconds == 1
    assert str(blocked(service, "alice", "c")).endswith("Try again in 1 second.")
    clock.advance(seconds=1)  # the t=0 failure has left the window: 4 remain
    assert service.sign_in("alice", PASSWORD, "c").account.username == "alice"


@pytest.mark.usefixtures("alice")
def test_blocked_attempts_do_not_extend_the_lock(service: AccountService, clock: FakeClock) -> None:
    fail(service, "alice", "c", times=5)
    for waited in (4, 8, 12):
        clock.advance(minutes=4)
        assert blocked(service, "alice", "c").retry_after_seconds == WINDOW - waited * 60
    clock.advance(minutes=3)
    assert service.sign_in("alice", PASSWORD, "c").account.username == "alice"


@pytest.mark.usefixtures("alice")
def test_success_forgives_only_the_same_username_from_the_same_client(
    service: AccountService,
) -> None:
    # An attacker at "x" fails 3 times on alice.
    fail(service, "alice", "x", times=3)
    # Alice mistypes once at home, then gets it right: her typo is forgiven...
    fail(service, "alice", "home")
    service.sign_in("alice", PASSWORD, "home")
    # ...but the attacker's 3 failures still count: 2 more and alice is locked.
    fail(service, "alice", "x", times=2)
    assert blocked(service, "alice", "home").retry_after_seconds == WINDOW


@pytest.mark.usefixtures("alice")
def test_signing_in_to_ones_own_account_does_not_reset_a_clients_other_failures(
    service: AccountService,
) -> None:
    """Credential stuffing from one client is not forgiven by one valid login."""
    for username in ("carol", "dave", "erin", "frank"):
        fail(service, username, "attacker")
    service.sign_in("bob", PASSWORD, "attacker")  # the attacker's own account
    fail(service, "gina", "attacker")
    assert blocked(service, "heidi", "attacker").retry_after_seconds == WINDOW


@pytest.mark.usefixtures("alice")
def test_empty_client_key_only_applies_the_username_limit(service: AccountService) -> None:
    for username in ("carol", "dave", "erin", "frank", "gina", "heidi"):
        fail(service, username, "")
    assert service.sign_in("alice", PASSWORD, "").account.username == "alice"


def test_separate_client_limit(engine: Engine, hasher: Argon2Hasher, clock: FakeClock) -> None:
    service = AccountService(
        engine,
        hasher=hasher,
        clock=clock,
        rate_limit=RateLimit(max_failures=2, window=timedelta(minutes=1), max_client_failures=3),
    )
    service.register("alice", PASSWORD, "Alice")
    fail(service, "carol", "office")
    fail(service, "dave", "office")
    fail(service, "erin", "office")
    assert blocked(service, "alice", "office").retry_after_seconds == 60
    fail(service, "alice", "home", times=2)
    assert blocked(service, "alice", "cafe").retry_after_seconds == 60


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


@pytest.mark.usefixtures("alice")
def test_old_attempts_are_pruned(service: AccountService, engine: Engine, clock: FakeClock) -> None:
    fail(service, "alice", "c", times=3)
    service.sign_in("bob", PASSWORD, "c")
    assert count_rows(engine, "sign_in_attempts") == 4
    clock.advance(minutes=15, seconds=1)
    fail(service, "bob", "c")  # recording an attempt prunes those outside the window
    assert count_rows(engine, "sign_in_attempts") == 1
    clock.advance(minutes=15, seconds=1)
    assert service.prune().attempts == 1
    assert count_rows(engine, "sign_in_attempts") == 0


def test_attempt_key_is_normalised_and_cut_to_the_column_lengths() -> None:
    assert AttemptKey.of("  \uff21LICE ", " 203.0.113.7 ") == ("alice", "203.0.113.7")
    key = AttemptKey.of("x" * 500, "c" * 500)
    assert (len(key.username), len(key.client)) == (64, 128)


def test_rate_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        RateLimit(max_failures=0)
    with pytest.raises(ValueError, match="window"):
        RateLimit(window=timedelta(0))
    with pytest.raises(ValueError, match="max_client_failures"):
        RateLimit(max_client_failures=0)
    assert RateLimit().client_limit == 5
    assert RateLimit(max_client_failures=50).client_limit == 50


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
