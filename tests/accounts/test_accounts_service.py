"""Registration, sign-in and sign-in tokens of `AccountService` against a real SQLite file."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone

import argon2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from sample_app.accounts import (
    Account,
    AccountService,
    AccountView,
    Argon2Hasher,
    RegistrationError,
    ResolvedSignIn,
    SignedIn,
    SignInError,
    SignInSession,
    hash_sign_in_token,
    is_plausible_token,
)
from tests.accounts.helpers import PASSWORD, count_rows
from tests.clock import START, FakeClock


def register_alice(service: AccountService) -> AccountView:
    return service.register("Alice", PASSWORD, "Alice Example", "https://example.com/a.png")


# -- registration ------------------------------------------------------------------------


def test_register_returns_the_public_view_and_stores_a_hash(
    service: AccountService, engine: Engine
) -> None:
    view = register_alice(service)
    assert view == AccountView(
        id=view.id,
        username="alice",
        display_name="Alice Example",
        profile_url="https://example.com/a.png",
        sendbird_key=view.sendbird_key,
    )
    with Session(engine) as session:
        account = session.get(Account, view.id)
        assert account is not None
        assert account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash
        assert account.created_at == START
        assert account.disabled_at is None


def test_register_without_profile_url(service: AccountService, engine: Engine) -> None:
    view = service.register("bob", PASSWORD, "  Bob   Example ")
    assert (view.display_name, view.profile_url) == ("Bob Example", "")
    with Session(engine) as session:
        account = session.get(Account, view.id)
        assert account is not None
        assert account.profile_url is None


@pytest.mark.parametrize(
    "duplicate", ["alice", "ALICE", " Alice ", "\uff41\uff4c\uff49\uff43\uff45"]
)
def test_duplicate_username_is_taken_case_insensitively(
    service: AccountService, engine: Engine, duplicate: str
) -> None:
    register_alice(service)
    with pytest.raises(RegistrationError) as raised:
        service.register(duplicate, "another good one", "Someone Else")
    assert raised.value.field_errors == {"username": ["That username is taken."]}
    assert count_rows(engine, "accounts") == 1


def test_every_problem_is_reported_at_once_and_nothing_is_created(
    service: AccountService, engine: Engine
) -> None:
    with pytest.raises(RegistrationError) as raised:
        service.register("_x", "short", "bad\x00name", "javascript:alert(1)")
    assert raised.value.field_errors == {
        "username": [
            "Username must be 3 to 32 characters: letters, digits, '.', '_' or '-'.",
            "Username must start with a letter or a digit.",
        ],
        "password": ["Password must be at least 10 characters long."],
        "display_name": ["Display name must not contain control or invisible characters."],
        "profile_url": ["Profile URL must start with http:// or https://."],
    }
    assert "Username must be 3 to 32" in str(raised.value)
    assert count_rows(engine, "accounts") == 0


def test_taken_username_is_reported_with_other_problems(service: AccountService) -> None:
    register_alice(service)
    with pytest.raises(RegistrationError) as raised:
        service.register("alice", "alice-rocks-2026", "")
    assert raised.value.field_errors == {
        "username": ["That username is taken."],
        "password": ["Password must not contain your username."],
        "display_name": ["Enter a display name."],
    }


def test_concurrent_registration_of_the_same_name_becomes_taken(
    service: AccountService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index catches the race the pre-check cannot; nothing half-created."""
    register_alice(service)
    checks: list[str] = []

    def blind_first_check(session: Session, username: str) -> bool:
        checks.append(username)
        if len(checks) == 1:
            return False  # the other request's row is not visible yet
        return (
            session.exec(select(Account.id).where(Account.username == username)).first() is not None
        )

    monkeypatch.setattr(AccountService, "_username_taken", staticmethod(blind_first_check))
    with pytest.raises(RegistrationError) as raised:
        service.register("alice", "another good one", "Alice Twin")
    assert raised.value.field_errors == {"username": ["That username is taken."]}
    assert checks == ["alice", "alice"]
    assert count_rows(engine, "accounts") == 1
    with Session(engine) as session:
        assert session.exec(select(Account.display_name)).all() == ["Alice Example"]


