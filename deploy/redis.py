"""A Redis server for the demo site and the tests: Debian's `redis-server`, on 127.0.0.1.

Reflex's Redis state manager, the shared session-token cache and the issuance budget all
live in it (`sample_app/redis_shared.py`). The demo site keeps an append-only file so a
restart loses no tab state; the tests run without persistence.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from deploy.processes import StartsAndStops, free_port, parent_death_signal

__all__ = ["RedisServer", "RedisServerError"]

START_TIMEOUT_SECONDS = 10.0


class RedisServerError(RuntimeError):
    """Redis could not be started (missing binary, port taken, early exit)."""


class RedisServer(StartsAndStops):
    """One `redis-server` process with its data in ``data_dir``.

    Args:
        data_dir: Where its working files (and the append-only file) go; created if missing.
        port: TCP port; 0 picks a free one (kept across restarts).
        host: Interface to bind; loopback by default (Redis holds bearer tokens).
        persistent: Keep an append-only file, fsynced every second, so a restart keeps
            the data (the demo site); off for tests.
    """

    def __init__(
        self, data_dir: Path, port: int = 0, host: str = "127.0.0.1", *, persistent: bool = False
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL for `REFLEX_REDIS_URL` (database 0)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start Redis and wait until it answers PING.

        Raises:
            RedisServerError: `redis-server` is not installed, or it did not come up.
        """
        if self.running:
            return
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RedisServerError(
                "redis-server is not installed: install Debian's package `redis-server` "
                "(apt-get install redis-server; `make test` and `make demo-site` do it as root)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        command = [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
            *persistence,
        ]
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),  # only sets the parent-death signal
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # Ctrl-C or a failure while waiting: leave no orphan behind
            raise

    def stop(self) -> None:
        """Stop Redis (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop, then start again on the same port (what a Redis restart looks like)."""
        self.stop()
        self.start()

    def _wait_until_ready(self) -> None:
        give_up = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < give_up:
            if self._process is not None and self._process.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                self._process = None
                raise RedisServerError(f"redis-server exited at start on port {self.port}:\n{tail}")
            if self._answers_ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port} within 10 s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False
