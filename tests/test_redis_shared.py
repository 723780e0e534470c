"""Several workers sharing one Redis: one cache, one issuance in flight, one budget.

Each "worker" here is what a backend process has: its own `SendbirdClient`, its own Redis
client and its own `SessionTokenService`, all pointed at one real `redis-server` (started by
the `redis_server` fixture on a free port) and one scripted Sendbird stand-in, which counts
the calls where they matter: at the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from deploy.redis import RedisServer
from sample_app.identity import SendbirdIdentity
from sample_app.issuance_budget import IssuanceBudgetExceededError, IssuancePolicy
from sample_app.redis_shared import (
    RedisIssuanceBudget,
    RedisTokenStore,
    SharedStateUnavailableError,
    connect_redis,
)
from sample_app.sendbird_api import RetryPolicy, SendbirdClient
from sample_app.session_tokens import (
    CREATED_BY_METADATA,
    SessionTokenService,
    TokenRequestDeadlineError,
)
from tests.sendbird_api.scripted_server import API_TOKEN, FakeSendbird, ScriptedServer

ALICE = SendbirdIdentity("sample-alice", "Alice")
ISSUE = "/token"
POLICY = IssuancePolicy(
    reuse_window=timedelta(seconds=5),
    tokens_per_user_per_minute=1000,
    platform_posts_per_second=1000,
)


@dataclass
class Worker:
    """What one backend process holds."""

    client: SendbirdClient
    redis: Redis
    tokens: SessionTokenService


class Recorder:
    """Injected instead of ``asyncio.sleep``: records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer.running() as running:
        yield running


@pytest.fixture
def fake(server: ScriptedServer) -> Iterator[FakeSendbird]:
    server.reset()
    sendbird = FakeSendbird(token_delay=0.05)
    sendbird.add_user(ALICE.user_id, ALICE.nickname, metadata=dict(CREATED_BY_METADATA))
    server.set_fallback(sendbird)
    yield sendbird
    server.reset()


@pytest.fixture
def prefix(redis_key_prefix: str) -> str:
    """This test's own Redis key prefix (deleted afterwards)."""
    return redis_key_prefix


@pytest_asyncio.fixture
async def workers(
    server: ScriptedServer, fake: FakeSendbird, redis_server: RedisServer, prefix: str
) -> AsyncIterator[list[Worker]]:
    """Two workers on one Redis and one Sendbird."""
    built = []
    for _ in range(2):
        client = SendbirdClient(server.base_url, API_TOKEN, retry=RetryPolicy(max_retries=0))
        redis = connect_redis(redis_server.url)
        tokens = SessionTokenService(
            client,
            budget=RedisIssuanceBudget(redis, prefix, POLICY),
            store=RedisTokenStore(redis, prefix),
        )
        built.append(Worker(client, redis, tokens))
    yield built
    for worker in built:
        await worker.client.aclose()
        await worker.redis.aclose()


def issued(server: ScriptedServer) -> int:
    return server.count("POST", ISSUE)


async def test_a_burst_spread_over_two_workers_costs_one_issuance(
    workers: list[Worker], server: ScriptedServer
) -> None:
    answers = await asyncio.gather(*(workers[i % 2].tokens.token_for(ALICE) for i in range(100)))

    assert len({answer.token for answer in answers}) == 1
    assert issued(server) == 1
    shared = [worker.tokens.stats for worker in workers]
    assert sum(stats.issued for stats in shared) == 1


async def test_a_page_view_on_the_other_worker_reuses_the_token(
    workers: list[Worker], server: ScriptedServer
) -> None:
    first = await workers[0].tokens.token_for(ALICE)
    second = await workers[1].tokens.token_for(ALICE)

    assert second.token == first.token
    assert issued(server) == 1
    assert workers[1].tokens.stats.reused == 1


async def test_a_revocation_on_one_worker_reaches_the_other_at_once(
    workers: list[Worker], server: ScriptedServer
) -> None:
    before = await workers[0].tokens.token_for(ALICE)
    assert (await workers[1].tokens.token_for(ALICE)).token == before.token

    await workers[0].tokens.revoke(ALICE.user_id)
    after = await workers[1].tokens.token_for(ALICE)

    assert after.token != before.token
    assert issued(server) == 2
    assert server.count("DELETE", ISSUE) == 1


async def test_a_token_issued_while_another_worker_revokes_is_not_cached(
    workers: list[Worker], server: ScriptedServer, fake: FakeSendbird
) -> None:
    fake.token_delay = 0.3
    in_flight = asyncio.create_task(workers[1].tokens.token_for(ALICE))
    await asyncio.sleep(0.1)  # worker 1's POST is at Sendbird now
    await workers[0].tokens.forget(ALICE.user_id)
    late = await in_flight

    fake.token_delay = 0.0
    fresh = await workers[0].tokens.token_for(ALICE)

    assert fresh.token != late.token, "the late token must not refill the shared cache"
    assert issued(server) == 2


async def test_refreshes_on_two_workers_seconds_apart_share_the_young_token(
    workers: list[Worker], server: ScriptedServer
) -> None:
    """The widget's onSessionTokenRequired in two tabs served by different workers."""
    first = await workers[0].tokens.token_for(ALICE, force_new=True)
    second = await workers[1].tokens.token_for(ALICE, force_new=True)

    assert second.token == first.token
    assert issued(server) == 1


async def test_a_refresh_replaces_the_shared_token_for_page_views(
    workers: list[Worker], server: ScriptedServer
) -> None:
    page_view = await workers[0].tokens.token_for(ALICE)
    refreshed = await workers[1].tokens.token_for(ALICE, force_new=True)
    next_view = await workers[0].tokens.token_for(ALICE)

    assert refreshed.token != page_view.token
    assert next_view.token == refreshed.token
    assert issued(server) == 2


