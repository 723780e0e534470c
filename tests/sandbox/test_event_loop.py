"""The store never blocks the event loop the sandbox shares with its host (the Reflex backend).

The sandbox runs in this test's own loop (``SandboxServer.serve``), as it does inside the app.
A thread holds the store's lock, so every SQLite call waits; meanwhile the loop must keep
ticking and answer what needs no database, and the waiting request must finish once the lock
is released, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from sandbox_helpers import API_TOKEN, BOT_ID, Sandbox, fast_config

from sample_app.sandbox import SandboxServer
from sample_app.sandbox.store import Store

HOLD_SECONDS = 3.0


@contextlib.asynccontextmanager
async def sandbox_in_this_loop(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    """A sandbox served by the running loop, cancelled afterwards."""
    server = SandboxServer(fast_config(str(tmp_path / "loop.db")), port=0)
    task = asyncio.create_task(server.serve())
    try:
        await server.wait_started()
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.contextmanager
def store_held(store: Store) -> Iterator[threading.Event]:
    """Hold the store's lock from another thread until the yielded event is set (or 3 s)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lock:
            held.set()
            release.wait(HOLD_SECONDS)

    holder = threading.Thread(target=hold, name="store-holder")
    holder.start()
    assert held.wait(2)
    try:
        yield release
    finally:
        release.set()
        holder.join()


async def test_a_slow_store_does_not_block_the_loop(tmp_path: Path) -> None:
    async with (
        sandbox_in_this_loop(tmp_path) as server,
        httpx.AsyncClient(
            base_url=server.http_url, headers={"Api-Token": API_TOKEN}, timeout=10
        ) as client,
    ):
        await client.get("/__sandbox__/health")  # connection warmed up
        with store_held(server.app.state.sandbox.store) as release:
            slow = asyncio.create_task(client.get(f"/v3/users/{BOT_ID}"))
            before = time.monotonic()
            await asyncio.sleep(0.2)  # the request reaches the store and waits there
            lag = time.monotonic() - before - 0.2
            assert lag < 0.5, f"the loop was blocked for {lag:.2f} s"
            assert not slow.done()
            started = time.monotonic()
            async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as other:
                health = await other.get("/__sandbox__/health")
            answered_in = time.monotonic() - started
            assert health.status_code == 200
            assert answered_in < 0.5, f"health took {answered_in:.2f} s"
            release.set()
            response = await asyncio.wait_for(slow, 5)
        assert response.status_code == 200
        assert response.json()["user_id"] == BOT_ID


async def test_a_socket_keeps_answering_while_the_store_is_busy(start_sandbox) -> None:
    """Thread mode: one loop serves every socket; PING needs no store and must not wait."""
    sandbox: Sandbox = start_sandbox()
    client = await sandbox.login()
    async with client:
        with store_held(sandbox.server.app.state.sandbox.store) as release:
            slow = asyncio.create_task(
                asyncio.to_thread(lambda: sandbox.http.get(f"/v3/users/{BOT_ID}"))
            )
            await asyncio.sleep(0.2)  # that request now waits for the store
            started = time.monotonic()
            await client.send("PING", {"id": 7})
            pong, _ = await client.wait_for("PONG", 2)
            assert pong["id"] == 7
            health = await asyncio.to_thread(lambda: sandbox.anon.get("/__sandbox__/health"))
            assert health.status_code == 200
            assert time.monotonic() - started < 1.0
            assert not slow.done()
            release.set()
            assert (await asyncio.wait_for(slow, 5)).status_code == 200


async def test_messages_keep_their_order(sandbox: Sandbox) -> None:
    """Frames sent back to back are stored, acked and listed in the order they were sent."""
    client, url = await sandbox.chat()
    async with client:
        texts = [f"message {i}" for i in range(15)]
        frame = "".join(
            "MESG" + f'{{"channel_url":"{url}","message":"{text}","req_id":"r{i}"}}\n'
            for i, text in enumerate(texts)
        )
        await client.send_raw(frame)
        acks = []
        while len(acks) < len(texts):
            code, payload = await client.recv(5)
            if code == "MESG" and payload.get("req_id"):
                acks.append(payload)
        assert [a["req_id"] for a in acks] == [f"r{i}" for i in range(len(texts))]
        ids = [a["msg_id"] for a in acks]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        listed = sandbox.anon.get(
            f"/v3/group_channels/{url}/messages",
            params={"prev_limit": 100},
            headers={"Session-Key": client.logi["key"]},
        ).json()["messages"]
        mine = [m["message"] for m in listed if m["user"]["user_id"] == "user1"]
        assert mine == texts
