"""Running the sandbox: persistence across restarts, thread and in-loop modes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import API_TOKEN, APP_ID, BOT_ID, Sandbox, fast_config
from wsclient import WidgetClient

from sample_app.sandbox import SandboxAddress, SandboxConfig, SandboxServer, serve


async def test_data_survives_a_restart(start_sandbox, tmp_path: Path) -> None:
    db_path = str(tmp_path / "persist.db")
    first: Sandbox = start_sandbox(db_path=db_path)
    client, url = await first.chat("user1")
    token = first.issue_token("user1")
    async with client:
        await client.request("MESG", {"channel_url": url, "message": "remember me"})
        await client.wait_for("MESG")
    key = client.logi["key"]
    await asyncio.to_thread(first.server.stop)

    second: Sandbox = start_sandbox(db_path=db_path)
    assert second.server.port != 0
    assert second.http.get("/v3/users/user1").json()["nickname"] == "Alice"
    headers = {"Session-Key": key}
    channel = second.anon.get(f"/v3/sdk/group_channels/{url}", headers=headers)
    assert channel.status_code == 200
    assert BOT_ID in [m["user_id"] for m in channel.json()["members"]]
    messages = second.anon.get(
        f"/v3/group_channels/{url}/messages", params={"prev_limit": 10}, headers=headers
    ).json()["messages"]
    assert messages[0]["message"] == "remember me"
    assert messages[1]["user"]["user_id"] == BOT_ID
    # Issued tokens survive too, and new message ids keep growing.
    again = await second.connect(token=token, user_id="user1")
    async with again:
        await again.read_login()
        _, ack = await again.request("MESG", {"channel_url": url, "message": "back"})
        assert ack["msg_id"] > messages[-1]["msg_id"]

    second.http.post("/__sandbox__/reset").raise_for_status()
    await asyncio.to_thread(second.server.stop)
    third: Sandbox = start_sandbox(db_path=db_path)
    assert third.http.get("/v3/users/user1").json()["code"] == 400201
    assert third.http.get(f"/v3/users/{BOT_ID}").status_code == 200


def test_context_manager_and_addresses(tmp_path: Path) -> None:
    config = fast_config(str(tmp_path / "cm.db"))
    with SandboxServer(config) as server:
        assert server.running
        assert server.port > 0
        assert server.http_url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.http_url}/__sandbox__/health").json() == {"ok": True}
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.http_url}/__sandbox__/health", timeout=1)


@pytest.mark.allow_error_logs  # the clash is logged at ERROR, on purpose
def test_port_in_use_raises(start_sandbox) -> None:
    taken: Sandbox = start_sandbox()
    clash = SandboxServer(fast_config(":memory:"), port=taken.server.port)
    with pytest.raises(RuntimeError):
        clash.start()
    assert taken.http.get("/__sandbox__/health").status_code == 200


def test_default_config_has_a_random_api_token() -> None:
    assert SandboxConfig().api_token != SandboxConfig().api_token
    with pytest.raises(ValueError):
        SandboxConfig(session_key_ttl=0)


async def test_stop_closes_websockets_promptly(start_sandbox) -> None:
    sandbox: Sandbox = start_sandbox()
    client = await sandbox.login()
    started = time.monotonic()
    await asyncio.to_thread(sandbox.server.stop)
    assert time.monotonic() - started < 2.0
    assert await client.wait_closed(2.0) == 1001


async def test_serve_inside_a_running_loop(tmp_path: Path) -> None:
    handler_before = signal.getsignal(signal.SIGINT)
    server = SandboxServer(fast_config(str(tmp_path / "loop.db")))
    task = asyncio.create_task(server.serve())
    address = await server.wait_started()
    assert isinstance(address, SandboxAddress)
    assert signal.getsignal(signal.SIGINT) is handler_before
    headers = {"Api-Token": API_TOKEN}
    async with httpx.AsyncClient(base_url=address.http_url, headers=headers) as http:
        created = await http.post(
            "/v3/users", json={"user_id": "u", "nickname": "U", "profile_url": ""}
        )
        assert created.status_code == 200
        token = (await http.post("/v3/users/u/token")).json()["token"]
    client = await WidgetClient.open(address.ws_url, APP_ID, token=token, user_id="u")
    assert (await client.read_login())["user_id"] == "u"
    started = time.monotonic()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3.0
    assert await client.wait_closed(2.0) == 1001
    assert signal.getsignal(signal.SIGINT) is handler_before


async def test_module_serve_reports_its_address(tmp_path: Path) -> None:
    ready: asyncio.Future[SandboxAddress] = asyncio.get_running_loop().create_future()
    config = fast_config(str(tmp_path / "fn.db"))
    task = asyncio.create_task(serve(config, "127.0.0.1", 0, on_ready=ready.set_result))
    address = await asyncio.wait_for(ready, 5)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{address.http_url}/__sandbox__/health")
        assert response.json() == {"ok": True}
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_serve_fails_cleanly_when_the_port_is_taken(start_sandbox) -> None:
    taken: Sandbox = start_sandbox()
    server = SandboxServer(fast_config(":memory:"), port=taken.server.port)
    task = asyncio.create_task(server.serve())
    with pytest.raises(RuntimeError):
        await server.wait_started()
    with pytest.raises(RuntimeError):
        await task
