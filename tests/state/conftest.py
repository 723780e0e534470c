"""Reflex handlers called directly, against the in-process sandbox and a real accounts DB.

Each test gets a `StateHarness`: a fresh Reflex state tree (what one browser tab holds),
`Services` installed with `use_services` (a `SendbirdClient` and the sandbox's control
client talking to the sandbox's ASGI app in this process, an `AccountService` on a
migrated SQLite file with cheap argon2 and a fake clock), and helpers to sign in as a
second browser would. The browser tier proves the same paths end to end; these tests pin
every handler's decisions (signed out, sign-in expired or revoked, another account in the
tab, Sendbird failing, success) in milliseconds.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
import reflex as rx

from sample_app.accounts import AccountService, Argon2Hasher, create_engine_for, upgrade_database
from sample_app.config import Settings, load_settings
from sample_app.sandbox import SandboxConfig, create_sandbox_app
from sample_app.sandbox.control_client import AsyncSandboxControlClient
from sample_app.sendbird_api import RetryPolicy, SendbirdClient
from sample_app.services import Services, use_services
from sample_app.session_tokens import SessionTokenService
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import ChatSessionState
from tests.clock import FakeClock

APP_ID = "unit-app"
BOT_ID = "unit-bot"
SANDBOX_TOKEN = "unit-sandbox-api-token-0123456789"
PASSWORD = "correct horse battery"
SIGN_IN_TTL = timedelta(hours=12)


async def run(result: Any) -> list[Any]:
    """Run what a handler returned (a value, a coroutine or an async generator) to the end.

    Returns:
        What it yielded or returned, without the bare `None`s that only push state.
    """
    if inspect.isasyncgen(result):
        updates = [update async for update in result]
    elif inspect.isawaitable(result):
        updates = [await result]
    else:
        updates = [result]
    return [update for update in updates if update is not None]


def _is_event(update: Any, like: rx.event.EventSpec) -> bool:
    """Whether `update` is an event spec of the same built-in event as `like`."""
    return (
        isinstance(update, rx.event.EventSpec)
        and update.handler.fn.__qualname__ == like.handler.fn.__qualname__
    )


def redirect_target(updates: list[Any]) -> str | None:
    """The path of the first `rx.redirect` among a handler's updates, if any."""
    for update in updates:
        if _is_event(update, rx.redirect("/")):
            for name, value in update.args:
                if str(name) == "path":
                    return str(value).strip('"')
    return None


def has_toast(updates: list[Any]) -> bool:
    """Whether a handler showed a toast (`rx.toast`)."""
    return any(
        isinstance(update, rx.event.EventSpec) and "toast" in str(update.args) for update in updates
    )


def has_script(updates: list[Any]) -> bool:
    """Whether a handler sent JavaScript to run in the browser (`rx.call_script`)."""
    return any(_is_event(update, rx.call_script("")) for update in updates)


@dataclass
class StateHarness:
    """One browser tab's state tree, wired to the in-process sandbox."""

    services: Services
    control: AsyncSandboxControlClient
    clock: FakeClock
    auth: AuthState
    chat: ChatSessionState

    @property
    def accounts(self) -> AccountService:
        """The accounts service the handlers use."""
        return self.services.accounts

    def register(self, username: str, display_name: str = "") -> str:
        """Create an account and return a fresh sign-in token for it (another browser)."""
        self.accounts.register(username, PASSWORD, display_name or username.title())
        return self.accounts.sign_in(username, PASSWORD, "other-browser").sign_in_token

    def sign_in_tab(self, username: str, display_name: str = "") -> str:
        """Register `username` and put its sign-in token into this tab's browser storage."""
        token = self.register(username, display_name)
        self.auth.sign_in_token = token
        return token

    async def open_chat(self, username: str = "alice") -> list[Any]:
        """Sign this tab in as `username` and run the chat page's on_load."""
        self.sign_in_tab(username)
        return await run(self.chat.open_chat())

    async def issued(self, user_id: str) -> int:
        """How many session tokens the sandbox has issued for `user_id`."""
        return len(await self.control.tokens(user_id))


def _settings() -> Settings:
    return load_settings(
        environ={
            "SANDBOX_APP_ID": APP_ID,
            "SANDBOX_BOT_ID": BOT_ID,
            "SANDBOX_API_TOKEN": SANDBOX_TOKEN,
        },
        env_file=None,
    )


@pytest.fixture
def hasher() -> Argon2Hasher:
    """argon2id at its cheapest cost: microseconds per hash."""
    return Argon2Hasher(argon2.profiles.CHEAPEST)


@pytest.fixture
async def sandbox_app() -> AsyncIterator[Any]:
    """The in-process sandbox (an ASGI app with an in-memory store), shut down afterwards."""
    app = create_sandbox_app(
        SandboxConfig(app_id=APP_ID, bot_id=BOT_ID, api_token=SANDBOX_TOKEN, db_path=":memory:")
    )
    yield app
    await app.state.sandbox.shutdown()


@contextlib.asynccontextmanager
async def harness_on(
    sandbox_app: Any, db_path: Path, hasher: Argon2Hasher
) -> AsyncIterator[StateHarness]:
    """A fresh tab of a deployment whose accounts database is `db_path`, on `sandbox_app`.

    Two harnesses on one sandbox with different database files are what a recreated (or
    moved) accounts database looks like to a Sendbird application that outlives it.
    The services are not installed: wrap handler calls in `use_services(h.services)`.
    """
    settings = _settings()
    assert settings.is_sandbox
    transport = httpx.ASGITransport(app=sandbox_app)
    sendbird = SendbirdClient(
        settings.api_host,
        SANDBOX_TOKEN,
        transport=transport,
        retry=RetryPolicy(max_retries=0),
    )
    control = AsyncSandboxControlClient(settings.api_host, SANDBOX_TOKEN, transport=transport)
    engine = create_engine_for(f"sqlite:///{db_path}")
    upgrade_database(engine)
    clock = FakeClock()
    accounts = AccountService(engine, hasher=hasher, clock=clock, session_ttl=SIGN_IN_TTL)
    services = Services(settings, sendbird, SessionTokenService(sendbird), accounts, control)
    root = rx.State(_reflex_internal_init=True)
    auth = root.substates[AuthState.get_name()]
    chat = auth.substates[ChatSessionState.get_name()]
    assert isinstance(auth, AuthState) and isinstance(chat, ChatSessionState)
    try:
        yield StateHarness(services, control, clock, auth, chat)
    finally:
        await services.aclose()
        engine.dispose()


@pytest.fixture
async def tab(
    tmp_path: Path, hasher: Argon2Hasher, sandbox_app: Any
) -> AsyncIterator[StateHarness]:
    """A fresh tab, with the services installed for the duration of the test."""
    async with harness_on(sandbox_app, tmp_path / "accounts.db", hasher) as harness:
        with use_services(harness.services):
            yield harness
