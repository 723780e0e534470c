"""AuthState under hostile users: device tokens, throttle messages, hashing off the default pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sample_app import routes
from sample_app.accounts import Argon2Hasher, PasswordCheck, SignInError
from sample_app.state.auth import AuthState
from tests.state.conftest import PASSWORD, StateHarness, redirect_target, run


@pytest.fixture(autouse=True)
def client_ip(monkeypatch: pytest.MonkeyPatch) -> str:
    """A harness tab has no IP; give every tab the same one, as behind one NAT."""
    monkeypatch.setattr(AuthState, "_client_key", lambda self: "203.0.113.7")
    return "203.0.113.7"


async def test_sign_in_keeps_a_device_token_and_sends_it_next_time(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    tab.register("alice")
    await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))
    device = tab.auth.device_token
    assert device

    seen: list[tuple[object, ...]] = []
    real = type(tab.accounts).sign_in

    def spy(service: object, *args: object) -> object:
        seen.append(args)
        return real(service, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(type(tab.accounts), "sign_in", spy)
    tab.auth.sign_in_token = ""  # signed out; the device token stays
    await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))
    assert seen and seen[-1][-1] == device
    assert tab.auth.device_token == device


async def test_device_token_lets_the_owner_in_from_an_attacked_address(tab: StateHarness) -> None:
    tab.register("alice")
    await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))
    tab.auth.sign_in_token = ""
    # The handler's client key: every failure below shares it with the owner's tab.
    client = tab.auth._client_key()
    for n in range(30):
        with pytest.raises(SignInError):
            tab.accounts.sign_in(f"nobody{n}", "wrong password!", client)
    for _ in range(6):
        with pytest.raises(SignInError):  # wrong, then throttled
            tab.accounts.sign_in("alice", "wrong password!", client)

    updates = await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))

    assert redirect_target(updates) == routes.CHAT
    assert tab.auth.form_error == ""


async def test_throttled_sign_in_says_when_to_retry(tab: StateHarness) -> None:
    tab.register("alice")
    for _ in range(5):
        await run(tab.auth.sign_in({"username": "alice", "password": "wrong password!"}))
    await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))
    assert tab.auth.form_error == "Too many failed sign-in attempts. Try again in 1 second."
    tab.clock.advance(seconds=1)
    updates = await run(tab.auth.sign_in({"username": "alice", "password": PASSWORD}))
    assert redirect_target(updates) == routes.CHAT


async def test_registration_refused_by_the_limit_says_so(tab: StateHarness) -> None:
    for n in range(6):
        form = {
            "username": f"newcomer{n}",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
            "display_name": "New Comer",
        }
        updates = await run(tab.auth.register(form))
        tab.auth.sign_in_token = ""
    assert redirect_target(updates) is None
    assert tab.auth.form_error == (
        "Too many new accounts from your network. Try again in 10 minutes."
    )
    assert tab.auth.field_errors == {}
    assert not tab.auth.submitting


async def test_token_requests_are_not_held_up_by_a_flood_of_hashing(
    tab: StateHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty sign-ins stuck in argon2 must not starve `resolve_sign_in` of threads."""
    token = tab.register("alice")
    release = threading.Event()
    real = Argon2Hasher.verify_password

    def stuck(self: Argon2Hasher, stored: str, password: str) -> PasswordCheck:
        release.wait(30)
        return real(self, stored, password)

    monkeypatch.setattr(Argon2Hasher, "verify_password", stuck)
    monkeypatch.setattr(Argon2Hasher, "burn_verify", lambda self, password: release.wait(30))
    flood = [
        asyncio.ensure_future(run(tab.auth.sign_in({"username": f"u{n}", "password": "x" * 12})))
        for n in range(40)
    ]
    await asyncio.sleep(0.2)
    try:
        account = await asyncio.wait_for(
            asyncio.to_thread(tab.accounts.resolve_sign_in, token), timeout=5
        )
        assert account is not None and account.username == "alice"
    finally:
        release.set()
        await asyncio.gather(*flood, return_exceptions=True)