def test_other_integrity_errors_are_not_disguised_as_taken(
    service: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def commit_fails(self: Session) -> None:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("CHECK constraint failed"))

    monkeypatch.setattr(Session, "commit", commit_fails)
    with pytest.raises(sa.exc.IntegrityError):
        register_alice(service)


# -- sign-in -----------------------------------------------------------------------------


def test_sign_in_returns_a_token_that_resolves(service: AccountService, engine: Engine) -> None:
    view = register_alice(service)
    signed_in = service.sign_in("  ALICE ", PASSWORD, "203.0.113.7")
    assert signed_in.account == view
    assert signed_in.expires_at == START + timedelta(hours=12)
    assert len(signed_in.sign_in_token) >= 43
    assert service.resolve_sign_in(signed_in.sign_in_token) == view
    # Only the hash is stored; the token itself is nowhere in the database.
    with Session(engine) as session:
        stored = session.exec(select(SignInSession)).one()
    assert stored.token_hash == hash_sign_in_token(signed_in.sign_in_token)
    assert signed_in.sign_in_token not in stored.token_hash
    assert signed_in.sign_in_token not in repr(signed_in)


def test_each_sign_in_gets_its_own_token(service: AccountService) -> None:
    register_alice(service)
    first = service.sign_in("alice", PASSWORD, "c1")
    second = service.sign_in("alice", PASSWORD, "c2")
    assert first.sign_in_token != second.sign_in_token
    assert service.resolve_sign_in(first.sign_in_token) is not None
    assert service.resolve_sign_in(second.sign_in_token) is not None


def test_wrong_password_and_unknown_user_get_the_same_message(service: AccountService) -> None:
    register_alice(service)
    with pytest.raises(SignInError) as wrong_password:
        service.sign_in("alice", "not the password", "c")
    with pytest.raises(SignInError) as unknown_user:
        service.sign_in("mallory", PASSWORD, "c")
    with pytest.raises(SignInError) as empty:
        service.sign_in("", "", "c")
    assert str(wrong_password.value) == str(unknown_user.value) == str(empty.value)
    assert str(wrong_password.value) == "Wrong username or password."
    assert wrong_password.value.message == "Wrong username or password."


def test_unknown_user_costs_a_password_verification(
    service: AccountService, verified_passwords: list[str]
) -> None:
    """Timing must not tell unknown usernames from wrong passwords."""
    register_alice(service)
    for username in ("alice", "mallory", "!!invalid!!"):
        with pytest.raises(SignInError):
            service.sign_in(username, "guess-1234", "c")
    assert verified_passwords == ["guess-1234"] * 3


def test_huge_password_is_refused_without_hashing_all_of_it(service: AccountService) -> None:
    register_alice(service)
    with pytest.raises(SignInError, match="Wrong username or password"):
        service.sign_in("alice", PASSWORD + "x" * 100_000, "c")


def test_sign_in_upgrades_a_hash_made_with_old_parameters(
    engine: Engine, hasher: Argon2Hasher, clock: FakeClock
) -> None:
    AccountService(engine, hasher=hasher, clock=clock).register("alice", PASSWORD, "Alice")
    stronger = Argon2Hasher(dataclasses.replace(argon2.profiles.CHEAPEST, time_cost=2))
    service = AccountService(engine, hasher=stronger, clock=clock)
    service.sign_in("alice", PASSWORD, "c")
    with Session(engine) as session:
        stored = session.exec(select(Account.password_hash)).one()
    assert "t=2" in stored
    assert not stronger.needs_rehash(stored)
    assert service.sign_in("alice", PASSWORD, "c").account.username == "alice"


