"""Hostile users: others' failures never lock an owner out, bursts and sign-ups are bounded."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    PasswordCheck,
    RegistrationError,
    SignInError,
    TooManyAttemptsError,
)
from tests.accounts.helpers import PASSWORD, count_rows
from tests.clock import FakeClock


def fail(service: AccountService, username: str, client: str, device_token: str = "") -> None:
    with pytest.raises(SignInError) as raised:
        if device_token:
            service.sign_in(username, "wrong password", client, device_token)
        else:
            service.sign_in(username, "wrong password", client)
    assert type(raised.value) is SignInError


def test_wrong_guesses_from_elsewhere_do_not_lock_the_owner(service: AccountService) -> None:
    service.register("alice", PASSWORD, "Alice")
    for _ in range(5):
        fail(service, "alice", "203.0.113.2")
    assert service.sign_in("alice", PASSWORD, "192.0.2.3").account.username == "alice"


def test_other_clients_failures_never_lock_the_owner_out(service: AccountService) -> None:
    service.register("alice", PASSWORD, "Alice")
    for _ in range(30):  # credential stuffing from X
        fail(service, f"nobody{secrets.token_hex(4)}", "198.51.100.1")
    for _ in range(5):  # guessing alice's password from Y
        fail(service, "alice", "203.0.113.2")

    # Her own, fresh client Z is not refused because of X's and Y's failures.
    signed_in = service.sign_in("alice", PASSWORD, "192.0.2.3")
    assert signed_in.account.username == "alice"

    # X itself is refused without a device token...
    with pytest.raises(TooManyAttemptsError):
        service.sign_in("alice", PASSWORD, "198.51.100.1")
    # ...but her browser on the attacker's address gets in with its device token.
    again = service.sign_in("alice", PASSWORD, "198.51.100.1", signed_in.device_token)
    assert again.account.username == "alice"
    assert again.device_token == signed_in.device_token  # kept, not replaced


def test_device_token_of_another_account_counts_for_nothing(service: AccountService) -> None:
    service.register("alice", PASSWORD, "Alice")
    service.register("bob", PASSWORD, "Bob")
    bobs_device = service.sign_in("bob", PASSWORD, "10.0.0.1").device_token
    for _ in range(30):
        fail(service, f"nobody{secrets.token_hex(4)}", "10.0.0.9")
    with pytest.raises(TooManyAttemptsError):
        service.sign_in("alice", PASSWORD, "10.0.0.9", bobs_device)


def test_username_wide_limit_spares_known_clients_and_devices(
    service: AccountService, clock: FakeClock
) -> None:
    service.register("alice", PASSWORD, "Alice")
    first = service.sign_in("alice", PASSWORD, "192.0.2.10")
    service.sign_in("alice", PASSWORD, "192.0.2.11")  # a known address, no device token
    clock.advance(hours=1)
    for n in range(20):  # a botnet: 20 addresses, one guess each
        fail(service, "alice", f"203.0.113.{n}")

    with pytest.raises(TooManyAttemptsError):  # a stranger meets the username-wide limit
        service.sign_in("alice", PASSWORD, "198.51.100.77")
    assert service.sign_in("alice", PASSWORD, "192.0.2.11").account.username == "alice"
    device = first.device_token
    assert service.sign_in("alice", PASSWORD, "198.51.100.77", device).account.username == "alice"


def test_backoff_of_one_pair_grows_and_says_when_to_retry(
    service: AccountService, clock: FakeClock
) -> None:
    service.register("alice", PASSWORD, "Alice")
    for _ in range(5):
        fail(service, "alice", "c")
    waits = []
    for _ in range(5):
        with pytest.raises(TooManyAttemptsError) as raised:
            service.sign_in("alice", PASSWORD, "c")
        waits.append(raised.value.retry_after_seconds)
        assert f"Try again in {waits[-1]} second" in str(raised.value)
        clock.advance(seconds=waits[-1])
        fail(service, "alice", "c")
    assert waits == [1, 2, 4, 8, 16]
    # The pair's wait is its own: the owner elsewhere is not slowed down.
    assert service.sign_in("alice", PASSWORD, "elsewhere").account.username == "alice"


def test_concurrent_burst_never_passes_more_than_the_limit(
    service: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.register("alice", PASSWORD, "Alice")
    checked: list[str] = []
    real = Argon2Hasher.verify_password

    def slow_verify(self: Argon2Hasher, stored: str, password: str) -> PasswordCheck:
        checked.append(password)
        time.sleep(0.05)  # widen the gap between the check and the record
        return real(self, stored, password)

    monkeypatch.setattr(Argon2Hasher, "verify_password", slow_verify)
    burst = 20
    start = threading.Barrier(burst)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            service.sign_in("alice", "wrong password", "203.0.113.5")
        except TooManyAttemptsError:
            outcomes.append("refused")
        except SignInError:
            outcomes.append("checked")

    threads = [threading.Thread(target=attempt) for _ in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == burst
    assert len(checked) == outcomes.count("checked") <= 5


def run_at_once(count: int, action: Callable[[int], str]) -> list[str]:
    """Run `action(0)` ... `action(count - 1)` on as many threads, released together."""
    start = threading.Barrier(count)
    outcomes: list[str] = []

    def run(number: int) -> None:
        start.wait()
        outcomes.append(action(number))

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == count
    return outcomes


def test_concurrent_registrations_never_pass_the_per_client_limit(
    service: AccountService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst from one client: at most `per_client` registrations reach hashing."""
    from sample_app.accounts import TooManyRegistrationsError

    real = Argon2Hasher.hash_password

    def slow_hash(self: Argon2Hasher, password: str) -> str:
        time.sleep(0.05)  # the burst is all in flight together
        return real(self, password)

    monkeypatch.setattr(Argon2Hasher, "hash_password", slow_hash)

    def register(number: int) -> str:
        try:
            service.register(f"burst{number}", PASSWORD, "Burst", client_key="198.51.100.7")
        except TooManyRegistrationsError:
            return "refused"
        return "created"

    outcomes = run_at_once(12, register)
    # Not "exactly 5": when every row is written before any is counted, all are refused
    # (each sees 11 others). Refusing too many under a burst is the safe side.
    assert outcomes.count("created") <= 5
    assert count_rows(engine, "accounts") == outcomes.count("created")
    assert count_rows(engine, "registration_attempts") == outcomes.count("created")


