"""`python -m sample_app.server` for real: a process on 127.0.0.1 with the embedded sandbox.

What it promises (sample_app/server.py): the app answers, a WebSocket that offers
permessage-deflate (as every browser does) is accepted uncompressed, the server does not
name itself, SIGTERM ends it cleanly, and without Redis the tabs' states stay in memory:
nothing is written to disk, and a tab that reconnects after a restart is signed in again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from benchmarks.load_client import Events, Tab
from deploy.processes import free_port
from sample_app.accounts import AccountService, create_engine_for
from sample_app.config import REDIS_URL_VARIABLE
from sample_app.server import STATE_MANAGER_MODE_VARIABLE, state_manager_mode

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ProductionServer:
    """One `python -m sample_app.server` process on a fixed port, startable again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port, sandbox_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.states_dir = workdir / "states"
        self.db_url = f"sqlite:///{workdir / 'accounts.db'}"
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SENDBIRD_", "SANDBOX_", "REFLEX_REDIS", "GRANIAN_"))
            and name != STATE_MANAGER_MODE_VARIABLE
        }
        self.env.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "REFLEX_DB_URL": self.db_url,
                "REFLEX_STATES_WORKDIR": str(self.states_dir),
                "SANDBOX_PORT": str(sandbox_port),
                "SANDBOX_DB_PATH": str(workdir / "sandbox.db"),
                "LOG_LEVEL": "WARNING",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def start(self) -> None:
        """Start the process and wait until `/ping` answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this project
                [sys.executable, "-m", "sample_app.server", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_tail()
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /ping within 60 s"
            time.sleep(0.2)

    def stop(self) -> bool:
        """SIGTERM, as a supervisor stops it; whether it ended on its own within 20 s."""
        if self.process is None or self.process.poll() is not None:
            return True
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The production server on a free port, on its own embedded sandbox."""
    production = ProductionServer(tmp_path_factory.mktemp("production-server"))
    try:
        production.start()
        yield production.url
    finally:
        stopped = production.stop()
    # After the tests: SIGTERM ended it on its own (uvicorn shuts down gracefully, then exits
    # by the signal it caught, as a supervisor expects).
    assert stopped, "SIGTERM did not stop the server within 20 s"
    assert production.process is not None
    assert production.process.returncode in (0, -signal.SIGTERM), production.log_tail()


def test_the_app_answers(server: str) -> None:
    ready = httpx.get(f"{server}/readyz", timeout=15)
    assert ready.status_code == 200, ready.text
    assert "server" not in {name.lower() for name in ready.headers}


def test_a_socket_that_offers_compression_gets_none(server: str) -> None:
    # permessage-deflate keeps a zlib compressor and decompressor per connection (about
    # 100 KiB of each idle tab); Chromium offers it on every socket.
    url = server.replace("http://", "ws://") + "/_event/?EIO=4&transport=websocket"
    with websockets.sync.client.connect(url, compression="deflate", open_timeout=10) as socket:
        opening = socket.recv(timeout=10)
        assert str(opening).startswith("0{"), opening  # Engine.IO's open packet
        assert socket.response is not None
        headers = {name.lower(): value for name, value in socket.response.headers.raw_items()}
    assert "sec-websocket-extensions" not in headers, headers
    assert "server" not in headers, headers


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "memory"),
        ({REDIS_URL_VARIABLE: "redis://127.0.0.1:6379/0"}, None),  # Reflex picks Redis
        ({REDIS_URL_VARIABLE: "  "}, "memory"),
        ({STATE_MANAGER_MODE_VARIABLE: "disk"}, None),  # the operator's choice stands
    ],
)
def test_the_state_store_is_memory_unless_redis_or_an_explicit_mode(
    environ: dict[str, str], expected: str | None
) -> None:
    assert state_manager_mode(environ) == expected


def test_the_tuned_collector_still_frees_garbage_cycles() -> None:
    # In a process of its own: freezing and thresholds are process-wide.
    script = """
import gc, weakref
from sample_app.server import GC_THRESHOLDS, tune_garbage_collector

class Node:
    pass

tune_garbage_collector()
assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()
assert gc.get_freeze_count() > 0
node = Node()
node.me = node  # a cycle: only the collector frees it
alive = weakref.ref(node)
del node
kept = [[] for _ in range(GC_THRESHOLDS[0] * 2)]  # objects a busy server allocates
assert alive() is None, "the cycle was never collected"
print("ok")
"""
    result = subprocess.run(  # noqa: S603 - this test's own script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_restart_writes_no_tab_state_and_the_tab_comes_back_signed_in(
    tmp_path: Path,
) -> None:
    production = ProductionServer(tmp_path)
    production.start()
    try:
        engine = create_engine_for(production.db_url)
        try:
            accounts = AccountService(engine)
            accounts.register("restart-user", "a long enough passphrase", "Restart User")
            sign_in = accounts.sign_in("restart-user", "a long enough passphrase", "test")
        finally:
            engine.dispose()
        events = Events.of_app()
        tab_token = str(uuid.uuid4())  # the browser keeps it in sessionStorage

        async def a_tab_asks_for_a_token() -> tuple[str, str]:
            tab = Tab(production.url, sign_in.sign_in_token, token=tab_token)
            try:
                # hydrate_and_load with the sign-in token, as the page sends it on every
                # (re)connect; open() returns once open_chat's first token arrived
                await tab.open(events, time_limit=30)
                return await tab.request_token(events, time_limit=30)
            finally:
                await tab.close()

        session_token, error = asyncio.run(a_tab_asks_for_a_token())
        assert session_token and not error
        assert production.stop(), "SIGTERM did not stop the server within 20 s"
        # Reflex's disk store would have flushed the tab's state (its sign-in and session
        # tokens among the vars) to .pkl files on the way down.
        written = sorted(p.name for p in production.states_dir.rglob("*") if p.is_file())
        assert written == [], written

        production.start()
        session_token, error = asyncio.run(a_tab_asks_for_a_token())
        assert session_token and not error, production.log_tail()
    finally:
        production.stop()