def test_disabled_account_cannot_sign_in_and_its_tokens_stop_resolving(
    service: AccountService, engine: Engine
) -> None:
    """An operator disables an account by setting `accounts.disabled_at`."""
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "c")
    with engine.begin() as connection:
        connection.execute(
            sa.update(Account).where(col(Account.id) == view.id).values(disabled_at=START)
        )
    assert service.resolve_sign_in(signed_in.sign_in_token) is None
    with pytest.raises(SignInError, match="disabled"):
        service.sign_in("alice", PASSWORD, "c")
    with pytest.raises(SignInError, match="Wrong username or password"):
        service.sign_in("alice", "wrong password!", "c")


# -- sign-in tokens ---------------------------------------------------------------------


def test_sign_in_expires_after_its_ttl(service: AccountService, clock: FakeClock) -> None:
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "c")
    clock.advance(hours=11, minutes=59, seconds=59)
    assert service.resolve_sign_in(signed_in.sign_in_token) == view
    clock.advance(seconds=1)
    assert service.resolve_sign_in(signed_in.sign_in_token) is None


def test_a_resolved_sign_in_says_when_it_ends(service: AccountService, clock: FakeClock) -> None:
    """What the sign-in cache needs: the account, the sign-in's end, and the service's time."""
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "1.2.3.4")
    clock.advance(hours=1)

    resolved = service.resolve_sign_in_session(signed_in.sign_in_token)

    assert resolved == ResolvedSignIn(view, signed_in.expires_at)
    assert resolved.expires_at == START + timedelta(hours=12)
    assert resolved.expires_at.tzinfo is not None
    assert service.now() == START + timedelta(hours=1)
    clock.advance(hours=11)
    assert service.resolve_sign_in_session(signed_in.sign_in_token) is None


def test_a_revoked_or_unknown_sign_in_session_resolves_to_nobody(service: AccountService) -> None:
    register_alice(service)
    token = service.sign_in("alice", PASSWORD, "1.2.3.4").sign_in_token
    service.sign_out(token)

    assert service.resolve_sign_in_session(token) is None
    assert service.resolve_sign_in_session("x" * 43) is None


@pytest.mark.parametrize(
    ("value", "plausible"),
    [
        ("x" * 43, True),
        ("x" * 32, True),
        ("x" * 128, True),
        ("x" * 31, False),
        ("x" * 129, False),
        ("", False),
        (None, False),
        (b"x" * 43, False),
    ],
)
def test_only_token_shaped_values_are_plausible(value: object, plausible: bool) -> None:
    assert is_plausible_token(value) is plausible


def test_signed_out_token_cannot_be_replayed(service: AccountService) -> None:
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "c")
    other = service.sign_in("alice", PASSWORD, "c")
    assert service.sign_out(signed_in.sign_in_token) == view
    assert service.resolve_sign_in(signed_in.sign_in_token) is None
    assert service.sign_out(signed_in.sign_in_token) is None  # already revoked
    assert service.resolve_sign_in(other.sign_in_token) == view  # other browsers unaffected


def test_sign_out_of_an_expired_sign_in_still_reports_the_owner(
    service: AccountService, clock: FakeClock
) -> None:
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "c")
    clock.advance(hours=13)
    assert service.sign_out(signed_in.sign_in_token) == view


def test_sign_out_everywhere(service: AccountService) -> None:
    alice = register_alice(service)
    service.register("bob", PASSWORD, "Bob")
    tokens = [service.sign_in("alice", PASSWORD, "c").sign_in_token for _ in range(3)]
    bobs = service.sign_in("bob", PASSWORD, "c").sign_in_token
    assert service.sign_out_everywhere(alice.id) == 3
    assert all(service.resolve_sign_in(token) is None for token in tokens)
    assert service.resolve_sign_in(bobs) is not None
    assert service.sign_out_everywhere(alice.id) == 0


