"""The issuance budget: reuse window, per-user limit, app-wide Platform API limit.

The budget alone (``LocalIssuanceBudget``) and through ``SessionTokenService``, on a fake
clock: the service's aware ``FakeClock`` and the budget's monotonic seconds are one time
line, and the budget's sleeps end only when the test moves that clock, so waiting, arrival
order and refusal are checked exactly and without real delays.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from sample_app.identity import SendbirdIdentity
from sample_app.issuance_budget import (
    IssuanceBudget,
    IssuanceBudgetExceededError,
    IssuancePolicy,
    LocalIssuanceBudget,
)
from sample_app.sendbird_api import SendbirdError, SendbirdUser, SessionToken
from sample_app.session_tokens import SessionTokenService
from tests.clock import START, FakeClock

ALICE = SendbirdIdentity("sample-1", "Alice")
BOB = SendbirdIdentity("sample-2", "Bob")
ENSURE = "create_user"
ISSUE = "issue"


class FakeTime:
    """Monotonic seconds read off a ``FakeClock``, and sleeps that end as it passes them.

    Attributes:
        clock: The aware clock the token service reads (the same time line).
        sleeps: Every delay the budget asked to sleep, in order.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return (self.clock.now - START).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self() + seconds, next(self._order), wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Move time on, waking each sleeper at its own time (as a real event loop would)."""
        target = self() + seconds
        while self._sleepers and self._sleepers[0][0] <= target + 1e-9:
            when, _, wake = heapq.heappop(self._sleepers)
            if when > self():
                self.clock.advance(seconds=when - self())
            if not wake.done():
                wake.set_result(None)
            await settle()
        self.clock.advance(seconds=target - self())
        await settle()


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(20):
        await asyncio.sleep(0)


class FakeIssuer:
    """An in-process Sendbird that counts calls and notes when each POST was sent."""

    def __init__(self, time: FakeTime) -> None:
        self.call_counts: Counter[str] = Counter()
        self.posts_at: list[float] = []
        self._time = time
        self._serial = itertools.count(1)

    async def get_user(self, user_id: str) -> SendbirdUser | None:
        self.call_counts["get_user"] += 1
        return None

    async def create_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SendbirdUser:
        self.call_counts[ENSURE] += 1
        self.posts_at.append(self._time())
        return SendbirdUser(user_id, nickname, profile_url, dict(metadata or {}))

    async def update_user(
        self, user_id: str, *, nickname: str | None = None, profile_url: str | None = None
    ) -> SendbirdUser:
        return SendbirdUser(user_id, nickname or "", profile_url or "")

    async def issue_session_token(self, user_id: str, expires_at: datetime) -> SessionToken:
        self.call_counts[ISSUE] += 1
        self.posts_at.append(self._time())
        return SessionToken(f"{user_id}-token-{next(self._serial)}", expires_at)

    async def revoke_session_tokens(self, user_id: str) -> None:
        self.call_counts["revoke"] += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def time(clock: FakeClock) -> FakeTime:
    return FakeTime(clock)


def make_budget(time: FakeTime, **policy: Any) -> LocalIssuanceBudget:
    return LocalIssuanceBudget(IssuancePolicy(**policy), clock=time, sleep=time.sleep)


def make_service(
    clock: FakeClock, time: FakeTime, **policy: Any
) -> tuple[SessionTokenService, FakeIssuer]:
    issuer = FakeIssuer(time)
    service = SessionTokenService(issuer, clock=clock, budget=make_budget(time, **policy))
    return service, issuer


def most_in_one_second(times: list[float]) -> int:
    """The largest number of `times` inside any half-open one-second window.

    Slots exactly one second apart sit on the window's edge; the microsecond of slack
    keeps float rounding in the fake clock from counting them twice.
    """
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered if start <= t < start + 1.0 - 1e-6) for start in ordered),
        default=0,
    )


# ---- the error ------------------------------------------------------------------------------


def test_the_refusal_is_a_sendbird_error_that_says_when_to_retry() -> None:
    per_user = IssuanceBudgetExceededError("user", 11.2)
    assert isinstance(per_user, SendbirdError)  # the session panel shows every SendbirdError
    assert per_user.retry_after == 11.2
    assert str(per_user) == "Too many session tokens for this account; try again in 12 s."
    app_wide = IssuanceBudgetExceededError("app", 0.01)
    assert app_wide.scope == "app"
    assert "try again in 1 s" in str(app_wide)  # never "in 0 s"


@pytest.mark.parametrize(
    "policy",
    [
        {"reuse_window": timedelta(seconds=-1)},
        {"tokens_per_user_per_minute": 0},
        {"platform_posts_per_second": 0},
        {"max_wait": -1.0},
        {"max_wait": float("inf")},
    ],
)
def test_nonsensical_policies_are_rejected(policy: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IssuancePolicy(**policy)


def test_the_local_budget_satisfies_the_interface(time: FakeTime) -> None:
    budget: IssuanceBudget = make_budget(time)
    assert budget.reuse_window == timedelta(seconds=5)  # the default policy


# ---- per user -------------------------------------------------------------------------------


async def test_per_user_limit_refuses_with_the_time_until_the_oldest_leaves(
    time: FakeTime,
) -> None:
    budget = make_budget(time, tokens_per_user_per_minute=3)
    for _ in range(3):
        await budget.admit_token("alice")
        await time.advance(10)
    # Issued at 0, 10 and 20 s; now 30 s: the first leaves the window at 60 s.
    with pytest.raises(IssuanceBudgetExceededError) as refused:
        await budget.admit_token("alice")
    assert refused.value.scope == "user"
    assert refused.value.retry_after == pytest.approx(30)
    assert "try again in 30 s" in str(refused.value)
    await budget.admit_token("bob")  # other users keep their own budget
    await time.advance(30)
    await budget.admit_token("alice")  # the oldest has left the window
    with pytest.raises(IssuanceBudgetExceededError) as again:
        await budget.admit_token("alice")
    assert again.value.retry_after == pytest.approx(10)  # the one from 10 s leaves at 70 s


async def test_a_token_refused_app_wide_is_not_counted_against_the_user(time: FakeTime) -> None:
    budget = make_budget(
        time, tokens_per_user_per_minute=2, platform_posts_per_second=1, max_wait=0
    )
    await budget.admit_post()  # someone else took this second's only slot
    for _ in range(3):
        with pytest.raises(IssuanceBudgetExceededError) as refused:
            await budget.admit_token("alice")
        assert refused.value.scope == "app"
    await time.advance(1)
    await budget.admit_token("alice")  # alice still has both of her tokens
    await time.advance(1)
    await budget.admit_token("alice")


async def test_a_cancelled_wait_gives_the_user_back_the_token(time: FakeTime) -> None:
    budget = make_budget(time, tokens_per_user_per_minute=1, platform_posts_per_second=1)
    await budget.admit_post()
    waiting = asyncio.create_task(budget.admit_token("alice"))
    await settle()
    assert time.sleeps == [1.0]
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await time.advance(2)
    await budget.admit_token("alice")


async def test_idle_users_are_forgotten(time: FakeTime) -> None:
    budget = make_budget(time, platform_posts_per_second=100)
    for n in range(50):
        await budget.admit_token(f"user-{n}")
    await time.advance(61)
    await budget.admit_token("late")
    assert list(budget._per_user) == ["late"]


# ---- app-wide -------------------------------------------------------------------------------


async def test_over_the_app_limit_requests_wait_then_are_refused(time: FakeTime) -> None:
    budget = make_budget(time, platform_posts_per_second=2, max_wait=1.0)
    await budget.admit_post()
    await budget.admit_post()
    assert time.sleeps == []  # a burst up to the limit goes at once
    third = asyncio.create_task(budget.admit_post())
    fourth = asyncio.create_task(budget.admit_post())
    await settle()
    assert time.sleeps == [1.0, 1.0]  # one sleep each, no polling
    assert not third.done() and not fourth.done()
    with pytest.raises(IssuanceBudgetExceededError) as refused:
        await budget.admit_post()  # its slot would be 2 s away: longer than max_wait
    assert refused.value.scope == "app"
    assert refused.value.retry_after == pytest.approx(1.0)
    await time.advance(1)
    assert third.done() and fourth.done()


async def test_waiting_requests_get_their_slots_in_arrival_order(time: FakeTime) -> None:
    budget = make_budget(time, platform_posts_per_second=1, max_wait=3.0)
    admitted: list[str] = []

    async def request(name: str) -> None:
        await budget.admit_post()
        admitted.append(name)

    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(request(name)))
        await settle()
        await time.advance(0.1)
    with pytest.raises(IssuanceBudgetExceededError):
        await budget.admit_post()  # a fifth would wait ~3.6 s
    for _ in range(4):
        await time.advance(1)
    await asyncio.gather(*tasks)
    assert admitted == ["a", "b", "c", "d"]
    assert time.sleeps == pytest.approx([0.9, 1.8, 2.7])


async def test_no_second_ever_holds_more_than_the_limit(time: FakeTime) -> None:
    budget = make_budget(time, platform_posts_per_second=4, max_wait=2.0)
    rng = random.Random(7)
    started: list[float] = []
    refused = 0

    async def request() -> None:
        nonlocal refused
        try:
            await budget.admit_post()
        except IssuanceBudgetExceededError:
            refused += 1
        else:
            started.append(time())

    tasks = []
    for _ in range(200):
        tasks.append(asyncio.create_task(request()))
        await settle()
        await time.advance(rng.choice([0.0, 0.01, 0.05, 0.1, 0.3]))
    for _ in range(40):
        await time.advance(0.1)
    await asyncio.gather(*tasks)
    assert refused > 0  # the load was well over 4/s
    assert len(started) + refused == 200
    assert most_in_one_second(started) == 4


# ---- through the token service ---------------------------------------------------------------


async def test_force_new_within_the_reuse_window_reuses_the_young_token(
    clock: FakeClock, time: FakeTime
) -> None:
    service, issuer = make_service(clock, time, reuse_window=timedelta(seconds=5))
    page_view = await service.token_for(ALICE)
    refreshed = await service.token_for(ALICE, force_new=True)
    assert refreshed.token != page_view.token  # the page view's token is the rejected one
    await time.advance(4.9)
    for _ in range(100):
        assert await service.token_for(ALICE, force_new=True) is refreshed
    assert issuer.call_counts[ISSUE] == 2
    assert (service.stats.reused_young, service.stats.reused) == (100, 0)
    await time.advance(0.1)  # 5 s old: no longer young
    third = await service.token_for(ALICE, force_new=True)
    assert third.token != refreshed.token
    assert issuer.call_counts[ISSUE] == 3


async def test_a_page_views_token_is_never_reused_for_force_new(
    clock: FakeClock, time: FakeTime
) -> None:
    service, issuer = make_service(
        clock, time, reuse_window=timedelta(seconds=5), platform_posts_per_second=100
    )
    for _ in range(3):
        page_view = await service.token_for(ALICE)  # mints: the refresh dropped the cache
        refreshed = await service.token_for(ALICE, force_new=True)
        assert refreshed.token != page_view.token
        await service.forget("sample-1")  # the sandbox expired the token, say
    assert issuer.call_counts[ISSUE] == 6
    assert service.stats.reused_young == 0


async def test_a_young_token_of_another_user_is_not_reused(
    clock: FakeClock, time: FakeTime
) -> None:
    service, _ = make_service(clock, time)
    alice = await service.token_for(ALICE)
    bob = await service.token_for(BOB, force_new=True)
    assert bob.user_id == "sample-2" and bob.token != alice.token


@pytest.mark.parametrize("how", ["forget", "revoke"])
async def test_forget_and_revoke_drop_the_reusable_token(
    clock: FakeClock, time: FakeTime, how: str
) -> None:
    service, issuer = make_service(clock, time)
    first = await service.token_for(ALICE, force_new=True)
    if how == "forget":
        await service.forget("sample-1")
    else:
        await service.revoke("sample-1")
    renewed = await service.token_for(ALICE, force_new=True)
    assert renewed.token != first.token  # the dead token is not handed out again
    assert issuer.call_counts[ISSUE] == 2
    assert service.stats.reused_young == 0


async def test_the_per_user_limit_refuses_force_new_through_the_service(
    clock: FakeClock, time: FakeTime
) -> None:
    service, issuer = make_service(
        clock, time, reuse_window=timedelta(0), tokens_per_user_per_minute=3
    )
    for _ in range(3):
        await service.token_for(ALICE, force_new=True)
        await time.advance(1)
    with pytest.raises(IssuanceBudgetExceededError) as refused:
        await service.token_for(ALICE, force_new=True)
    assert refused.value.retry_after == pytest.approx(57)
    assert str(refused.value) == "Too many session tokens for this account; try again in 57 s."
    assert issuer.call_counts[ISSUE] == 3
    assert service.stats.refused == 1
    # The refusal is not cached: other users, and alice a minute later, are unaffected.
    await service.token_for(BOB, force_new=True)
    await time.advance(57)
    await service.token_for(ALICE, force_new=True)
    assert issuer.call_counts[ISSUE] == 5


async def test_user_creation_and_issuance_both_wait_for_app_slots(
    clock: FakeClock, time: FakeTime
) -> None:
    service, issuer = make_service(clock, time, platform_posts_per_second=1, max_wait=2.0)
    service.note_new_user(ALICE.user_id)  # registered just now: create, then issue
    first = asyncio.create_task(service.token_for(ALICE))
    await settle()
    assert issuer.call_counts == {ENSURE: 1}  # the token POST waits for the next second
    await time.advance(1)
    token = await first
    assert token.expires_at == clock.now + timedelta(minutes=30)  # its whole lifetime
    assert issuer.posts_at == [0.0, 1.0]


async def test_many_new_users_at_once_stay_under_the_app_limit(
    clock: FakeClock, time: FakeTime
) -> None:
    service, issuer = make_service(clock, time, platform_posts_per_second=4, max_wait=2.0)
    users = [SendbirdIdentity(f"sample-{n}", f"User {n}") for n in range(30)]
    for user in users:
        service.note_new_user(user.user_id)  # each first view creates, then issues
    calls = [asyncio.create_task(service.token_for(user)) for user in users]
    await settle()
    for _ in range(30):
        await time.advance(0.25)
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, IssuanceBudgetExceededError)]
    assert all(isinstance(r, IssuanceBudgetExceededError) or r.token for r in results)
    assert refused, "60 POSTs at once cannot all fit into 2 s at 4 per second"
    assert {r.scope for r in refused} == {"app"}
    assert most_in_one_second(issuer.posts_at) <= 4
    assert service.stats.refused == len(refused)