def test_concurrent_registrations_of_one_name_create_one_account(
    service: AccountService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index decides a real race; the losers are told the name is taken."""
    real = Argon2Hasher.hash_password

    def slow_hash(self: Argon2Hasher, password: str) -> str:
        time.sleep(0.05)  # every request passes the "is it taken?" check before any insert
        return real(self, password)

    monkeypatch.setattr(Argon2Hasher, "hash_password", slow_hash)

    def register(number: int) -> str:
        try:
            service.register("alice", PASSWORD, f"Alice {number}", client_key=f"192.0.2.{number}")
        except RegistrationError as error:
            assert error.field_errors == {"username": ["That username is taken."]}
            return "taken"
        return "created"

    outcomes = run_at_once(5, register)
    assert sorted(outcomes) == ["created"] + ["taken"] * 4
    assert count_rows(engine, "accounts") == 1


def test_registration_is_throttled_per_client_and_overall(
    service: AccountService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sample_app.accounts import TooManyRegistrationsError

    hashed: list[str] = []
    real = Argon2Hasher.hash_password

    def spy(self: Argon2Hasher, password: str) -> str:
        hashed.append(password)
        return real(self, password)

    monkeypatch.setattr(Argon2Hasher, "hash_password", spy)
    for n in range(5):
        service.register(f"user{n}", PASSWORD, "User", client_key="198.51.100.1")
    with pytest.raises(TooManyRegistrationsError) as raised:
        service.register("user5", PASSWORD, "User", client_key="198.51.100.1")
    assert raised.value.per_client
    assert str(raised.value) == "Too many new accounts from your network. Try again in 10 minutes."
    assert len(hashed) == 5  # refused before any hashing
    service.register("other", PASSWORD, "Other", client_key="198.51.100.2")
    clock.advance(minutes=10)
    service.register("user5", PASSWORD, "User", client_key="198.51.100.1")

    clock.advance(minutes=10)
    for n in range(30):
        service.register(f"crowd{n}", PASSWORD, "Crowd", client_key=f"203.0.113.{n}")
    with pytest.raises(TooManyRegistrationsError) as raised:
        service.register("late", PASSWORD, "Late", client_key="192.0.2.1")
    assert not raised.value.per_client
    assert "Try again in 1 minute" in str(raised.value)
    clock.advance(minutes=1)
    service.register("late", PASSWORD, "Late", client_key="192.0.2.1")


def test_database_errors_do_not_echo_parameters(engine: Engine) -> None:
    insert = sa.text(
        "INSERT INTO accounts (username, sendbird_key, display_name, password_hash, created_at)"
        " VALUES (:username, :key, :name, :hash, :at)"
    )
    values = {
        "username": "dup",
        "key": "k" * 20,
        "name": "Dup",
        "hash": "$argon2id$SECRET-HASH-VALUE",
        "at": "2026-01-01 00:00:00",
    }
    with engine.begin() as connection:
        connection.execute(insert, values)
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        connection.execute(insert, {**values, "key": "q" * 20})
    text = str(raised.value)
    assert "SECRET-HASH-VALUE" not in text
    assert "hidden due to hide_parameters" in text


def test_prune_keeps_what_makes_a_client_known(
    service: AccountService, engine: Engine, clock: FakeClock
) -> None:
    service.register("alice", PASSWORD, "Alice")
    service.sign_in("alice", PASSWORD, "home")
    fail(service, "alice", "x")
    clock.advance(days=1)
    counts = service.prune()
    assert counts.attempts == 1  # the failure; the success stays for 30 days
    clock.advance(days=30)
    assert service.prune().attempts == 1
    assert service.prune().devices == 0
    clock.advance(days=60)
    assert service.prune().devices == 1  # unused for over 90 days