@pytest.mark.parametrize("token", ["", "x", "a" * 43, "a" * 5000, None, 42])
def test_unknown_or_malformed_tokens_resolve_to_nobody(
    service: AccountService, token: object
) -> None:
    register_alice(service)
    service.sign_in("alice", PASSWORD, "c")
    assert service.resolve_sign_in(token) is None  # type: ignore[arg-type]
    assert service.sign_out(token) is None  # type: ignore[arg-type]


def test_deleted_account_tokens_do_not_resolve(service: AccountService, engine: Engine) -> None:
    view = register_alice(service)
    signed_in = service.sign_in("alice", PASSWORD, "c")
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM accounts WHERE id = :id"), {"id": view.id})
    assert service.resolve_sign_in(signed_in.sign_in_token) is None
    assert count_rows(engine, "auth_sessions") == 0  # ON DELETE CASCADE


def test_last_seen_is_written_at_most_once_a_minute(
    service: AccountService, engine: Engine, clock: FakeClock
) -> None:
    register_alice(service)
    token = service.sign_in("alice", PASSWORD, "c").sign_in_token

    def last_seen() -> datetime:
        with Session(engine) as session:
            return session.exec(select(SignInSession.last_seen_at)).one()

    clock.advance(seconds=59)
    service.resolve_sign_in(token)
    assert last_seen() == START
    clock.advance(seconds=1)
    service.resolve_sign_in(token)
    assert last_seen() == START + timedelta(minutes=1)
    clock.advance(seconds=30)
    service.resolve_sign_in(token)
    assert last_seen() == START + timedelta(minutes=1)


def test_clock_in_another_time_zone_is_converted_to_utc(
    engine: Engine, hasher: Argon2Hasher
) -> None:
    tokyo = timezone(timedelta(hours=9))
    service = AccountService(engine, hasher=hasher, clock=lambda: START.astimezone(tokyo))
    service.register("alice", PASSWORD, "Alice")
    signed_in = service.sign_in("alice", PASSWORD, "c")
    assert signed_in.expires_at == START + timedelta(hours=12)
    assert signed_in.expires_at.tzinfo is UTC


def test_naive_clock_is_refused(engine: Engine, hasher: Argon2Hasher) -> None:
    service = AccountService(engine, hasher=hasher, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        service.register("alice", PASSWORD, "Alice")


def test_service_works_on_an_in_memory_database(hasher: Argon2Hasher, clock: FakeClock) -> None:
    from sample_app.accounts import create_engine_for, upgrade_database

    engine = create_engine_for("sqlite://")
    try:
        upgrade_database(engine)
        service = AccountService(engine, hasher=hasher, clock=clock)
        view = service.register("alice", PASSWORD, "Alice")
        signed_in = service.sign_in("alice", PASSWORD, "c")
        assert isinstance(signed_in, SignedIn)
        assert service.resolve_sign_in(signed_in.sign_in_token) == view
    finally:
        engine.dispose()


def test_ended_sign_ins_are_pruned_a_day_after_they_ended(
    service: AccountService, engine: Engine, clock: FakeClock
) -> None:
    register_alice(service)
    service.sign_in("alice", PASSWORD, "c")  # expires at +12h
    revoked = service.sign_in("alice", PASSWORD, "c").sign_in_token
    service.sign_out(revoked)  # ended at +0h
    clock.advance(hours=12)
    live = service.sign_in("alice", PASSWORD, "c").sign_in_token  # expires at +24h
    assert service.prune().sessions == 0
    clock.advance(hours=12, seconds=1)
    assert service.prune().sessions == 1  # the revoked one
    clock.advance(hours=12)
    assert service.prune().sessions == 1  # the one that expired at +12h
    assert count_rows(engine, "auth_sessions") == 1
    with Session(engine) as session:
        remaining = session.exec(select(SignInSession.token_hash)).one()
    assert remaining == hash_sign_in_token(live)


def test_registration_error_survives_pickle() -> None:
    error = RegistrationError({"username": ["That username is taken."], "password": ["Too short."]})
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert copy.field_errors == error.field_errors
    assert str(copy) == str(error) == "That username is taken. Too short."
