"""SessionTokenService: caching, renewal, single-flight issuance, revocation.

Most tests run the real SendbirdClient against the scripted HTTP server with a small
stateful Sendbird stand-in (``FakeSendbird``), so call counts are measured where they
matter: at the server. A few pure-logic tests use an in-process fake issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from sample_app.identity import SendbirdIdentity
from sample_app.sendbird_api import (
    RetryPolicy,
    SendbirdAuthError,
    SendbirdClient,
    SendbirdError,
    SendbirdServerError,
    SendbirdUser,
    SessionToken,
)
from sample_app.session_tokens import (
    CREATED_BY_KEY,
    CREATED_BY_METADATA,
    CREATED_BY_VALUE,
    ForeignSendbirdUserError,
    IssuedSessionToken,
    SendbirdTokenIssuer,
    SessionTokenService,
)
from tests.clock import START, FakeClock
from tests.sendbird_api.scripted_server import (
    API_TOKEN,
    FakeSendbird,
    Reply,
    ScriptedServer,
    sendbird_error,
)

TTL = timedelta(minutes=30)
MARGIN = timedelta(minutes=2)
ALICE = SendbirdIdentity("sample-1", "Alice")
BOB = SendbirdIdentity("sample-2", "Bob")
OURS = dict(CREATED_BY_METADATA)  # the mark of a user this app created earlier

GET_USER = "GET /v3/users/{user_id}"
CREATE_USER = "POST /v3/users"
UPDATE_USER = "PUT /v3/users/{user_id}"
ISSUE = "POST /v3/users/{user_id}/token"
REVOKE = "DELETE /v3/users/{user_id}/token"


class Sendbird:
    """Bundles the server, its fake backend and a client pointed at it."""

    def __init__(self, server: ScriptedServer, fake: FakeSendbird, client: SendbirdClient):
        self.server = server
        self.fake = fake
        self.client = client

    def count(self, method: str, suffix: str) -> int:
        """Requests seen by the server (method + decoded path suffix)."""
        return self.server.count(method, suffix)


@pytest.fixture(scope="module")
def module_server() -> Iterator[ScriptedServer]:
    with ScriptedServer.running() as server:
        yield server


@pytest_asyncio.fixture
async def sendbird(module_server: ScriptedServer) -> AsyncIterator[Sendbird]:
    module_server.reset()
    fake = FakeSendbird(token_delay=0.02)
    module_server.set_fallback(fake)

    async def no_sleep(_: float) -> None:
        return None

    client = SendbirdClient(
        module_server.base_url,
        API_TOKEN,
        retry=RetryPolicy(max_retries=1, jitter=0),
        sleep=no_sleep,
    )
    try:
        yield Sendbird(module_server, fake, client)
    finally:
        await client.aclose()
        module_server.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(sendbird: Sendbird, clock: FakeClock) -> SessionTokenService:
    return SessionTokenService(sendbird.client, ttl=TTL, refresh_margin=MARGIN, clock=clock)


# ------------------------------------------------------------- basics


async def test_a_new_account_costs_two_calls_create_then_issue(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")  # registered just now (AuthState.register says so)

    token = await service.token_for(ALICE)

    assert token.user_id == "sample-1"
    assert token.token in sendbird.fake.tokens
    assert token.expires_at == START + TTL  # the fake grants what we asked for
    assert sendbird.fake.users["sample-1"]["nickname"] == "Alice"
    # No lookup first, and no issue that is sure to fail.
    assert [f"{r.method} {r.path}" for r in sendbird.server.requests] == [
        "POST /v3/users",
        "POST /v3/users/sample-1/token",
    ]
    stats = service.stats
    assert (stats.issued, stats.reused, stats.sendbird_calls) == (1, 0, 2)
    assert stats.calls_by_endpoint == {CREATE_USER: 1, ISSUE: 1}


async def test_a_returning_accounts_first_view_costs_one_call(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    """After a restart (a fresh service), an existing user costs just the issuance."""
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)

    token = await service.token_for(ALICE)

    assert token.token in sendbird.fake.tokens
    assert sendbird.client.call_counts == {ISSUE: 1}


async def test_views_within_the_tokens_life_cost_nothing(
    sendbird: Sendbird, service: SessionTokenService, clock: FakeClock
) -> None:
    service.note_new_user("sample-1")
    first = await service.token_for(ALICE)
    for _ in range(5):
        clock.advance(seconds=60)
        assert await service.token_for(ALICE) is first
    assert sendbird.client.call_counts == {CREATE_USER: 1, ISSUE: 1}


async def test_an_account_never_chatted_before_a_restart_is_created_on_400201(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    """Registered in another process (or before this one started): issue, create, issue."""
    token = await service.token_for(ALICE)

    assert token.token in sendbird.fake.tokens
    assert sendbird.fake.users["sample-1"]["metadata"] == OURS
    assert [f"{r.method} {r.path}" for r in sendbird.server.requests] == [
        "POST /v3/users/sample-1/token",  # 400201
        "POST /v3/users",
        "POST /v3/users/sample-1/token",
    ]
    assert sendbird.count("GET", "/sample-1") == 0


async def test_noted_new_users_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sample_app.session_tokens.MAX_NOTED_NEW_USERS", 3)
    service = SessionTokenService(FakeIssuer(), clock=FakeClock())
    for n in range(10):
        service.note_new_user(f"user-{n}")
    assert list(service._new_users) == ["user-7", "user-8", "user-9"]


async def test_token_is_reused_within_the_margin(
    sendbird: Sendbird, service: SessionTokenService, clock: FakeClock
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    first = await service.token_for(ALICE)
    clock.advance(seconds=(TTL - MARGIN).total_seconds() - 1)  # 1 s before the refresh point
    assert await service.token_for(ALICE) is first
    assert sendbird.count("POST", "/token") == 1
    assert service.stats.reused == 1


async def test_token_is_renewed_once_inside_the_margin(
    sendbird: Sendbird, service: SessionTokenService, clock: FakeClock
) -> None:
    first = await service.token_for(ALICE)
    # Exactly at the refresh point: no longer "fresh".
    clock.advance(seconds=(TTL - MARGIN).total_seconds())
    second = await service.token_for(ALICE)
    assert second.token != first.token
    assert second.expires_at == clock.now + TTL
    assert sendbird.count("POST", "/token") == 3  # 400201, the first token, the renewal
    assert sendbird.client.call_counts[CREATE_USER] == 1  # the user is not re-created
    assert sendbird.count("GET", "/sample-1") == 0
    assert await service.token_for(ALICE) is second


async def test_force_new_skips_a_fresh_cached_token(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    first = await service.token_for(ALICE)
    forced = await service.token_for(ALICE, force_new=True)
    assert forced.token != first.token
    assert await service.token_for(ALICE) is forced  # and replaces it in the cache
    assert sendbird.count("POST", "/token") == 3  # 400201, the first token, the forced one


async def test_existing_user_is_not_recreated(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    await service.token_for(ALICE)
    assert sendbird.client.call_counts == {ISSUE: 1}


@pytest.mark.parametrize("noted_new", [True, False], ids=["create-first", "after-400201"])
async def test_new_user_is_created_with_the_apps_mark(
    sendbird: Sendbird, service: SessionTokenService, noted_new: bool
) -> None:
    if noted_new:
        service.note_new_user("sample-1")
    await service.token_for(ALICE)
    (create,) = [
        r for r in sendbird.server.requests if r.method == "POST" and r.path == "/v3/users"
    ]
    assert create.json()["metadata"] == {CREATED_BY_KEY: CREATED_BY_VALUE}
    assert sendbird.fake.users["sample-1"]["metadata"] == {CREATED_BY_KEY: CREATED_BY_VALUE}


@pytest.mark.parametrize(
    "metadata",
    [None, {}, {CREATED_BY_KEY: "someone-else"}, {"team": "support"}],
    ids=["none", "empty", "other-creator", "other-keys"],
)
async def test_existing_user_without_the_mark_is_refused(
    sendbird: Sendbird, service: SessionTokenService, metadata: dict[str, str] | None
) -> None:
    """Creation answers 400202 for a user created elsewhere (or before users were marked):
    it is not adopted."""
    sendbird.fake.add_user("sample-1", "Previous Owner", metadata=metadata)
    service.note_new_user("sample-1")  # the create-first path meets the existing user

    with pytest.raises(ForeignSendbirdUserError) as refused:
        await service.token_for(ALICE)

    assert isinstance(refused.value, SendbirdError)  # shown like any Sendbird failure
    assert refused.value.user_id == "sample-1"
    assert str(refused.value) == (
        "The Sendbird user 'sample-1' already exists but was not created by this app, so no "
        "session token is issued for it. Use another SENDBIRD_USER_ID_PREFIX, or delete that "
        "user in the Sendbird dashboard if it is not needed."
    )
    assert sendbird.fake.tokens == []
    assert sendbird.count("POST", "/token") == 0
    assert sendbird.count("PUT", "/sample-1") == 0  # not even renamed
    assert sendbird.fake.users["sample-1"]["nickname"] == "Previous Owner"
    assert sendbird.client.call_counts == {CREATE_USER: 1, GET_USER: 1}
    # Not cached as a success: the next call creates again, and is refused again.
    service.note_new_user("sample-1")
    with pytest.raises(ForeignSendbirdUserError):
        await service.token_for(ALICE, force_new=True)
    assert sendbird.fake.tokens == []


async def test_a_user_that_appears_between_400201_and_creation_is_checked_for_the_mark(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    """Issue answers 400201, then creation 400202: the user is read and its mark checked."""
    sendbird.fake.fail_next("issue_token", sendbird_error(400201, '"User" not found.'))
    sendbird.fake.add_user("sample-1", "Someone", metadata={"team": "support"})

    with pytest.raises(ForeignSendbirdUserError):
        await service.token_for(ALICE)
    assert sendbird.fake.tokens == []


async def test_a_user_of_ours_found_at_creation_is_adopted_and_renamed(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    """Another worker created the user a moment ago, under the old nickname."""
    sendbird.fake.add_user("sample-1", "Old Name", metadata=OURS)
    service.note_new_user("sample-1")

    token = await service.token_for(ALICE)

    assert token.token in sendbird.fake.tokens
    assert sendbird.fake.users["sample-1"]["nickname"] == "Alice"
    assert sendbird.client.call_counts == {CREATE_USER: 1, GET_USER: 1, UPDATE_USER: 1, ISSUE: 1}


async def test_an_issue_first_success_trusts_the_random_id(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    """Documented trade-off: with no creation there is no mark check (the id is random and
    never reused, so a user under it was created by this app for this account)."""
    sendbird.fake.add_user("sample-1", "Alice", metadata=None)
    token = await service.token_for(ALICE)
    assert token.token in sendbird.fake.tokens
    assert sendbird.client.call_counts == {ISSUE: 1}


async def test_the_user_is_created_once_per_user(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")
    for _ in range(3):
        await service.token_for(ALICE, force_new=True)
    assert sendbird.client.call_counts == {CREATE_USER: 1, ISSUE: 3}


async def test_nickname_change_updates_the_user(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")
    first = await service.token_for(ALICE)
    renamed = SendbirdIdentity("sample-1", "Alice B.", "https://example.com/a.png")
    again = await service.token_for(renamed)
    assert again is first  # the token is still good; only the profile changed
    assert sendbird.fake.users["sample-1"]["nickname"] == "Alice B."
    assert sendbird.fake.users["sample-1"]["profile_url"] == "https://example.com/a.png"
    (put,) = [r for r in sendbird.server.requests if r.method == "PUT"]
    assert put.json() == {"nickname": "Alice B.", "profile_url": "https://example.com/a.png"}
    await service.token_for(renamed)
    assert sendbird.count("PUT", "/sample-1") == 1  # no second update


async def test_a_returning_view_puts_only_when_the_nickname_changed(
    sendbird: Sendbird, service: SessionTokenService, clock: FakeClock
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    await service.token_for(ALICE)
    clock.advance(seconds=TTL.total_seconds())  # the token is gone: the next view issues
    await service.token_for(ALICE)
    assert sendbird.client.call_counts == {ISSUE: 2}  # same nickname: no PUT

    await service.token_for(SendbirdIdentity("sample-1", "Alice Renamed"))

    assert sendbird.fake.users["sample-1"]["nickname"] == "Alice Renamed"
    assert sendbird.client.call_counts == {ISSUE: 2, UPDATE_USER: 1}  # token still good


async def test_different_users_do_not_share_tokens(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")
    service.note_new_user("sample-2")
    alice, bob = await asyncio.gather(service.token_for(ALICE), service.token_for(BOB))
    assert alice.token != bob.token
    assert (alice.user_id, bob.user_id) == ("sample-1", "sample-2")
    assert sendbird.count("POST", "/token") == 2
    assert {r.segments[2] for r in sendbird.server.requests if r.path.endswith("/token")} == {
        "sample-1",
        "sample-2",
    }


# --------------------------------------------------------- concurrency


async def test_hundred_concurrent_callers_share_one_issuance(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    tokens = await asyncio.gather(*(service.token_for(ALICE) for _ in range(100)))
    assert len({t.token for t in tokens}) == 1
    assert sendbird.count("POST", "/token") == 1
    assert sendbird.count("GET", "/sample-1") <= 1
    assert service.stats.issued == 1
    assert service.stats.shared == 99


async def test_concurrent_force_new_callers_also_share_one_issuance(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    await service.token_for(ALICE)
    tokens = await asyncio.gather(*(service.token_for(ALICE, force_new=True) for _ in range(20)))
    assert len({t.token for t in tokens}) == 1
    assert sendbird.count("POST", "/token") == 2


async def test_failure_reaches_every_waiter_and_is_not_cached(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    sendbird.fake.fail_next("issue_token", sendbird_error(400401, "Invalid API token"))
    results = await asyncio.gather(
        *(service.token_for(ALICE) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, SendbirdAuthError) for r in results)
    assert sendbird.count("POST", "/token") == 1
    # The next call tries again instead of replaying the failure.
    token = await service.token_for(ALICE)
    assert token.token in sendbird.fake.tokens
    assert sendbird.count("POST", "/token") == 2
    assert service.stats.issued == 1


async def test_user_deleted_at_sendbird_is_created_again(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")
    await service.token_for(ALICE)
    # Deleted out of band (dashboard, sandbox reset) while this process remembers it.
    del sendbird.fake.users["sample-1"]

    token = await service.token_for(ALICE, force_new=True)

    assert token.token in sendbird.fake.tokens
    assert sendbird.fake.users["sample-1"]["nickname"] == "Alice"
    assert sendbird.client.call_counts[CREATE_USER] == 2
    assert sendbird.client.call_counts[ISSUE] == 3  # the first, the refused, the retry


async def test_failed_user_setup_is_retried_on_the_next_call(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    service.note_new_user("sample-1")
    sendbird.fake.fail_next("create_user", *[Reply(503, body="down")] * 2)  # 1 try + 1 retry
    with pytest.raises(SendbirdServerError):
        await service.token_for(ALICE)
    assert await service.token_for(ALICE)
    assert sendbird.client.call_counts == {CREATE_USER: 3, ISSUE: 1}


async def test_cancelling_one_waiter_does_not_cancel_the_others(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    sendbird.fake.add_user("sample-1", "Alice", metadata=OURS)
    sendbird.fake.token_delay = 0.3
    waiters = [asyncio.create_task(service.token_for(ALICE)) for _ in range(3)]
    while sendbird.count("POST", "/token") == 0:  # the issuance has reached Sendbird
        await asyncio.sleep(0.005)
    waiters[0].cancel()
    survivors = await asyncio.gather(*waiters[1:])
    assert waiters[0].cancelled()
    assert survivors[0] is survivors[1]
    assert sendbird.count("POST", "/token") == 1
    assert await service.token_for(ALICE) is survivors[0]  # the result was cached too


# ------------------------------------------------------------ revocation


async def test_revoke_calls_sendbird_and_forgets_the_cache(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    first = await service.token_for(ALICE)
    await service.revoke("sample-1")
    assert sendbird.count("DELETE", "/sample-1/token") == 1
    second = await service.token_for(ALICE)
    assert second.token != first.token
    # Forgotten: the next view starts like one after a restart (issue first, one call).
    assert sendbird.client.call_counts[ISSUE] == 3
    assert service.stats.revoked == 1
    assert service.stats.calls_by_endpoint[REVOKE] == 1


async def test_revoking_an_unknown_user_is_not_an_error(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    await service.revoke("never-seen")
    assert sendbird.count("DELETE", "/never-seen/token") == 1


async def test_revoke_failure_propagates_but_the_cache_is_gone(
    sendbird: Sendbird, service: SessionTokenService
) -> None:
    first = await service.token_for(ALICE)
    sendbird.fake.fail_next("revoke", sendbird_error(400401, "Invalid API token"))
    with pytest.raises(SendbirdAuthError):
        await service.revoke("sample-1")
    assert (await service.token_for(ALICE)).token != first.token
    assert service.stats.revoked == 0


# ------------------------------------------------- pure logic (in-process fake)


class FakeIssuer:
    """In-process implementation of SendbirdTokenIssuer with a gate on issuance."""

    def __init__(self) -> None:
        self.call_counts: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gate.set()
        self.serial = 0

    async def get_user(self, user_id: str) -> SendbirdUser | None:
        self.call_counts[GET_USER] += 1
        return None

    async def create_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SendbirdUser:
        self.call_counts[CREATE_USER] += 1
        return SendbirdUser(user_id, nickname, profile_url, dict(metadata or {}))

    async def update_user(
        self, user_id: str, *, nickname: str | None = None, profile_url: str | None = None
    ) -> SendbirdUser:
        self.call_counts[UPDATE_USER] += 1
        return SendbirdUser(user_id, nickname or "", profile_url or "")

    async def issue_session_token(self, user_id: str, expires_at: datetime) -> SessionToken:
        self.call_counts[ISSUE] += 1
        await self.gate.wait()
        self.serial += 1
        return SessionToken(f"token-{self.serial}", expires_at)

    async def revoke_session_tokens(self, user_id: str) -> None:
        self.call_counts[REVOKE] += 1


def test_sendbird_client_and_fake_satisfy_the_protocol() -> None:
    issuer: SendbirdTokenIssuer = FakeIssuer()
    names = ("get_user", "create_user", "update_user", "issue_session_token")
    for name in (*names, "revoke_session_tokens"):
        assert callable(getattr(SendbirdClient, name))
        assert callable(getattr(issuer, name))


async def test_revoke_during_issuance_does_not_refill_the_cache() -> None:
    issuer = FakeIssuer()
    service = SessionTokenService(issuer, clock=FakeClock())
    issuer.gate.clear()
    pending = asyncio.create_task(service.token_for(ALICE))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert issuer.call_counts[ISSUE] == 1  # the issuance is under way
    revoking = asyncio.create_task(service.revoke("sample-1"))
    await asyncio.sleep(0.01)
    # The revocation waits for the issuance: its DELETE must revoke that token too.
    assert issuer.call_counts[REVOKE] == 0
    issuer.gate.set()
    stale = await pending
    await revoking
    assert issuer.call_counts[REVOKE] == 1
    fresh = await service.token_for(ALICE)
    assert fresh.token != stale.token


class SlowRevocation(FakeIssuer):
    """Records the order of issuances and revocations; a revocation takes a while."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def issue_session_token(self, user_id: str, expires_at: datetime) -> SessionToken:
        token = await super().issue_session_token(user_id, expires_at)
        self.events.append(f"issued {token.token}")
        return token

    async def revoke_session_tokens(self, user_id: str) -> None:
        await asyncio.sleep(0.2)
        await super().revoke_session_tokens(user_id)
        self.events.append("revoked all")


