"""The sign-in cache under the real handlers: token refreshes skip the database, and no
sign-out, sign-out everywhere or expiry lets one more token through.

The sign-in lookups are counted at the accounts engine; the sandbox's list of issued tokens
proves what a refusal did not issue.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import reflex as rx

from sample_app.signed_in import resolve_signed_in_user
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import SIGNED_OUT_REPLY, ChatSessionState
from tests.sign_in_lookups import SignInLookups
from tests.state.conftest import PASSWORD, SIGN_IN_TTL, StateHarness, run


@pytest.fixture
def lookups(tab: StateHarness) -> Iterator[SignInLookups]:
    counter = SignInLookups(tab.accounts.engine)
    yield counter
    counter.stop()


def another_tab(sign_in_token: str) -> ChatSessionState:
    """Another tab (its own state tree) holding `sign_in_token` in its browser's storage."""
    root = rx.State(_reflex_internal_init=True)
    chat = root.substates[AuthState.get_name()].substates[ChatSessionState.get_name()]
    assert isinstance(chat, ChatSessionState)
    chat.sign_in_token = sign_in_token
    return chat


async def test_token_refreshes_of_a_checked_sign_in_skip_the_database(
    tab: StateHarness, lookups: SignInLookups
) -> None:
    await tab.open_chat("alice")
    after_open = lookups.count

    for request_id in range(1, 4):
        await run(tab.chat.answer_token_request(request_id))
        assert tab.chat.token_reply["token"]

    assert after_open == 1  # the first check; the one after issuing found it kept
    assert lookups.count == after_open
    assert await tab.issued(tab.chat.sendbird_user_id) == 4


async def test_a_sign_out_in_another_tab_refuses_this_tabs_next_request(
    tab: StateHarness,
) -> None:
    """Tab B's sign-in is kept by the cache; tab A signs out; B's next refresh gets nothing.

    Tab B still holds the sign-in token (its localStorage sync has not arrived): only the
    server's view of the sign-in can refuse it.
    """
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    tab_b = another_tab(tab.auth.sign_in_token)
    await run(tab_b.open_chat())
    await run(tab_b.answer_token_request(1))
    assert tab_b.token_reply["token"]

    await run(tab.auth.sign_out())
    issued = len(await tab.control.tokens(user_id))
    await run(tab_b.answer_token_request(2))

    assert tab_b.token_reply == {"request_id": 2, "token": "", "error": SIGNED_OUT_REPLY}
    assert tab_b.sign_in_token == ""
    assert len(await tab.control.tokens(user_id)) == issued


async def test_a_sign_out_everywhere_refuses_another_browsers_next_request(
    tab: StateHarness,
) -> None:
    await tab.open_chat("alice")
    user_id = tab.chat.sendbird_user_id
    laptop = another_tab(tab.accounts.sign_in("alice", PASSWORD, "laptop").sign_in_token)
    await run(laptop.open_chat())
    await run(laptop.answer_token_request(1))
    assert laptop.token_reply["token"]

    await run(tab.auth.sign_out_everywhere())
    issued = len(await tab.control.tokens(user_id))
    await run(laptop.answer_token_request(2))

    assert laptop.token_reply["error"] == SIGNED_OUT_REPLY
    assert len(await tab.control.tokens(user_id)) == issued


async def test_a_kept_sign_in_stops_at_the_sign_ins_expiry(tab: StateHarness) -> None:
    """Kept five seconds before its sign-in expires, it answers for those five seconds only."""
    await tab.open_chat("alice")
    tab.clock.advance(seconds=SIGN_IN_TTL.total_seconds() - 5)
    await run(tab.chat.answer_token_request(1))  # checked in the database, kept
    assert tab.chat.token_reply["token"]
    tab.clock.advance(seconds=4)
    await run(tab.chat.answer_token_request(2))  # still kept
    assert tab.chat.token_reply["token"]

    tab.clock.advance(seconds=1)
    await run(tab.chat.answer_token_request(3))

    assert tab.chat.token_reply == {"request_id": 3, "token": "", "error": SIGNED_OUT_REPLY}
    assert await tab.issued(tab.chat.sendbird_user_id) == 3


async def test_a_kept_sign_in_is_checked_in_the_database_again_after_the_ttl(
    tab: StateHarness, lookups: SignInLookups
) -> None:
    await tab.open_chat("alice")
    before = lookups.count

    tab.clock.advance(seconds=tab.services.sign_ins.ttl.total_seconds())
    await run(tab.chat.answer_token_request(1))

    assert tab.chat.token_reply["token"]
    assert lookups.count == before + 1


async def test_sign_out_clears_the_cache_before_the_session_tokens_are_revoked(
    tab: StateHarness,
) -> None:
    """While the Sendbird tokens are being revoked, no check may find the sign-in kept."""
    await tab.open_chat("alice")
    token = tab.auth.sign_in_token
    assert await resolve_signed_in_user(token) is not None  # kept
    tokens = tab.services.tokens
    revoke = tokens.revoke
    seen: list[object] = []

    async def revoke_and_observe(user_id: str) -> None:
        seen.append(await resolve_signed_in_user(token))
        await revoke(user_id)

    tokens.revoke = revoke_and_observe  # type: ignore[method-assign]

    await run(tab.auth.sign_out())

    assert seen == [None]
