"""The demo site, started by one command: nginx in front of N Reflex workers.

`python -m deploy.demo_site` (`make demo-site`) runs, in the foreground and with every part
on this machine::

    browser ──> nginx HOST:PORT ──┬── static frontend (exported copy under DATA_DIR)
                                  ├── /_event /ping /_health /readyz /_upload /api/ /embed
                                  │      └─> workers w1..wN on 127.0.0.1 (least connections)
                                  │              ├─> Redis (state, token cache, budget)
                                  │              ├─> PostgreSQL (accounts)
                                  │              └─> sandbox (Platform API)
            ──> nginx HOST:SANDBOX_PORT ───────────> sandbox (widget REST + WebSocket)

Everything it keeps (the PostgreSQL cluster, the sandbox's SQLite file, Redis's append-only
file, the frontend copy, nginx's temp files and logs, the generated nginx.conf, the sandbox
API token) lives under the data dir, so a second run reuses it and starts faster (the
frontend export is skipped when nothing it depends on changed). With `SENDBIRD_APP_ID` and
`SENDBIRD_API_TOKEN` set (environment or `.env`) no sandbox is started: the workers talk to
Sendbird.

`DemoSite` is the same topology as a class, for tests that kill a worker or restart Redis
under load (`kill_worker`, `start_worker`, `restart_redis`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from deploy.postgres import PostgresNotFoundError, PostgresServer, find_bin_dir
from deploy.processes import StartsAndStops, free_port, parent_death_signal
from deploy.redis import RedisServer
from sample_app.config import (
    IGNORE_ENV_FILE_VARIABLE,
    SANDBOX_EXTERNAL_VARIABLE,
    ConfigError,
    Secret,
    load_env_file,
    load_settings,
)

__all__ = [
    "DemoSite",
    "DemoSiteConfig",
    "DemoSiteError",
    "SendbirdCredentials",
    "main",
    "source_fingerprint",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = Path(__file__).with_name("nginx.conf.template")
DEFAULT_DATA_DIR = PROJECT_ROOT / ".demo-site"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 2
LOOPBACK = "127.0.0.1"
# What the exported frontend depends on (the stamp's fingerprint). `assets/external/` is
# left out: Reflex rewrites its links at every compile, from files under sample_app/.
FINGERPRINT_SOURCES = ("sample_app", "assets", "rxconfig.py", "reflex.lock")
_FINGERPRINT_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache"})
_FINGERPRINT_SKIP_PREFIXES = (("assets", "external"),)

WORKER_START_TIMEOUT = 180.0  # two cores shared with a frontend build: be patient
SANDBOX_START_TIMEOUT = 60.0
EXPORT_TIMEOUT = 900.0
PROXY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_POLL_SECONDS = 0.2
_LOG_TAIL_CHARS = 2500
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind

# Run in a child: export the frontend while holding Reflex's own lock on `.web` and copy
# the build before letting go, so another export (the test suite's deploy tier builds into
# the same `.web`) cannot swap the files between our build and our copy.
_EXPORT_SCRIPT = """
import shutil, sys
from pathlib import Path
from reflex.reflex import cli
from reflex.utils import path_ops, prerequisites

