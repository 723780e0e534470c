"""SendbirdClient against real Sendbird (skipped without credentials; see conftest.py).

Each run creates one user named `live-test-<random>`. The client has no delete call (the
app never deletes users), so the user stays in the application; its tokens are revoked.
Clean such users up from the Dashboard or with `DELETE /v3/users/{user_id}` now and then.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from sample_app.sendbird_api import (
    SendbirdAuthError,
    SendbirdClient,
    SendbirdNotFoundError,
)

if TYPE_CHECKING:
    from tests.live.conftest import LiveTarget

USER_PREFIX = "live-test-"


def unique_user_id() -> str:
    return f"{USER_PREFIX}{secrets.token_hex(8)}"


async def test_user_token_lifecycle(sendbird: SendbirdClient) -> None:
    user_id = unique_user_id()

    created = await sendbird.ensure_user(user_id, "Live Test")
    assert created.user_id == user_id
    assert created.nickname == "Live Test"
    again = await sendbird.ensure_user(user_id, "Another Name")  # idempotent, no rename
    assert again.user_id == user_id
    assert again.nickname == "Live Test"
    fetched = await sendbird.get_user(user_id)
    assert fetched is not None
    assert fetched.user_id == user_id

    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    issued = await sendbird.issue_session_token(user_id, expires_at)
    assert issued.token
    assert issued.token not in repr(issued)
    # Sendbird grants the requested expiry (sent and returned as Unix milliseconds).
    assert abs(issued.expires_at - expires_at) <= timedelta(seconds=1), issued.expires_at
    assert issued.expires_at.tzinfo is not None

    second = await sendbird.issue_session_token(user_id, expires_at)
    assert second.token != issued.token

    await sendbird.revoke_session_tokens(user_id)
    await sendbird.revoke_session_tokens(user_id)  # nothing left to revoke: still fine
    # The user is left in place: SendbirdClient has no delete (see the module docstring).


async def test_get_user_of_a_missing_id_returns_none(sendbird: SendbirdClient) -> None:
    assert await sendbird.get_user(unique_user_id()) is None


async def test_session_token_for_a_missing_user_is_not_found(sendbird: SendbirdClient) -> None:
    with pytest.raises(SendbirdNotFoundError):
        await sendbird.issue_session_token(
            unique_user_id(), datetime.now(UTC) + timedelta(minutes=5)
        )


async def test_wrong_api_token_is_an_auth_error(live_target: LiveTarget) -> None:
    wrong = secrets.token_hex(20)
    assert wrong != live_target.api_token

    async with live_target.client(api_token=wrong) as client:
        with pytest.raises(SendbirdAuthError) as caught:
            await client.get_user(unique_user_id())

    assert not isinstance(caught.value, SendbirdNotFoundError)
    assert wrong not in str(caught.value)
    assert live_target.api_token not in str(caught.value)