async def test_a_page_view_during_a_revocation_gets_a_token_issued_after_it() -> None:
    """Sendbird revokes *all* tokens: one issued while the DELETE is on its way would die.

    A user signs out in one tab (the revocation is in flight) and signs in again in
    another: that page view waits for the revocation, then gets a token that stays valid.
    """
    issuer = SlowRevocation()
    service = SessionTokenService(issuer, clock=FakeClock())
    first = await service.token_for(ALICE)
    revoking = asyncio.create_task(service.revoke("sample-1"))
    await asyncio.sleep(0.05)  # the DELETE is on its way

    page_view = await service.token_for(ALICE)
    await revoking

    assert page_view.token != first.token
    assert issuer.events == [f"issued {first.token}", "revoked all", f"issued {page_view.token}"]


@pytest.mark.parametrize(
    ("ttl", "margin"),
    [
        (timedelta(0), timedelta(0)),
        (timedelta(minutes=-1), timedelta(0)),
        (timedelta(minutes=5), timedelta(minutes=5)),
        (timedelta(minutes=5), timedelta(seconds=-1)),
    ],
)
def test_invalid_ttl_and_margin_are_rejected(ttl: timedelta, margin: timedelta) -> None:
    with pytest.raises(ValueError):
        SessionTokenService(FakeIssuer(), ttl=ttl, refresh_margin=margin)