destination = Path(sys.argv[1])
web = prerequisites.get_web_dir()
with path_ops.file_lock(web):
    try:
        cli.main(["export", "--frontend-only", "--no-zip", "--env", "prod"], standalone_mode=False)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    staging = destination.with_name(destination.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(web / "build" / "client", staging)
old = destination.with_name(destination.name + ".old")
shutil.rmtree(old, ignore_errors=True)
if destination.exists():
    destination.rename(old)
staging.rename(destination)
shutil.rmtree(old, ignore_errors=True)
"""


class DemoSiteError(RuntimeError):
    """A part of the demo site could not be installed, started or reached."""


@dataclass(frozen=True)
class SendbirdCredentials:
    """Real Sendbird (or a Sendbird-compatible host) for the workers, instead of the sandbox.

    Attributes:
        app_id: `SENDBIRD_APP_ID`.
        api_token: `SENDBIRD_API_TOKEN` (a `Secret`: never shown).
        bot_id: `SENDBIRD_BOT_ID`.
        api_host: `SENDBIRD_API_HOST`, when not Sendbird's default for the app.
        ws_host: `SENDBIRD_WS_HOST`, likewise.
    """

    app_id: str
    api_token: Secret
    bot_id: str = ""
    api_host: str = ""
    ws_host: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SendbirdCredentials | None:
        """The credentials in `environ`, or None when neither app id nor token is set.

        The same rule as the app's (`sample_app.config.load_settings`): either one set
        means Sendbird mode, and the app then reports what is missing.
        """
        app_id = environ.get("SENDBIRD_APP_ID", "").strip()
        token = environ.get("SENDBIRD_API_TOKEN", "").strip()
        if not (app_id or token):
            return None
        return cls(
            app_id=app_id,
            api_token=Secret(token),
            bot_id=environ.get("SENDBIRD_BOT_ID", "").strip(),
            api_host=environ.get("SENDBIRD_API_HOST", "").strip(),
            ws_host=environ.get("SENDBIRD_WS_HOST", "").strip(),
        )

    def environ(self) -> dict[str, str]:
        """The `SENDBIRD_*` variables a worker gets (the token included: never print it)."""
        values = {
            "SENDBIRD_APP_ID": self.app_id,
            "SENDBIRD_API_TOKEN": self.api_token.reveal(),
            "SENDBIRD_BOT_ID": self.bot_id,
            "SENDBIRD_API_HOST": self.api_host,
            "SENDBIRD_WS_HOST": self.ws_host,
        }
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True)
class DemoSiteConfig:
    """What the demo site listens on, how many workers it runs, and where its data lives.

    Attributes:
        host: Interface nginx listens on (workers, Redis, PostgreSQL and the sandbox always
            stay on 127.0.0.1).
        port: nginx's port for the app.
        sandbox_port: nginx's port for the sandbox; None means `port + 1`.
        workers: How many backend worker processes (`python -m sample_app.server` each).
        data_dir: Where everything that outlives a run is kept.
        credentials: Real Sendbird; None starts the local sandbox.
        public_host: The host name browsers use; None means `host` (or this machine's
            name when `host` is a wildcard such as 0.0.0.0).
        install_missing: Install missing Debian packages with apt-get (only as root).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    sandbox_port: int | None = None
    workers: int = DEFAULT_WORKERS
    data_dir: Path = DEFAULT_DATA_DIR
    credentials: SendbirdCredentials | None = None
    public_host: str | None = None
    install_missing: bool = False

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, before anything is started."""
        problems = []
        if not 1 <= self.port <= 65535:
            problems.append(f"port {self.port} is out of range (1..65535)")
        if self.sandbox_port is not None and not 1 <= self.sandbox_port <= 65535:
            problems.append(f"sandbox port {self.sandbox_port} is out of range (1..65535)")
        if self.uses_sandbox and self.proxy_sandbox_port == self.port:
            problems.append("the sandbox port must differ from the app's port")
        if not 1 <= self.workers <= 32:
            problems.append(f"workers={self.workers}: use 1 to 32")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def uses_sandbox(self) -> bool:
        """Whether the local sandbox is started (no Sendbird credentials)."""
        return self.credentials is None

    @property
    def proxy_sandbox_port(self) -> int:
        """The sandbox's public port (nginx's second listener)."""
        return self.sandbox_port if self.sandbox_port is not None else self.port + 1

    @property
    def browser_host(self) -> str:
        """The host name in the URLs browsers get."""
        if self.public_host:
            return self.public_host
        return socket.gethostname() if self.host in _WILDCARD_HOSTS else self.host

    @property
    def check_host(self) -> str:
        """Where this process reaches nginx to check it (loopback for a wildcard host)."""
        return LOOPBACK if self.host in _WILDCARD_HOSTS else self.host


class ManagedProcess:
    """One child in a process group of its own, its output appended to a log file.

    Stopping signals the whole group, so whatever it forked (nginx's workers) goes with
    it and nothing is left behind.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        """The group leader's process id, once started."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether it was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Its exit status once it ended (negative: killed by that signal), else None."""
        return None if self._process is None else self._process.poll()

    def start(self) -> None:
        """Start it (stdin closed, stdout and stderr appended to `log_path`)."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} starting {self.name} ---\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._process = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_signal(signal.SIGTERM),  # only sets the parent-death signal
            )

    def signal_group(self, signal_number: int) -> None:
        """Send `signal_number` to its whole process group (ignored once it is gone)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal_number)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the group, SIGKILL after `timeout`; then sweep the group. Idempotent."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self._process.wait()
        self.signal_group(signal.SIGKILL)  # whatever of the group outlived its leader
        self._wait_group_gone()

    def kill(self) -> None:
        """SIGKILL the whole group and return once all of it is gone (a crash, for tests).

        Returning only then means the worker's port refuses connections from now on, so
        what a test sends next sees a dead worker, not one still closing its socket.
        """
        if self._process is None:
            return
        self.signal_group(signal.SIGKILL)
        self._process.wait()
        self._wait_group_gone()

    def _wait_group_gone(self, timeout: float = 5.0) -> None:
        """Wait until no process of the group is left (killed children exit a bit later)."""
        if self._process is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self._process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)

    def log_tail(self) -> str:
        """The end of what it logged since it was started (for error messages)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError as error:
            return f"(cannot read {self.log_path}: {error})"
        return text[-_LOG_TAIL_CHARS:].strip() or "(nothing logged)"


def _http_status(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET `url`: its status and body; (0, b"") when nothing answers."""
    request = urllib.request.Request(url, headers={"User-Agent": "demo-site-launcher"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (OSError, ValueError):
        return 0, b""


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(taken: set[int]) -> int:
    """A free loopback port not in `taken` (which then holds it)."""
    while True:
        port = free_port(LOOPBACK)
        if port not in taken:
            taken.add(port)
            return port


def source_fingerprint(
    root: Path = PROJECT_ROOT, sources: Sequence[str] = FINGERPRINT_SOURCES
) -> str:
    """A hash of what the exported frontend is built from (contents, not times).

    Hashing a few hundred small files takes milliseconds, and unlike modification times it
    survives a checkout, or Reflex rewriting `reflex.lock/` at each build, that leaves the
    contents as they were.
    """
    digest = hashlib.sha256()
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        digest.update(f"reflex {version('reflex')}\n".encode())
    for name in sources:
        top = root / name
        files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in files:
            relative = path.relative_to(root)
            if (
                not path.is_file()
                or _FINGERPRINT_SKIP_DIRS.intersection(relative.parts)
                or any(relative.parts[: len(p)] == p for p in _FINGERPRINT_SKIP_PREFIXES)
                or path.suffix == ".pyc"
            ):
                continue
            digest.update(relative.as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sources_without_lock() -> str:
    """The fingerprint of the app's own sources only (not Reflex's `reflex.lock/`)."""
    return source_fingerprint(sources=[s for s in FINGERPRINT_SOURCES if s != "reflex.lock"])


def _venv_bin() -> Path:
    """The virtualenv's `bin` (Node, npm and `reflex` come from there, as with make)."""
    project_venv = PROJECT_ROOT / ".venv" / "bin"
    return project_venv if (project_venv / "python").exists() else Path(sys.executable).parent


def reflex_base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` set up for Reflex as the Makefile does (`tests/stack.py` does the same).

    Node comes from the virtualenv, Reflex uses npm, sends no telemetry and does not look
    for new versions; the project's `.env` is left unread by children, because the
    launcher already read it and hands every child exactly the variables it means.
    """
    env = dict(environ)
    venv_bin = str(_venv_bin())
    path = env.get("PATH", "")
    if path.split(os.pathsep, 1)[0] != venv_bin:
        env["PATH"] = f"{venv_bin}{os.pathsep}{path}" if path else venv_bin
    env.setdefault("REFLEX_USE_NPM", "1")
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    env.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
    env["PYTHONUNBUFFERED"] = "1"
    env[IGNORE_ENV_FILE_VARIABLE] = "1"
    return env


# --- Debian packages -------------------------------------------------------------------


def _nginx_binary() -> str | None:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if Path(found).exists() else None


def _redis_binary() -> str | None:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    return found if Path(found).exists() else None


def _postgres_installed() -> bool:
    try:
        find_bin_dir()
    except PostgresNotFoundError:
        return False
    return True


#: Debian's path of the module `deploy/nginx.conf.template` loads for `brotli_static`.
BROTLI_STATIC_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")


def missing_packages(*, need_redis: bool = True) -> list[str]:
    """The Debian packages this topology needs that are not installed."""
    missing = []
    if _nginx_binary() is None:
        missing.append("nginx")
    if not BROTLI_STATIC_MODULE.is_file():
        # The template loads it: the island is served precompressed with brotli.
        missing.append("libnginx-mod-http-brotli-static")
    if need_redis and _redis_binary() is None:
        missing.append("redis-server")
    if not _postgres_installed():
        missing.append("postgresql")
    return missing


def ensure_packages(*, install: bool, say: Callable[[str], None]) -> None:
    """Install the missing Debian packages with apt-get (as root), or say which they are.

    Raises:
        DemoSiteError: something is missing and cannot be installed here.
    """
    missing = missing_packages()
    if not missing:
        return
    names = " ".join(missing)
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DemoSiteError(
            f"missing Debian packages: {names}. Install them (sudo apt-get install {names}, "
            "or `make servers`) and run again"
        )
    say(f"installing {names} with apt-get (this takes a minute)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(command, env=env, check=False).returncode != 0:  # noqa: S603
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)  # noqa: S607
        if subprocess.run(command, env=env, check=False).returncode != 0:  # noqa: S603
            raise DemoSiteError(f"apt-get could not install {names}")
    if still := missing_packages():
        raise DemoSiteError(f"still missing after apt-get: {' '.join(still)}")


# --- the site --------------------------------------------------------------------------


@dataclass
class _Timer:
    """Elapsed time since the start, and per step, for the progress lines."""

    started: float = field(default_factory=time.monotonic)

    def total(self) -> float:
        return time.monotonic() - self.started


class DemoSite(StartsAndStops):
    """nginx, N Reflex workers, Redis, PostgreSQL and (without credentials) the sandbox.

    `start()` brings everything up and returns once every part answers through the proxy;
    `stop()` (or leaving the `with` block) stops it all. Workers are numbered from 0 in the
    API (`worker_urls[i]`, `kill_worker(i)`) and named `w1..wN` in logs and log files.

    Args:
        config: Ports, worker count, data dir, credentials.
        say: Where progress lines go (default: nowhere); never given a secret.
    """

    def __init__(self, config: DemoSiteConfig, say: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self._say = say or (lambda _line: None)
        self._timer = _Timer()
        self.redis = RedisServer(self.data_dir / "redis", persistent=True)
        self.postgres = PostgresServer(
            self.data_dir / "postgres",
            database="accounts",
            log_path=self.logs_dir / "postgres.log",
        )
        self._taken_ports: set[int] = {config.port, config.proxy_sandbox_port}
        self._worker_ports = [_free_port(self._taken_ports) for _ in range(config.workers)]
        self._sandbox_port = _free_port(self._taken_ports)
        self._workers: list[ManagedProcess | None] = [None] * config.workers
        self._sandbox: ManagedProcess | None = None
        self._nginx: ManagedProcess | None = None
        self._export: ManagedProcess | None = None
        self._sandbox_token: Secret | None = None
        self._started = False

    # -- addresses --------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since `start()` was called (the progress lines' clock)."""
        return self._timer.total()

    @property
    def logs_dir(self) -> Path:
        """Where every process's log file is (`w1.log`, `nginx.log`, ...)."""
        return self.data_dir / "logs"

    @property
    def url(self) -> str:
        """The site's URL, as browsers use it (the app through nginx)."""
        return f"http://{self.config.browser_host}:{self.config.port}"

    @property
    def sandbox_url(self) -> str | None:
        """The sandbox's public URL (through nginx), or None with real Sendbird."""
        if not self.config.uses_sandbox:
            return None
        return f"http://{self.config.browser_host}:{self.config.proxy_sandbox_port}"

    @property
    def worker_urls(self) -> list[str]:
        """Each worker's own URL on 127.0.0.1, bypassing nginx."""
        return [f"http://{LOOPBACK}:{port}" for port in self._worker_ports]

    @property
    def sandbox_internal_url(self) -> str | None:
        """Where the workers reach the sandbox (127.0.0.1), or None with real Sendbird."""
        return f"http://{LOOPBACK}:{self._sandbox_port}" if self.config.uses_sandbox else None

    @property
    def static_root(self) -> Path:
        """The copy of the exported frontend nginx serves."""
        return self.data_dir / "frontend"

    def _check_url(self, port: int, path: str) -> str:
        return f"http://{self.config.check_host}:{port}{path}"

    # -- environments -----------------------------------------------------------------

    def sandbox_api_token(self) -> Secret:
        """The sandbox's API token: generated once, kept in `DATA_DIR/sandbox/api-token` (0600).

        Both the sandbox and the workers need the same value (`SANDBOX_API_TOKEN`); a file
        of the data dir's keeps it across runs, so the widget's cached sessions survive.
        """
        if self._sandbox_token is not None:
            return self._sandbox_token
        path = self.data_dir / "sandbox" / "api-token"
        path.parent.mkdir(parents=True, exist_ok=True)
        token = path.read_text().strip() if path.exists() else ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", token):
            token = secrets.token_hex(20)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(token + "\n")
        path.chmod(0o600)
        self._sandbox_token = Secret(token)
        return self._sandbox_token

    def _mode_environ(self) -> dict[str, str]:
        """What tells the app where Sendbird is: the sandbox's variables or the credentials."""
        if self.config.credentials is not None:
            return self.config.credentials.environ()
        assert self.sandbox_url is not None
        return {
            SANDBOX_EXTERNAL_VARIABLE: "1",
            "SANDBOX_HOST": LOOPBACK,
            "SANDBOX_PORT": str(self._sandbox_port),
            "SANDBOX_API_TOKEN": self.sandbox_api_token().reveal(),
            "SANDBOX_PUBLIC_URL": self.sandbox_url,
            "SANDBOX_DB_PATH": str(self.data_dir / "sandbox" / "sandbox.db"),
        }

    def _base_environ(self) -> dict[str, str]:
        """The launcher's environment for children, without Sendbird or sandbox settings."""
        env = reflex_base_environment(os.environ)
        for name in list(env):
            if name.startswith(("SENDBIRD_", "SANDBOX_")) and name not in (
                "SENDBIRD_TOKEN_TTL_SECONDS",
                "SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS",
                "SENDBIRD_TOKEN_REUSE_SECONDS",
                "SENDBIRD_TOKENS_PER_USER_PER_MINUTE",
                "SENDBIRD_PLATFORM_POSTS_PER_SECOND",
                "SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS",
                "SENDBIRD_USER_ID_PREFIX",
                "SANDBOX_APP_ID",
                "SANDBOX_BOT_ID",
                "SANDBOX_BOT_NICKNAME",
                "SANDBOX_SESSION_KEY_TTL",
                "SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN",
            ):
                del env[name]
        return env

    def env_for_worker(self, index: int) -> dict[str, str]:
        """The complete environment of worker `index` (0-based; named `w{index + 1}`).

        It holds secrets (the database password, the sandbox or Sendbird API token): pass
        it to a process, never print it. `deploy/demo-site.env.example` documents each
        variable set here.

        Raises:
            IndexError: there is no such worker.
            RuntimeError: PostgreSQL is not started yet (its URL carries a fresh password).
        """
        if not 0 <= index < self.config.workers:
            raise IndexError(f"worker {index}: this site has {self.config.workers} (0-based)")
        env = self._base_environ()
        env.update(self._mode_environ())
        env.update(
            {
                "REFLEX_REDIS_URL": self.redis.url,
                "REFLEX_DB_URL": self.postgres.url,
                "REFLEX_API_URL": self.url,
                "REFLEX_TRUSTED_PROXY_HOPS": "1",
                "REFLEX_STATES_WORKDIR": str(self.data_dir / "states"),
                "REFLEX_UPLOADED_FILES_DIR": str(self.data_dir / "uploads"),
                "LOG_FORMAT": "json",
                "SAMPLE_APP_WORKER_ID": f"w{index + 1}",
            }
        )
        return env

    def _export_environ(self) -> dict[str, str]:
        """The frontend export's environment: the public API URL baked into the bundle."""
        env = self._base_environ()
        env.update(self._mode_environ())
        env["REFLEX_API_URL"] = self.url
        return env

    # -- steps ------------------------------------------------------------------------

    def _step(self, message: str, since: float) -> None:
        self._say(f"[{self._timer.total():6.1f}s] {message} ({time.monotonic() - since:.1f}s)")

    def start(self) -> None:
        """Start every part, in dependency order, and return once the site answers.

        Raises:
            DemoSiteError: a part is missing or did not come up (the message says which
                and ends with its log); everything already started is stopped again.
        """
        if self._started:
            return
        self._started = True
        self._timer = _Timer()
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def _start_all(self) -> None:
        config = self.config
        began = time.monotonic()
        ensure_packages(install=config.install_missing, say=self._say)
        for port in (config.port, *((config.proxy_sandbox_port,) if config.uses_sandbox else ())):
            if not _port_is_free(config.check_host, port):
                raise DemoSiteError(
                    f"port {port} on {config.host} is in use: pick another with --port "
                    "(and --sandbox-port), or stop what listens there"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("nginx/tmp", "uploads"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        # Tokens live here (the sandbox's API token and database, Redis's append-only file
        # with every tab's state, the logs): this user only. nginx's worker (www-data when
        # started as root) reads only frontend/ and writes only nginx/tmp/.
        for sub in ("logs", "states", "sandbox", "redis"):
            (self.data_dir / sub).mkdir(mode=0o700, exist_ok=True)
            (self.data_dir / sub).chmod(0o700)
        self._step("prerequisites checked (nginx, redis-server, PostgreSQL)", began)

        self._check_app_settings()
        export_began = time.monotonic()
        stamp = self._frontend_stamp()
        if self._frontend_is_current(stamp):
            self._step(f"frontend export skipped: {self.static_root} is current", export_began)
        else:
            self._start_export()
            self._say(
                f"[{self._timer.total():6.1f}s] frontend export started in the background "
                f"(API URL {self.url}; log: {self.logs_dir / 'export.log'})"
            )

        began = time.monotonic()
        self.redis.start()
        self._step(f"Redis ready on 127.0.0.1:{self.redis.port}", began)

        began = time.monotonic()
        self.postgres.start()
        self._step(f"PostgreSQL ready on 127.0.0.1:{self.postgres.port}", began)

        began = time.monotonic()
        from sample_app.accounts import upgrade_database  # SQLAlchemy and Alembic: only here

        revision = upgrade_database(self.postgres.url)
        self._step(f"accounts database migrated (revision {revision})", began)

        began = time.monotonic()
        if config.uses_sandbox:
            self._start_sandbox()
        for index in range(config.workers):
            self._start_worker_process(index)
        if config.uses_sandbox:
            self._wait_for_sandbox()
            self._step(f"sandbox ready on 127.0.0.1:{self._sandbox_port}", began)
        for index in range(config.workers):
            self._wait_for_worker(index)
        self._step(
            f"{config.workers} workers answer /ping on "
            + ", ".join(str(port) for port in self._worker_ports),
            began,
        )

        if self._export is not None:
            self._wait_for_export(stamp, export_began)

        began = time.monotonic()
        self._start_nginx()
        self._wait_through_proxy()
        self._step(f"nginx ready on {config.host}:{config.port}", began)

    def _check_app_settings(self) -> None:
        """Let the app judge its own configuration before any worker starts.

        The same check each worker does at start (`sample_app.config.load_settings`), but
        reported once, here, with every problem; with the sandbox the database and Redis
        URLs are not known yet, so stand-ins take their place.
        """
        env = self._base_environ()
        env.update(self._mode_environ())
        env.update(
            {
                "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0",
                "REFLEX_API_URL": self.url,
            }
        )
        try:
            load_settings(env, env_file=None)
        except ConfigError as error:
            raise DemoSiteError(str(error)) from None

    # -- frontend ---------------------------------------------------------------------

    def _frontend_stamp(self) -> dict[str, str]:
        """What the current export must have been built for, to be reused."""
        return {
            "api_url": self.url,
            "sandbox_public_url": self.sandbox_url or "",
            "sources": source_fingerprint(),
            "sources_without_lock": _sources_without_lock(),
        }

    @property
    def _stamp_path(self) -> Path:
        return self.data_dir / "frontend.stamp.json"

    def _frontend_is_current(self, stamp: Mapping[str, str]) -> bool:
        if not (self.static_root / "index.html").is_file():
            return False
        try:
            return bool(json.loads(self._stamp_path.read_text()) == dict(stamp))
        except (OSError, ValueError):
            return False

    def _start_export(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._stamp_path.unlink()
        self._export = ManagedProcess(
            "frontend export",
            [str(_venv_bin() / "python"), "-c", _EXPORT_SCRIPT, str(self.static_root)],
            env=self._export_environ(),
            log_path=self.logs_dir / "export.log",
        )
        self._export.start()

    def _wait_for_export(self, stamp: Mapping[str, str], began: float) -> None:
        assert self._export is not None
        wait_began = time.monotonic()
        deadline = time.monotonic() + EXPORT_TIMEOUT
        while self._export.running:
            if time.monotonic() > deadline:
                raise DemoSiteError(
                    f"the frontend export took longer than {EXPORT_TIMEOUT:g} s; "
                    f"see {self._export.log_path}"
                )
            time.sleep(_POLL_SECONDS)
        if self._export.returncode != 0 or not (self.static_root / "index.html").is_file():
            raise DemoSiteError(
                f"the frontend export failed (exit {self._export.returncode}); "
                f"{self._export.log_path} ends with:\n{self._export.log_tail()}"
            )
        self._export = None
        # The build rewrites reflex.lock/ (from the app and Reflex's own list), so the stamp
        # takes the sources as they are after it; an edit made meanwhile leaves no stamp.
        after = self._frontend_stamp()
        if after["sources_without_lock"] == stamp.get("sources_without_lock"):
            self._stamp_path.write_text(json.dumps(after, indent=2) + "\n")
        else:
            self._say("note: sources changed during the export; the next run exports again")
        self._step(
            f"frontend exported and copied to {self.static_root} "
            f"(waited {time.monotonic() - wait_began:.1f}s for it after the servers)",
            began,
        )

    # -- sandbox ----------------------------------------------------------------------

    def _start_sandbox(self) -> None:
        assert self.sandbox_url is not None
        env = self._base_environ()
        env["SANDBOX_API_TOKEN"] = self.sandbox_api_token().reveal()  # not on the command line
        self._sandbox = ManagedProcess(
            "sandbox",
            [
                str(_venv_bin() / "python"),
                "-m",
                "sample_app.sandbox",
                "--host",
                LOOPBACK,
                "--port",
                str(self._sandbox_port),
                "--db-path",
                str(self.data_dir / "sandbox" / "sandbox.db"),
                "--public-url",
                self.sandbox_url,
            ],
            env=env,
            log_path=self.logs_dir / "sandbox.log",
        )
        self._sandbox.start()

    def _wait_for_sandbox(self) -> None:
        assert self._sandbox is not None and self.sandbox_internal_url is not None
        self._wait_http(
            self._sandbox,
            f"{self.sandbox_internal_url}/__sandbox__/health",
            SANDBOX_START_TIMEOUT,
        )

    # -- workers ----------------------------------------------------------------------

    def _start_worker_process(self, index: int) -> None:
        port = self._worker_ports[index]
        worker = ManagedProcess(
            f"worker w{index + 1}",
            [
                str(_venv_bin() / "python"),
                "-m",
                "sample_app.server",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
            ],
            env=self.env_for_worker(index),
            log_path=self.logs_dir / f"w{index + 1}.log",
        )
        self._workers[index] = worker
        worker.start()

    def _wait_for_worker(self, index: int) -> None:
        worker = self._workers[index]
        assert worker is not None
        self._wait_http(worker, f"{self.worker_urls[index]}/ping", WORKER_START_TIMEOUT)

    def start_worker(self, index: int) -> None:
        """Start worker `index` (0-based) again on its own port; return once it answers /ping.

        Raises:
            DemoSiteError: it did not come up (the message ends with its log).
        """
        worker = self._workers[index]
        if worker is not None and worker.running:
            return
        self._start_worker_process(index)
        self._wait_for_worker(index)

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index` (0-based): a crash, no clean-up."""
        worker = self._workers[index]
        if worker is not None:
            worker.kill()

    def worker_running(self, index: int) -> bool:
        """Whether worker `index` (0-based) is alive."""
        worker = self._workers[index]
        return worker is not None and worker.running

    def restart_redis(self) -> None:
        """Stop Redis and start it again on the same port (its append-only file kept)."""
        self.redis.restart()

    # -- nginx ------------------------------------------------------------------------

    def render_nginx_config(self) -> str:
        """`deploy/nginx.conf.template` with this site's values filled in.

        Raises:
            DemoSiteError: the template names a placeholder this launcher does not know.
        """
        template = TEMPLATE_PATH.read_text()
        if not self.config.uses_sandbox:
            template = re.sub(r"# BEGIN sandbox\n.*?# END sandbox\n", "", template, flags=re.S)
        servers = "\n".join(
            f"        server {LOOPBACK}:{port} max_fails=1 fail_timeout=5s;"
            for port in self._worker_ports
        )
        values = {
            "user_directive": "user www-data;" if os.geteuid() == 0 else "",
            "brotli_static_module": str(BROTLI_STATIC_MODULE),
            "data_dir": str(self.data_dir),
            "host": self.config.host,
            "port": str(self.config.port),
            "sandbox_port": str(self.config.proxy_sandbox_port),
            "sandbox_upstream": f"{LOOPBACK}:{self._sandbox_port}",
            "upstream_servers": servers,
            "static_root": str(self.static_root),
        }

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise DemoSiteError(f"{TEMPLATE_PATH} has an unknown placeholder {{{{{name}}}}}")
            return values[name]

        return _PLACEHOLDER.sub(fill, template)

    def _start_nginx(self) -> None:
        nginx = _nginx_binary()
        if nginx is None:
            raise DemoSiteError("nginx is not installed: install Debian's package `nginx`")
        conf = self.data_dir / "nginx" / "nginx.conf"
        conf.write_text(self.render_nginx_config())
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.data_dir / "nginx" / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        # -e stderr: nginx would otherwise open /var/log/nginx/error.log before reading
        # the configuration (an alert as a non-root user).
        argv = [nginx, "-e", "stderr", "-p", str(self.data_dir / "nginx"), "-c", str(conf)]
        log_path = self.logs_dir / "nginx.log"
        check = subprocess.run(  # noqa: S603 - our own arguments
            [*argv, "-t", "-q"], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise DemoSiteError(f"nginx rejected {conf}:\n{(check.stderr or check.stdout)[-2000:]}")
        self._nginx = ManagedProcess("nginx", argv, env=dict(os.environ), log_path=log_path)
        self._nginx.start()

    def _wait_through_proxy(self) -> None:
        assert self._nginx is not None
        port = self.config.port
        self._wait_http(self._nginx, self._check_url(port, "/ping"), PROXY_TIMEOUT)
        self._wait_http(
            self._nginx, self._check_url(port, "/"), PROXY_TIMEOUT, body_contains=b"<html"
        )
        if self.config.uses_sandbox:
            self._wait_http(
                self._nginx,
                self._check_url(self.config.proxy_sandbox_port, "/__sandbox__/health"),
                PROXY_TIMEOUT,
            )

    # -- waiting ----------------------------------------------------------------------

    def _wait_http(
        self,
        process: ManagedProcess,
        url: str,
        timeout: float,
        *,
        body_contains: bytes = b"",
    ) -> None:
        """Poll `url` until it answers 200 (with `body_contains`), while `process` lives.

        Raises:
            DemoSiteError: `process` exited, or `timeout` passed (with its log's end).
        """
        deadline = time.monotonic() + timeout
        while True:
            if not process.running:
                raise DemoSiteError(
                    f"{process.name} exited with {process.returncode} while starting; "
                    f"{process.log_path} ends with:\n{process.log_tail()}"
                )
            status, body = _http_status(url)
            if status == 200 and body_contains in body:
                return
            if time.monotonic() > deadline:
                raise DemoSiteError(
                    f"{process.name}: {url} did not answer 200 within {timeout:g} s "
                    f"(last status {status or 'none'}); {process.log_path} ends with:\n"
                    f"{process.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    # -- running and stopping ---------------------------------------------------------

    def processes(self) -> Iterator[ManagedProcess]:
        """Every child this site started that is still known (nginx first)."""
        for process in (self._nginx, *self._workers, self._sandbox, self._export):
            if process is not None:
                yield process

    def exited_unexpectedly(self) -> list[str]:
        """Names of the parts that have died since the start (for the foreground loop)."""
        dead = [process.name for process in self.processes() if not process.running]
        if self._started and not self.redis.running:
            dead.append("Redis")
        if self._started and not self.postgres.running:
            dead.append("PostgreSQL")
        return dead

    def stop(self) -> None:
        """Stop everything: nginx, then the workers together, the sandbox, PostgreSQL, Redis.

        Safe to call twice, and after a failed start.
        """
        if self._nginx is not None:
            self._nginx.stop()
        workers = [worker for worker in self._workers if worker is not None]
        for worker in workers:
            if worker.running:
                worker.signal_group(signal.SIGTERM)
        for worker in workers:
            worker.stop()
        for process in (self._sandbox, self._export):
            if process is not None:
                process.stop()
        self.postgres.stop()
        self.redis.stop()
        self._started = False

    def kill_everything(self) -> None:
        """SIGKILL every child's group at once (the second Ctrl-C); servers die with us."""
        for process in self.processes():
            process.signal_group(signal.SIGKILL)


# --- command line ----------------------------------------------------------------------


class _Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop in order."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"error: {name}={raw!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (each with its environment variable, when it has one)."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.demo_site",
        description="Run the demo site in the foreground: nginx, N Reflex workers, Redis, "
        "PostgreSQL and (without Sendbird credentials) the sandbox. Ctrl-C stops it.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface nginx listens on")
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("DEMO_SITE_PORT", DEFAULT_PORT),
        help=f"the site's port (DEMO_SITE_PORT; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--sandbox-port", type=int, default=None, help="the sandbox's public port (default port+1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_env_int("DEMO_SITE_WORKERS", DEFAULT_WORKERS),
        help=f"backend worker processes (DEMO_SITE_WORKERS; default {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where data, logs and config go (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--public-host", default=None, help="host name in the URLs browsers get (default --host)"
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never run apt-get (by default, as root, missing Debian packages are installed)",
    )
    return parser


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the demo site, wait for Ctrl-C or SIGTERM, stop it. Returns the exit status."""
    load_env_file()  # .env's SENDBIRD_* (or SANDBOX_*) decide the mode, as for `make run`
    args = build_parser().parse_args(argv)
    try:
        config = DemoSiteConfig(
            host=args.host,
            port=args.port,
            sandbox_port=args.sandbox_port,
            workers=args.workers,
            data_dir=args.data_dir,
            credentials=SendbirdCredentials.from_environ(os.environ),
            public_host=args.public_host,
            install_missing=not args.no_install,
        )
    except ValueError as error:
        _say(f"error: {error}")
        return 2
    site = DemoSite(config, say=_say)
    stopping = False

    def on_signal(signal_number: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            _say("second interrupt: killing everything")
            site.kill_everything()
            os._exit(130)
        stopping = True
        raise _Interrupted(signal.Signals(signal_number).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    where = "Sendbird" if config.credentials else "the local sandbox"
    _say(
        f"Starting the demo site: {config.workers} workers, chat on {where}; data in "
        f"{site.data_dir}; logs in {site.logs_dir}/ (w1.log, ..., nginx.log, sandbox.log, "
        "postgres.log, export.log, redis/redis.log)"
    )
    status = 0
    try:
        site.start()
        extra = f", sandbox {site.sandbox_url}" if site.sandbox_url else ", Sendbird"
        _say(
            f"Demo site ready: {site.url} ({config.workers} workers{extra}; "
            f"started in {site.elapsed:.1f}s). Ctrl-C stops it."
        )
        reported: set[str] = set()
        while True:
            time.sleep(1.0)
            for name in site.exited_unexpectedly():
                if name not in reported:
                    reported.add(name)
                    _say(f"warning: {name} has exited; see {site.logs_dir}/")
            if any(not name.startswith("worker") for name in reported):
                _say("a part the site cannot do without has exited: stopping")
                status = 1
                break
    except _Interrupted as interrupted:
        _say(f"{interrupted}: stopping (again to kill)")
    except DemoSiteError as error:
        _say(f"error: {error}")
        status = 1
    finally:
        stopping = True  # from here, a signal kills
        began = time.monotonic()
        site.stop()
        _say(f"stopped everything ({time.monotonic() - began:.1f}s)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