async def test_the_per_user_limit_holds_across_workers(
    redis_server: RedisServer, prefix: str
) -> None:
    policy = IssuancePolicy(tokens_per_user_per_minute=3, platform_posts_per_second=100)
    redis_a, redis_b = connect_redis(redis_server.url), connect_redis(redis_server.url)
    try:
        worker_a = RedisIssuanceBudget(redis_a, prefix, policy)
        worker_b = RedisIssuanceBudget(redis_b, prefix, policy)
        await worker_a.admit_token("u1")
        await worker_b.admit_token("u1")
        await worker_a.admit_token("u1")
        with pytest.raises(IssuanceBudgetExceededError) as refused:
            await worker_b.admit_token("u1")
        await worker_b.admit_token("u2")  # another user has budget of their own
    finally:
        await redis_a.aclose()
        await redis_b.aclose()

    assert refused.value.scope == "user"
    assert 55 < refused.value.retry_after <= 60


async def test_app_wide_slots_are_shared_in_arrival_order(
    redis_server: RedisServer, prefix: str
) -> None:
    """Two slots per second for the whole app, whichever worker asks."""
    policy = IssuancePolicy(platform_posts_per_second=2, max_wait=1.5)
    waits_a, waits_b = Recorder(), Recorder()
    redis_a, redis_b = connect_redis(redis_server.url), connect_redis(redis_server.url)
    try:
        worker_a = RedisIssuanceBudget(redis_a, prefix, policy, sleep=waits_a)
        worker_b = RedisIssuanceBudget(redis_b, prefix, policy, sleep=waits_b)
        await worker_a.admit_post()
        await worker_b.admit_post()
        await worker_a.admit_post()  # the third slot starts a second after the first
        await worker_b.admit_post()
        with pytest.raises(IssuanceBudgetExceededError) as refused:
            await worker_a.admit_post()  # would start two seconds on: over max_wait
    finally:
        await redis_a.aclose()
        await redis_b.aclose()

    assert waits_a.waits == [pytest.approx(1.0, abs=0.25)]
    assert waits_b.waits == [pytest.approx(1.0, abs=0.25)]
    assert refused.value.scope == "app"


async def test_a_refused_slot_gives_the_user_their_issuance_back(
    redis_server: RedisServer, prefix: str
) -> None:
    policy = IssuancePolicy(tokens_per_user_per_minute=1, platform_posts_per_second=1, max_wait=0)
    redis = connect_redis(redis_server.url)
    try:
        budget = RedisIssuanceBudget(redis, prefix, policy, sleep=Recorder())
        await budget.admit_post()  # someone else took this second's slot
        with pytest.raises(IssuanceBudgetExceededError) as refused:
            await budget.admit_token("u1")
        assert refused.value.scope == "app"
        await asyncio.sleep(1.05)
        await budget.admit_token("u1")  # the user's one token a minute was given back
    finally:
        await redis.aclose()


async def test_a_worker_waits_for_the_other_workers_issuance_then_gives_up(
    redis_server: RedisServer, prefix: str
) -> None:
    redis = connect_redis(redis_server.url)
    try:
        holder, waiter = RedisTokenStore(redis, prefix), RedisTokenStore(redis, prefix)
        async with holder.issuing("u1", max_wait=5):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with waiter.issuing("u1", max_wait=0.3):
                    pytest.fail("two workers issued for one user at once")
            waited = time.monotonic() - started
        async with waiter.issuing("u1", max_wait=0.3):
            pass  # free again once the holder is done
    finally:
        await redis.aclose()
    assert 0.25 < waited < 3.0


async def test_unreachable_redis_refuses_clearly_and_issues_nothing(
    server: ScriptedServer, fake: FakeSendbird, prefix: str
) -> None:
    redis = connect_redis("redis://127.0.0.1:9/0")  # nothing listens on the discard port
    client = SendbirdClient(server.base_url, API_TOKEN, retry=RetryPolicy(max_retries=0))
    tokens = SessionTokenService(
        client, budget=RedisIssuanceBudget(redis, prefix), store=RedisTokenStore(redis, prefix)
    )
    try:
        with pytest.raises(SharedStateUnavailableError, match="Redis"):
            await tokens.token_for(ALICE)
    finally:
        await client.aclose()
        await redis.aclose()
    assert issued(server) == 0


async def test_the_workers_recover_when_redis_comes_back(
    workers: list[Worker], redis_server: RedisServer, server: ScriptedServer
) -> None:
    await workers[0].tokens.token_for(ALICE)
    redis_server.stop()
    try:
        with pytest.raises(SharedStateUnavailableError):
            await workers[1].tokens.token_for(ALICE)
    finally:
        redis_server.start()
    # Redis ran without persistence: the cache is gone, the token is issued afresh.
    again = await workers[1].tokens.token_for(ALICE)
    assert again.user_id == ALICE.user_id
    assert issued(server) == 2


async def test_a_token_request_ends_at_its_deadline(
    server: ScriptedServer, fake: FakeSendbird
) -> None:
    fake.token_delay = 1.5
    client = SendbirdClient(server.base_url, API_TOKEN, retry=RetryPolicy(max_retries=0))
    tokens = SessionTokenService(client, deadline=timedelta(seconds=0.4))
    try:
        started = time.monotonic()
        with pytest.raises(TokenRequestDeadlineError, match=r"0\.4 s"):
            await tokens.token_for(ALICE)
        elapsed = time.monotonic() - started
        # The issuance itself went on and fills the cache for the next request.
        await asyncio.sleep(1.5)
        fake.token_delay = 0.0
        await tokens.token_for(ALICE)
    finally:
        await client.aclose()
    assert elapsed < 1.0
    assert issued(server) == 1