async def test_a_naive_clock_is_rejected() -> None:
    service = SessionTokenService(FakeIssuer(), clock=lambda: datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await service.token_for(ALICE)


def test_identity_rejects_empty_ids() -> None:
    with pytest.raises(ValueError):
        SendbirdIdentity("", "Nick")


def test_issued_token_repr_and_helpers() -> None:
    token = IssuedSessionToken("sample-1", "eyJsecret.x.y", START + TTL)
    assert "eyJsecret" not in repr(token)
    assert "eyJsecret" not in str(token)
    assert "sample-1" in repr(token)
    assert token.seconds_left(START) == TTL.total_seconds()
    assert token.seconds_left(START + TTL + timedelta(seconds=5)) == 0.0
    assert token.expires_at_ms == 1772368200000


async def test_forget_drops_the_cached_token() -> None:
    issuer = FakeIssuer()
    service = SessionTokenService(issuer, clock=FakeClock())
    first = await service.token_for(ALICE)
    await service.forget("sample-1")
    assert (await service.token_for(ALICE)).token != first.token
    assert issuer.call_counts == {ISSUE: 2}  # the fake issues for anyone: no creation


async def test_a_stuck_issuance_does_not_stop_a_revocation() -> None:
    """Sign-out must reach Sendbird even while an issuance for the user hangs."""
    issuer = FakeIssuer()
    service = SessionTokenService(issuer, clock=FakeClock(), deadline=timedelta(seconds=0.4))
    issuer.gate.clear()  # the issuance never gets an answer
    pending = asyncio.create_task(service.token_for(ALICE))
    await asyncio.sleep(0.01)

    await service.revoke("sample-1")

    assert issuer.call_counts[REVOKE] == 1
    issuer.gate.set()
    with contextlib.suppress(SendbirdError):
        await pending
