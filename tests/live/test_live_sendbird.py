"""The app's Sendbird side against real Sendbird (skipped without credentials; see conftest.py).

Run with `make live`. Tests create users named `live-test-<hex>`; the session-scoped
`created_users` fixture deletes them at the end. Values worth knowing about the real service
(JWT claims of a session token, the code a revoked token gets) are printed and attached with
`record_property`, and `make live` shows them (`-rA`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sample_app.config import load_settings
from sample_app.identity import SendbirdIdentity
from sample_app.sendbird_api import (
    SendbirdAuthError,
    SendbirdClient,
    SendbirdNotFoundError,
)
from sample_app.session_tokens import SessionTokenService
from sample_app.setup_check import check_setup
from tests.live.wslogin import try_login

if TYPE_CHECKING:
    from tests.live.conftest import LiveTarget

USER_PREFIX = "live-test-"
RecordProperty = Any  # pytest's record_property fixture: (name, value) -> None

NON_ASCII_NICKNAME = "Zoë Ærøskøbing 山田 🙂"
LONG_NICKNAME = "N" * 79 + "é"  # 80 characters, Sendbird's limit


def unique_user_id() -> str:
    return f"{USER_PREFIX}{secrets.token_hex(8)}"


@pytest.fixture
def new_user_id(created_users: list[str]) -> str:
    """A fresh user id, deleted at the end of the session if a test created it."""
    user_id = unique_user_id()
    created_users.append(user_id)
    return user_id


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, without checking its signature (we only read Sendbird's claims)."""
    parts = token.split(".")
    if len(parts) != 3:
        pytest.fail(f"the session token is not a JWT ({len(parts)} dot-separated parts)")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(padded))
    assert isinstance(claims, dict)
    return claims


def record(record_property: RecordProperty, name: str, value: object) -> None:
    record_property(name, value)
    print(f"[live] {name} = {value!r}")  # noqa: T201 - shown by `make live` (-rA)


# ------------------------------------------------------------ Platform API: users and tokens


