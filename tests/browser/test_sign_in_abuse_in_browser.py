"""An attacker on the owner's own address cannot lock her out of the browser she uses."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from sample_app.services import database_url
from sample_app.state.auth import DEVICE_TOKEN_STORAGE_KEY, AuthState
from tests.browser.helpers import PASSWORD, register, sign_in, sign_out, unique_username
from tests.browser.reflex_socket import ReflexSocket, run_outside_playwright

SIGN_IN_EVENT = f"{AuthState.get_full_name()}.sign_in"
DEVICE_KEY = json.dumps(DEVICE_TOKEN_STORAGE_KEY)  # as a JS string literal
ADDRESS = "127.0.0.1"  # every browser test's, the attacker's and alice's alike
FAILURES = 30 + 6  # over the per-address limit, and past alice's pair backoff


def _failures_from_address(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT count(*) FROM sign_in_attempts WHERE client_key = :ip AND NOT succeeded"
            ),
            {"ip": ADDRESS},
        ).scalar_one()


def test_attacker_on_the_same_address_cannot_lock_alice_out(
    page: Page, browser: Browser, app: object, backend_url: str
) -> None:
    alice = unique_username("alice")
    register(page, alice, "Alice Owner")
    sign_out(page)
    engine = sa.create_engine(database_url())
    before = _failures_from_address(engine)

    async def attack() -> None:
        async with ReflexSocket(backend_url) as socket:
            for n in range(FAILURES):
                username = f"stuffed{n}x{time.time_ns()}" if n < 30 else alice
                form = {"username": username, "password": "not-her-password-1"}
                await socket.send_event(SIGN_IN_EVENT, {"form_data": form})
            await socket.collect(3)

    try:
        run_outside_playwright(attack())
        deadline = time.monotonic() + 60
        while _failures_from_address(engine) - before < 30 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _failures_from_address(engine) - before >= 30

        # A browser that never signed in as alice, on the same address, is refused...
        stranger = browser.new_context(base_url=app.frontend_url)  # type: ignore[attr-defined]
        try:
            other = stranger.new_page()
            other.goto("/sign-in")
            other.get_by_label("Username").fill(alice)
            other.get_by_label("Password").fill(PASSWORD)
            other.get_by_role("button", name="Sign in").click()
            expect(other.get_by_text("Too many failed sign-in attempts")).to_be_visible()
        finally:
            stranger.close()

        # ...but alice's own browser, holding its device token, gets in and reaches the chat.
        assert page.evaluate(f"() => localStorage.getItem({DEVICE_KEY})")
        sign_in(page, alice)
        expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    finally:
        # Leave the shared deployment's address unthrottled for the tests that follow.
        with engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM sign_in_attempts WHERE client_key = :ip AND NOT succeeded"),
                {"ip": ADDRESS},
            )
        engine.dispose()
