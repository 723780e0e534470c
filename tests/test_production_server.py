"""`python -m sample_app.server` for real: a process on 127.0.0.1 with the embedded sandbox.

What it promises (sample_app/server.py): the app answers, a WebSocket that offers
permessage-deflate (as every browser does) is accepted uncompressed, the server does not
name itself, and SIGTERM ends it cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from deploy.processes import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The production server on a free port, on its own embedded sandbox."""
    workdir = tmp_path_factory.mktemp("production-server")
    port, sandbox_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SENDBIRD_", "SANDBOX_", "REFLEX_REDIS", "GRANIAN_"))
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "REFLEX_DB_URL": f"sqlite:///{workdir / 'accounts.db'}",
            "REFLEX_STATES_WORKDIR": str(workdir / "states"),
            "SANDBOX_PORT": str(sandbox_port),
            "SANDBOX_DB_PATH": str(workdir / "sandbox.db"),
            "LOG_LEVEL": "WARNING",
        }
    )
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this project's module
        [sys.executable, "-m", "sample_app.server", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    killed = False
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (workdir / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /ping within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                killed = True
                process.kill()
                process.wait()
        log.close()
    # After the tests: SIGTERM ended it on its own (uvicorn shuts down gracefully, then exits
    # by the signal it caught, as a supervisor expects).
    assert not killed, "SIGTERM did not stop the server within 20 s"
    assert process.returncode in (0, -signal.SIGTERM), (workdir / "server.log").read_text()[-3000:]


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