async def test_session_token_lifecycle(
    sendbird: SendbirdClient, new_user_id: str, record_property: RecordProperty
) -> None:
    created = await sendbird.ensure_user(new_user_id, "Live Test")
    assert (created.user_id, created.nickname) == (new_user_id, "Live Test")
    again = await sendbird.ensure_user(new_user_id, "Another Name")  # idempotent, no rename
    assert again.nickname == "Live Test"

    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    issued = await sendbird.issue_session_token(new_user_id, expires_at)
    assert issued.token
    assert issued.token not in repr(issued)
    assert issued.expires_at.tzinfo is not None
    # Whole seconds were asked for: Sendbird grants exactly that (sent as Unix ms).
    assert issued.expires_at.microsecond == 0, issued.expires_at
    assert abs(issued.expires_at - expires_at) <= timedelta(seconds=1), issued.expires_at

    claims = jwt_claims(issued.token)
    for claim in ("e", "u", "v"):
        record(record_property, f"jwt_claim_{claim}", claims.get(claim))
    expires_ms = int(issued.expires_at.timestamp() * 1000)
    assert claims.get("e") in (expires_ms, expires_ms // 1000), (claims.get("e"), expires_ms)

    # A second token for the same expiry may or may not be a different string (a JWT of the
    # same claims can be identical): record it, assert nothing.
    second = await sendbird.issue_session_token(new_user_id, expires_at)
    record(record_property, "second_token_differs", second.token != issued.token)

    await sendbird.revoke_session_tokens(new_user_id)
    await sendbird.revoke_session_tokens(new_user_id)  # nothing left to revoke: still fine


@pytest.mark.parametrize(
    "nickname", [NON_ASCII_NICKNAME, LONG_NICKNAME], ids=["non-ascii", "80-characters"]
)
async def test_nickname_round_trips(
    sendbird: SendbirdClient, new_user_id: str, nickname: str
) -> None:
    created = await sendbird.create_user(new_user_id, nickname)
    assert created.nickname == nickname
    fetched = await sendbird.get_user(new_user_id)
    assert fetched is not None
    assert fetched.nickname == nickname
    assert len(fetched.nickname) == len(nickname)


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


# ---------------------------------------------------------------------------- set-up check


async def test_setup_check_passes(live_target: LiveTarget) -> None:
    if not os.environ.get("SENDBIRD_BOT_ID", "").strip():
        pytest.skip("the set-up check needs SENDBIRD_BOT_ID (your AI chatbot's id) as well")
    settings = load_settings(environ=os.environ, env_file=None)
    assert not settings.is_sandbox

    problems = await check_setup(settings)

    assert problems == [], "\n".join(problems)


# ----------------------------------------------------- the widget's WebSocket login (LOGI)


async def test_ws_login_with_a_valid_token(
    sendbird: SendbirdClient, live_target: LiveTarget, new_user_id: str
) -> None:
    await sendbird.ensure_user(new_user_id, "Live WS")
    issued = await sendbird.issue_session_token(
        new_user_id, datetime.now(UTC) + timedelta(minutes=5)
    )

    result = await try_login(live_target.ws_base, live_target.app_id, new_user_id, issued.token)

    assert result.accepted, str(result)


async def test_ws_login_with_a_garbage_token_is_refused(
    sendbird: SendbirdClient,
    live_target: LiveTarget,
    new_user_id: str,
    record_property: RecordProperty,
) -> None:
    await sendbird.ensure_user(new_user_id, "Live WS")
    garbage = "eyJ" + secrets.token_urlsafe(90)

    result = await try_login(live_target.ws_base, live_target.app_id, new_user_id, garbage)

    record(record_property, "garbage_token_login", str(result))
    assert not result.accepted, str(result)


async def test_ws_login_without_a_token_is_refused(
    sendbird: SendbirdClient,
    live_target: LiveTarget,
    new_user_id: str,
    record_property: RecordProperty,
) -> None:
    await sendbird.ensure_user(new_user_id, "Live WS")

    result = await try_login(live_target.ws_base, live_target.app_id, new_user_id, None)

    record(record_property, "no_token_login", str(result))
    if result.accepted:
        # A failure, not a skip: with "Deny login" off anyone who knows a user id can connect
        # as that user, and server-issued tokens protect nothing. A skip would be overlooked.
        pytest.fail(
            "Deny login is off: Sendbird let a user connect with no token at all. Turn on "
            "'Deny login' in the Dashboard (Settings > Application > Security, access token "
            "permission), or server-issued session tokens protect nothing.",
            pytrace=False,
        )


async def test_ws_login_with_a_revoked_token_is_refused(
    sendbird: SendbirdClient,
    live_target: LiveTarget,
    new_user_id: str,
    record_property: RecordProperty,
) -> None:
    await sendbird.ensure_user(new_user_id, "Live WS")
    issued = await sendbird.issue_session_token(
        new_user_id, datetime.now(UTC) + timedelta(minutes=5)
    )
    await sendbird.revoke_session_tokens(new_user_id)

    result = await try_login(live_target.ws_base, live_target.app_id, new_user_id, issued.token)

    record(record_property, "revoked_token_login_code", result.code)
    record(record_property, "revoked_token_login", str(result))
    assert not result.accepted, str(result)


# ---------------------------------------------------------- the token service, end to end


async def test_token_service_end_to_end(
    sendbird: SendbirdClient, live_target: LiveTarget, new_user_id: str
) -> None:
    service = SessionTokenService(
        sendbird, ttl=timedelta(minutes=5), refresh_margin=timedelta(minutes=1)
    )
    identity = SendbirdIdentity(user_id=new_user_id, nickname="Live Service")

    first = await service.token_for(identity)
    assert first.user_id == new_user_id
    user = await sendbird.get_user(new_user_id)
    assert user is not None
    assert user.nickname == "Live Service"
    cached = await service.token_for(identity)
    assert cached.token == first.token  # answered from the cache: no second issuance
    assert service.stats.issued == 1

    login = await try_login(live_target.ws_base, live_target.app_id, new_user_id, first.token)
    assert login.accepted, str(login)

    await service.revoke(new_user_id)
    assert service.stats.revoked == 1
