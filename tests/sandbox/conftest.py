"""Fixtures for the sandbox tests: one real server on 127.0.0.1, reset before every test.

The server runs in its own thread (``SandboxServer``) with a fresh SQLite file, so tests talk
to it exactly like our server and the widget do: real HTTP with httpx and a real WebSocket
with the ``websockets`` client.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[1], _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sandbox_helpers import API_TOKEN, Sandbox, fast_config  # noqa: E402

from sample_app.sandbox import SandboxServer  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker even when the project's pytest settings are not loaded."""
    config.addinivalue_line("markers", "sandbox: tests of the local Sendbird sandbox")


def _make_sandbox(server: SandboxServer) -> Sandbox:
    http = httpx.Client(base_url=server.http_url, headers={"Api-Token": API_TOKEN}, timeout=10)
    anon = httpx.Client(base_url=server.http_url, timeout=10)
    return Sandbox(server=server, http=http, anon=anon)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One sandbox for the whole session, on a free port with a fresh SQLite file."""
    db_path = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    server = SandboxServer(fast_config(str(db_path)), host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _shared_sandbox(sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    handle = _make_sandbox(sandbox_server)
    try:
        yield handle
    finally:
        handle.http.close()
        handle.anon.close()


@pytest.fixture
def sandbox(_shared_sandbox: Sandbox) -> Sandbox:
    """The shared sandbox, reset (data, faults, counters, sockets) before the test."""
    response = _shared_sandbox.http.post("/__sandbox__/reset")
    assert response.status_code == 200, response.text
    _shared_sandbox.http.put("/__sandbox__/rate-limits", json={}).raise_for_status()
    return _shared_sandbox


@pytest.fixture
def start_sandbox(
    tmp_path: Path,
) -> Iterator[Callable[..., Sandbox]]:
    """Start extra sandboxes with custom settings; all are stopped after the test."""
    started: list[Sandbox] = []

    def start(db_path: str | None = None, **changes: Any) -> Sandbox:
        path = db_path or str(tmp_path / f"extra-{len(started)}.db")
        server = SandboxServer(fast_config(path, **changes), port=0).start()
        handle = _make_sandbox(server)
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in started:
            handle.http.close()
            handle.anon.close()
            handle.server.stop()
