"""Bounded Sendbird calls in flight: an orderly queue, a clear timeout, nothing retried locally."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sample_app.sendbird_api import (
    DEFAULT_CALLS_IN_FLIGHT,
    CallSlots,
    SendbirdClient,
    SendbirdQueueTimeoutError,
    SendbirdServerError,
    SendbirdTimeoutError,
)
from tests.sendbird_api.scripted_server import (
    ClientFactory,
    Reply,
    ScriptedServer,
    SleepRecorder,
    sendbird_error,
)

USER_JSON = {"user_id": "alice", "nickname": "Alice", "profile_url": "", "is_online": False}
ENDPOINT = "GET /v3/users/{user_id}"


async def _settle() -> None:
    """Let every ready task run until each blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


# ------------------------------------------------------------------- the queue itself


async def test_waiters_are_served_in_arrival_order() -> None:
    slots = CallSlots(1, max_wait=5)
    served: list[int] = []
    release_holder = asyncio.Event()

    async def holder() -> None:
        async with slots.slot(ENDPOINT):
            await release_holder.wait()

    async def waiter(number: int) -> None:
        async with slots.slot(ENDPOINT):
            served.append(number)
            await asyncio.sleep(0)  # hold the slot across a scheduling point

    first = asyncio.create_task(holder())
    await _settle()
    waiters = []
    for number in range(8):
        waiters.append(asyncio.create_task(waiter(number)))
        await asyncio.sleep(0)  # arrive one after the other
    await _settle()
    assert (slots.in_flight, slots.waiting) == (1, 8)
    release_holder.set()
    await asyncio.gather(first, *waiters)
    assert served == list(range(8))
    assert (slots.in_flight, slots.waiting) == (0, 0)


async def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    slots = CallSlots(1, max_wait=5)
    order: list[str] = []
    release_holder = asyncio.Event()

    async def take(name: str, hold: asyncio.Event | None = None) -> None:
        async with slots.slot(ENDPOINT):
            order.append(name)
            if hold is not None:
                await hold.wait()

    holder = asyncio.create_task(take("holder", release_holder))
    await _settle()
    queued = asyncio.create_task(take("queued"))
    await _settle()
    # The holder releases and, in the same step, a newcomer asks: the slot is the queued one's.
    release_holder.set()
    newcomer = asyncio.create_task(take("newcomer"))
    await asyncio.gather(holder, queued, newcomer)
    assert order == ["holder", "queued", "newcomer"]


async def test_no_more_than_the_limit_hold_slots_at_once() -> None:
    slots = CallSlots(3, max_wait=5)
    most = 0

    async def call() -> None:
        nonlocal most
        async with slots.slot(ENDPOINT):
            most = max(most, slots.in_flight)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(call() for _ in range(20)))
    assert most == 3
    assert (slots.in_flight, slots.waiting) == (0, 0)


async def test_a_wait_that_runs_out_says_the_call_was_not_sent() -> None:
    slots = CallSlots(1, max_wait=0.1)
    release_holder = asyncio.Event()

    async def holder() -> None:
        async with slots.slot(ENDPOINT):
            await release_holder.wait()

    first = asyncio.create_task(holder())
    await _settle()
    with pytest.raises(SendbirdQueueTimeoutError) as caught:
        async with slots.slot(ENDPOINT):
            pytest.fail("the slot was never free")
    message = str(caught.value)
    assert ENDPOINT in message and "not sent" in message and "1 Sendbird call slots" in message
    assert caught.value.endpoint == ENDPOINT
    assert not caught.value.retryable
    assert isinstance(caught.value, SendbirdTimeoutError)  # callers catching timeouts still do
    # The timed-out waiter left the queue; the slot still works for the next caller.
    assert slots.waiting == 0
    release_holder.set()
    await first
    async with slots.slot(ENDPOINT):
        assert slots.in_flight == 1
    assert slots.in_flight == 0


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    slots = CallSlots(1, max_wait=5)
    release_holder = asyncio.Event()
    served: list[str] = []

    async def take(name: str, hold: asyncio.Event | None = None) -> None:
        async with slots.slot(ENDPOINT):
            served.append(name)
            if hold is not None:
                await hold.wait()

    holder = asyncio.create_task(take("holder", release_holder))
    await _settle()
    cancelled = asyncio.create_task(take("cancelled"))
    last = asyncio.create_task(take("last"))
    await _settle()
    # The slot is handed to `cancelled` and, before it runs, its request is abandoned.
    release_holder.set()
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(holder, last)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert served == ["holder", "last"]
    assert (slots.in_flight, slots.waiting) == (0, 0)


@pytest.mark.parametrize(("limit", "max_wait"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, float("nan"))])
def test_nonsensical_bounds_are_refused(limit: int, max_wait: float) -> None:
    with pytest.raises(ValueError, match=r"limit|max_wait"):
        CallSlots(limit, max_wait=max_wait)


# ----------------------------------------------------------- through the real client


async def test_the_client_keeps_at_most_its_limit_at_sendbird(
    server: ScriptedServer, make_client: ClientFactory
) -> None:
    server.reply(*[Reply(json=USER_JSON, delay=0.05) for _ in range(12)])
    client: SendbirdClient = make_client(calls_in_flight=3)
    assert client.call_slots is not None and client.call_slots.limit == 3
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            assert client.call_slots is not None
            most = max(most, client.call_slots.in_flight)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    users = await asyncio.gather(*(client.get_user("alice") for _ in range(12)))
    watcher.cancel()
    assert [user.user_id for user in users if user] == ["alice"] * 12
    assert most == 3
    assert len(server.requests) == 12


