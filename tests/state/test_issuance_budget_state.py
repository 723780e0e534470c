"""One signed-in user flooding token events cannot spend everyone else's Sendbird budget.

The services here come from `build_services`, the app's own wiring from settings, so the
issuance budget is the one a deployment gets (only the HTTP transport is swapped for the
in-process sandbox). Two tabs share those services, as two browsers on one backend worker
do: the flooding user's and another user's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import reflex as rx

from sample_app import services as services_module
from sample_app.accounts import upgrade_database
from sample_app.config import load_settings
from sample_app.sandbox.control_client import AsyncSandboxControlClient
from sample_app.sendbird_api import RetryPolicy, SendbirdClient
from sample_app.services import Services, build_services, use_services
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import ChatSessionState
from sample_app.state.session_phase import SessionPhase
from tests.clock import FakeClock
from tests.state.conftest import APP_ID, BOT_ID, SANDBOX_TOKEN, StateHarness, run

FLOOD = 100
PER_USER_BUDGET = 10  # SENDBIRD_TOKENS_PER_USER_PER_MINUTE's default
REFUSAL = "Too many session tokens for this account; try again in"


@contextlib.asynccontextmanager
async def app_services(
    sandbox_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> AsyncIterator[tuple[Services, AsyncSandboxControlClient]]:
    """The app's services built from settings (`env` on top of the sandbox's ids).

    Only the Platform API client's transport differs from a deployment: `build_services`
    reaches the in-process sandbox instead of the network.
    """
    settings = load_settings(
        environ={
            "SANDBOX_APP_ID": APP_ID,
            "SANDBOX_BOT_ID": BOT_ID,
            "SANDBOX_API_TOKEN": SANDBOX_TOKEN,
            **env,
        },
        env_file=None,
    )
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    upgrade_database(url)
    with monkeypatch.context() as patch:
        patch.setattr(
            services_module,
            "SendbirdClient",
            functools.partial(
                SendbirdClient,
                transport=httpx.ASGITransport(app=sandbox_app),
                retry=RetryPolicy(max_retries=0),
            ),
        )
        services = build_services(settings, url)
    control = AsyncSandboxControlClient(
        settings.api_host, SANDBOX_TOKEN, transport=httpx.ASGITransport(app=sandbox_app)
    )
    try:
        with use_services(services):
            yield services, control
    finally:
        await control.aclose()
        await services.aclose()


def new_tab(services: Services, control: AsyncSandboxControlClient) -> StateHarness:
    """A fresh browser tab's state tree on `services` (one backend worker, many tabs)."""
    root = rx.State(_reflex_internal_init=True)
    auth = root.substates[AuthState.get_name()]
    chat = auth.substates[ChatSessionState.get_name()]
    assert isinstance(auth, AuthState) and isinstance(chat, ChatSessionState)
    return StateHarness(services, control, FakeClock(), auth, chat)


def errors(tab: StateHarness) -> list[str]:
    return [event["detail"] for event in tab.chat.timeline if event["kind"] == "error"]


async def test_a_token_request_flood_mints_at_most_the_users_budget(
    sandbox_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reuse off: every request would mint, so the per-user limit is what stops the flood.
    async with app_services(
        sandbox_app, tmp_path, monkeypatch, SENDBIRD_TOKEN_REUSE_SECONDS="0"
    ) as wired:
        services, control = wired
        alice = new_tab(services, control)
        await alice.open_chat("alice")
        alice_id = alice.chat.sendbird_user_id

        for request_id in range(FLOOD):
            await run(alice.chat.answer_token_request(request_id))

        assert await alice.issued(alice_id) <= PER_USER_BUDGET
        chat = alice.chat
        assert chat.token_reply["request_id"] == FLOOD - 1
        assert chat.token_reply["token"] == ""
        assert chat.token_reply["error"].startswith(REFUSAL)
        assert chat.last_error.startswith(REFUSAL)
        assert chat.phase == SessionPhase.REFRESH_FAILED
        assert services.tokens.stats.refused >= FLOOD - PER_USER_BUDGET


async def test_another_user_gets_a_first_token_while_one_floods(
    sandbox_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_services(
        sandbox_app, tmp_path, monkeypatch, SENDBIRD_TOKEN_REUSE_SECONDS="0"
    ) as wired:
        services, control = wired
        # The sandbox answers like a Sendbird free trial: 5 POSTs per second, then 429.
        await control.set_rate_limits({"POST": 5})
        alice, bob = new_tab(services, control), new_tab(services, control)
        await alice.open_chat("alice")
        bob.sign_in_tab("bob")
        flooding = asyncio.Event()

        async def flood() -> None:
            for request_id in range(FLOOD):
                if request_id == 3:
                    flooding.set()
                await run(alice.chat.answer_token_request(request_id))
                await run(alice.chat.reconnect())

        async def bob_opens_the_chat() -> None:
            await flooding.wait()
            await run(bob.chat.open_chat())

        await asyncio.gather(flood(), bob_opens_the_chat())

        assert bob.chat.last_error == ""
        assert bob.chat.widget_visible
        assert bob.chat.phase == SessionPhase.CONNECTING
        assert await bob.issued(bob.chat.sendbird_user_id) == 1
        assert await alice.issued(alice.chat.sendbird_user_id) <= PER_USER_BUDGET
        # Alice was refused by her own budget, never by Sendbird's rate limit.
        assert errors(alice)
        assert all(REFUSAL in detail for detail in errors(alice)), errors(alice)


@pytest.mark.parametrize("event", ["answer_token_request", "reconnect"])
async def test_a_flood_of_refreshes_shares_one_new_token(
    sandbox_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, event: str
) -> None:
    async with app_services(sandbox_app, tmp_path, monkeypatch) as (
        services,
        control,
    ):  # the defaults
        alice = new_tab(services, control)
        await alice.open_chat("alice")
        page_view = await alice.issued(alice.chat.sendbird_user_id)

        for request_id in range(FLOOD):
            if event == "answer_token_request":
                await run(alice.chat.answer_token_request(request_id))
                assert alice.chat.token_reply["token"] == alice.chat.session_token
            else:
                await run(alice.chat.reconnect())

        # The first refresh replaced the page view's token; the other 99 got that one. Tokens
        # are JWTs that repeat within one expiry second, so count issuances, not strings.
        assert page_view == 1
        assert await alice.issued(alice.chat.sendbird_user_id) == 2
        assert alice.chat.session_token
        assert alice.chat.last_error == ""
        assert services.tokens.stats.reused_young == FLOOD - 1