async def test_a_call_that_finds_no_slot_in_time_is_not_sent_or_retried(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    server.reply(Reply(json=USER_JSON, delay=1.0), Reply(json=USER_JSON))
    client: SendbirdClient = make_client(calls_in_flight=1, timeout=httpx.Timeout(5.0, pool=0.2))
    slow = asyncio.create_task(client.get_user("alice"))
    await asyncio.sleep(0.05)
    with pytest.raises(SendbirdQueueTimeoutError) as caught:
        await client.get_user("bob")
    assert "not sent" in str(caught.value)
    assert sleeps.delays == []  # no retry
    assert await slow is not None
    assert [request.path for request in server.requests] == ["/v3/users/alice"]
    assert client.call_counts == {ENDPOINT: 1}  # the queued call was never sent


async def test_a_pool_timeout_is_not_retried(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    # The plain configuration (no call slots) with a one-connection pool: the second call
    # waits for httpx's pool, which times out. That wait was local: retrying it only queues
    # again, so the client gives up at once and says the call was not sent.
    server.reply(Reply(json=USER_JSON, delay=1.0), Reply(json=USER_JSON))
    client: SendbirdClient = make_client(
        calls_in_flight=None,
        timeout=httpx.Timeout(5.0, pool=0.2),
        transport=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1)),
    )
    assert client.call_slots is None
    slow = asyncio.create_task(client.get_user("alice"))
    await asyncio.sleep(0.05)
    with pytest.raises(SendbirdQueueTimeoutError) as caught:
        await client.get_user("bob")
    assert caught.value.attempts == 1
    assert "not sent" in str(caught.value) and "pool timeout (0.2 s)" in str(caught.value)
    assert sleeps.delays == []
    assert await slow is not None
    assert [request.path for request in server.requests] == ["/v3/users/alice"]


def test_the_default_bound_is_what_the_settings_document() -> None:
    from sample_app import config

    assert config.DEFAULT_CALLS_IN_FLIGHT == DEFAULT_CALLS_IN_FLIGHT
    settings = config.load_settings(environ={}, env_file=None)
    assert settings.calls_in_flight == DEFAULT_CALLS_IN_FLIGHT
    assert (
        config.load_settings(
            environ={"SENDBIRD_CALLS_IN_FLIGHT": "0"}, env_file=None
        ).calls_in_flight
        is None
    )
    with pytest.raises(config.ConfigError, match="SENDBIRD_CALLS_IN_FLIGHT"):
        config.load_settings(environ={"SENDBIRD_CALLS_IN_FLIGHT": "1000"}, env_file=None)


def test_httpcore_finds_sniffio() -> None:
    # Without sniffio httpcore's async backend retries a failing import on every request
    # (10-21 % of a worker's CPU under load); it must be installed with httpx.
    assert importlib.util.find_spec("sniffio") is not None


async def test_an_urgent_call_waits_at_the_front() -> None:
    slots = CallSlots(1, max_wait=5)
    order: list[str] = []
    release_holder = asyncio.Event()

    async def take(name: str, *, urgent: bool = False, hold: asyncio.Event | None = None) -> None:
        async with slots.slot(ENDPOINT, urgent=urgent):
            order.append(name)
            if hold is not None:
                await hold.wait()

    holder = asyncio.create_task(take("holder", hold=release_holder))
    await _settle()
    queued = [asyncio.create_task(take(f"issue {n}")) for n in range(3)]
    await _settle()
    revocation = asyncio.create_task(take("revocation", urgent=True))
    await _settle()
    release_holder.set()
    await asyncio.gather(holder, *queued, revocation)
    assert order == ["holder", "revocation", "issue 0", "issue 1", "issue 2"]


async def test_a_revocation_overtakes_a_burst_of_issuances(
    server: ScriptedServer, make_client: ClientFactory
) -> None:
    server.reply(*[Reply(json={"token": "t", "expires_at": 2**41}, delay=0.05) for _ in range(7)])
    server.reply(Reply(status=200, body=b""))  # the revocation's answer, whenever it is sent
    client: SendbirdClient = make_client(calls_in_flight=1)
    expires = datetime.now(UTC) + timedelta(minutes=30)
    burst = [asyncio.create_task(client.issue_session_token("alice", expires)) for _ in range(4)]
    await asyncio.sleep(0.01)  # the first is at the server, three wait
    await client.revoke_session_tokens("alice")
    assert [r.method for r in server.requests[:2]] == ["POST", "DELETE"]
    for task in burst:
        task.cancel()
    await asyncio.gather(*burst, return_exceptions=True)


async def test_a_retry_that_finds_no_slot_reports_the_failure_that_was_sent(
    server: ScriptedServer, make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    # The first attempt reached Sendbird and failed (503); the retry found every slot busy.
    # The caller must learn about the 503, not that "nothing was sent".
    server.reply(sendbird_error(500100, "Service unavailable", status=503))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold_the_slot(_: float) -> None:  # the retry's backoff: another call takes the slot
        async def holder() -> None:
            assert client.call_slots is not None
            async with client.call_slots.slot(ENDPOINT):
                holding.set()
                await release.wait()

        asyncio.get_running_loop().create_task(holder())
        await holding.wait()

    client: SendbirdClient = make_client(
        calls_in_flight=1, timeout=httpx.Timeout(5.0, pool=0.2), sleep=hold_the_slot
    )
    with pytest.raises(SendbirdServerError) as caught:
        await client.get_user("alice")
    assert not isinstance(caught.value, SendbirdQueueTimeoutError)
    assert isinstance(caught.value.__cause__, SendbirdQueueTimeoutError)
    release.set()
    assert len(server.requests) == 1
