"""A private PostgreSQL server: one cluster, one role, started and stopped from Python.

`PostgresServer` runs the PostgreSQL server binaries installed on this machine (Debian's
package `postgresql`) on a data directory of its own. The demo-site launcher keeps the
data directory between runs; tests use a temporary one and `fsync=False`::

    with PostgresServer(Path("var/postgres"), database="accounts") as server:
        upgrade_database(server.url)  # postgresql+psycopg://accounts:...@127.0.0.1:PORT/accounts
        ...

What `start()` does:

* **Cluster**: `initdb` in `data_dir` unless it already holds one (then it is reused,
  data and all). Local (Unix socket) connections are trusted, TCP connections need a
  SCRAM password.
* **Server**: `postgres` in the foreground, as a child of this process, listening on
  127.0.0.1 only, on `port` (0: a free port) and on a Unix socket in a private directory
  of its own (mode 0700, under the system temp directory; never `/var/run/postgresql`).
  Only this process (and root) can reach that socket, so trusting it admits nobody else.
* **Role and database**: a login role `user` gets a fresh random password on every
  start (only its SCRAM verifier reaches the server, so the password is in no server log)
  and owns `database`, created if missing.
* It returns once the server accepts connections.

`stop()` (or leaving the `with` block) does a fast shutdown (clients are disconnected,
everything committed is kept) and escalates to SIGQUIT and SIGKILL if that hangs. The
server also stops if this process ends without calling it: at interpreter exit (`atexit`),
and, on Linux, when the thread that started it dies, even by SIGKILL (the parent-death
signal); so start it from a thread that lives as long as the server, such as the main
thread. The server runs in a session of its own, so Ctrl-C in a terminal reaches only
this process, which then stops the server in order.

Run as root, the server runs as the Debian user `postgres` (PostgreSQL refuses to run
as root): the data and socket directories are given to that user, and every parent of
`data_dir` must be searchable by it. Run as any other user, everything runs as that user.

`url` holds the role's password: pass it to the workers, never log it (`safe_url` is the
same URL with the password masked).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

from deploy.processes import StartsAndStops, free_port, parent_death_signal

__all__ = [
    "DEBIAN_PACKAGE",
    "HOST",
    "PostgresError",
    "PostgresNotFoundError",
    "PostgresServer",
    "find_bin_dir",
]

DEBIAN_PACKAGE = "postgresql"
HOST = "127.0.0.1"
# The OS user the server runs as when started by root, and the cluster's superuser role.
SERVER_OS_USER = "postgres"
SUPERUSER = "postgres"
# Where Debian installs each major version's server binaries.
DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
_REQUIRED_BINARIES = ("initdb", "postgres")
_PORT_TRIES = 5  # a free port can be taken by someone else before the server binds it
_POLL_SECONDS = 0.05
_LOG_TAIL_CHARS = 2000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresNotFoundError(RuntimeError):
    """The PostgreSQL server binaries (`initdb`, `postgres`) are not installed."""


class PostgresError(RuntimeError):
    """The cluster could not be created, or the server did not start."""


def _has_binaries(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _REQUIRED_BINARIES)


def _version_key(directory: Path) -> tuple[int, ...]:
    """Sort key for `/usr/lib/postgresql/<major>/bin`: the major version, numerically."""
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))


def find_bin_dir() -> Path:
    """Return the directory holding the PostgreSQL server binaries.

    Tries `pg_config --bindir` first (on Debian `pg_config` may come from `libpq-dev`
    without the server, so the binaries are checked), then the newest
    `/usr/lib/postgresql/*/bin`.

    Raises:
        PostgresNotFoundError: neither has `initdb` and `postgres`; the message says which
            Debian package to install.
    """
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(  # noqa: S603 - a fixed command found on PATH
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if found and _has_binaries(Path(found)):
                return Path(found)
    candidates = sorted(
        (path for path in Path("/").glob(DEBIAN_BIN_DIRS.lstrip("/")) if _has_binaries(path)),
        key=_version_key,
    )
    if candidates:
        return candidates[-1]
    raise PostgresNotFoundError(
        "PostgreSQL server binaries (initdb, postgres) not found: neither `pg_config"
        f" --bindir` nor {DEBIAN_BIN_DIRS} has them. Install the Debian package"
        f" `{DEBIAN_PACKAGE}` (sudo apt-get install {DEBIAN_PACKAGE})."
    )


class _Account:
    """The OS account the server runs as: ours, or `postgres` when we are root."""

    def __init__(self) -> None:
        self.is_root = os.geteuid() == 0
        if not self.is_root:
            self.uid, self.gid, self.name = os.geteuid(), os.getegid(), ""
            self.groups = set(os.getgroups()) | {self.gid}
            return
        try:
            entry = pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, but there is no {SERVER_OS_USER!r} user to run the server"
                f" as (PostgreSQL refuses root); install the Debian package {DEBIAN_PACKAGE!r}"
                " or run as an ordinary user"
            ) from None
        self.uid, self.gid, self.name = entry.pw_uid, entry.pw_gid, entry.pw_name
        self.groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid))

    def popen_options(self) -> dict[str, Any]:
        """`subprocess` options that run the child as this account."""
        if not self.is_root:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": sorted(self.groups)}

    def give(self, path: Path) -> None:
        """Make `path` this account's (only needed, and only possible, as root)."""
        if self.is_root:
            os.chown(path, self.uid, self.gid)

    def check_can_reach(self, path: Path) -> None:
        """Raise unless this account can search every directory above `path`."""
        if not self.is_root:
            return  # our own directories: the OS reports any problem clearly
        for parent in path.resolve().parents:
            info = parent.stat()
            if info.st_uid == self.uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid in self.groups:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                raise PostgresError(
                    f"{parent} is not searchable by the {self.name!r} user the server runs"
                    " as (we are root): allow it (chmod o+x) or put the data directory"
                    " elsewhere"
                )


class PostgresServer(StartsAndStops):
    """One PostgreSQL cluster in `data_dir`, served on 127.0.0.1 (see the module docstring).

    Use it as a context manager, or call `start()` and `stop()` (in a `finally`).

    Args:
        data_dir: The cluster's directory: created with `initdb` if missing or empty,
            reused if it already holds a cluster.
        port: The TCP port; 0 picks a free one at each start.
        database: The database `url` points to, created (owned by `user`) if missing.
        user: The login role the URLs use; created if missing, given a new random
            password at every start.
        fsync: False turns off fsync, synchronous commit and full-page writes: much
            faster, but a machine crash can corrupt the cluster. For tests only.
        log_path: Where the server's log goes (appended); default `data_dir/server.log`.
        start_timeout: Seconds to wait for the server to accept connections.
        bin_dir: Where `initdb` and `postgres` are; default: `find_bin_dir()`.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int = 0,
        database: str = "accounts",
        user: str = "accounts",
        fsync: bool = True,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        bin_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        for what, name in (("database", database), ("user", user)):
            if not _NAME.match(name):
                raise ValueError(f"{what} {name!r}: use letters, digits and _ (at most 63)")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range")
        self._data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._database = database
        self._user = user
        self._fsync = fsync
        self._log_path = (
            Path(log_path).absolute() if log_path is not None else self._data_dir / "server.log"
        )
        self._start_timeout = start_timeout
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._port = 0
        self._password: str | None = None

    # -- information ---------------------------------------------------------------------

    def __repr__(self) -> str:  # never the password
        state = f"port={self._port}" if self.running else "stopped"
        return f"PostgresServer({str(self._data_dir)!r}, database={self._database!r}, {state})"

    @property
    def data_dir(self) -> Path:
        """The cluster's directory."""
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the server was started, has not been stopped, and is still alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1).

        Raises:
            RuntimeError: the server is not started.
        """
        self._require_started()
        return self._port

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of `database` (`postgresql+psycopg://`), password included.

        Raises:
            RuntimeError: the server is not started.
        """
        return self.url_for(self._database)

    @property
    def safe_url(self) -> str:
        """`url` with the password masked, for logs and messages.

        Raises:
            RuntimeError: the server is not started.
        """
        return self._url(self._database, "***")

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL (`postgresql+psycopg://`, password included) of `database`.

        Raises:
            RuntimeError: the server is not started.
        """
        self._require_started()
        assert self._password is not None  # set by start()
        return self._url(database, quote(self._password, safe=""))

    def _url(self, database: str, password: str) -> str:
        self._require_started()
        return (
            f"postgresql+psycopg://{quote(self._user, safe='')}:{password}"
            f"@{HOST}:{self._port}/{quote(database, safe='')}"
        )

    def _require_started(self) -> None:
        if self._process is None:
            raise RuntimeError(f"{self!r} is not started")

    # -- databases -----------------------------------------------------------------------

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` owned by the role, unless it exists, and return its URL.

        Args:
            name: Letters, digits and `_`.
            template: Copy this database (which must have no open connections) instead
                of the empty `template1`. Ignored when `name` already exists.

        Returns:
            The database's SQLAlchemy URL (see `url_for`).

        Raises:
            RuntimeError: the server is not started.
            ValueError: `name` or `template` is not a plain identifier.
        """
        self._require_started()
        for value in (name, template):
            if value is not None and not _NAME.match(value):
                raise ValueError(f"database name {value!r}: use letters, digits and _")
        with self._admin() as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if exists is None:
                statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self._user)
                )
                if template is not None:
                    statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                connection.execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, disconnecting its clients first.

        Raises:
            RuntimeError: the server is not started.
        """
        self._require_started()
        with self._admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _admin(self, **options: Any) -> psycopg.Connection[Any]:
        """A superuser connection over the private Unix socket, in autocommit mode."""
        assert self._socket_dir is not None
        return psycopg.connect(
            host=str(self._socket_dir),
            port=self._port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            **options,
        )

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Self:
        """Create the cluster if needed, start the server, and set up the role and database.

        Returns:
            This server, started.

        Raises:
            RuntimeError: it is already started.
            PostgresNotFoundError: the server binaries are not installed.
            PostgresError: `initdb` failed, or the server did not come up (the message
                ends with the server log's last lines).
        """
        if self._process is not None:
            raise RuntimeError(f"{self!r} is already started")
        bin_dir = self._bin_dir or find_bin_dir()
        account = _Account()
        self._prepare_data_dir(account)
        self._init_cluster(bin_dir, account)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="pg-"))  # short: sockets max ~107 B
        account.give(self._socket_dir)
        atexit.register(self.stop)
        try:
            for attempt in range(_PORT_TRIES):
                self._port = self._requested_port or free_port()
                log_offset = self._launch(bin_dir, account)
                if self._wait_until_ready(log_offset):
                    break
                if self._requested_port or attempt == _PORT_TRIES - 1:
                    raise PostgresError(
                        f"port {self._port} is in use\n{self._log_tail(log_offset)}"
                    )
            self._provision()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down (fast shutdown) and remove its socket directory.

        Safe to call at any time, and more than once.

        Args:
            timeout: Seconds to wait for the fast shutdown before forcing it.
        """
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None:
            _shut_down(process, timeout)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        self._password = None

    def _prepare_data_dir(self, account: _Account) -> None:
        account.check_can_reach(self._data_dir)
        if (self._data_dir / "PG_VERSION").is_file():
            return
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(self._data_dir.iterdir()):
            raise PostgresError(
                f"{self._data_dir} is neither empty nor a PostgreSQL data directory"
            )
        account.give(self._data_dir)

    def _init_cluster(self, bin_dir: Path, account: _Account) -> None:
        if (self._data_dir / "PG_VERSION").is_file():
            return
        command = [
            str(bin_dir / "initdb"),
            f"--pgdata={self._data_dir}",
            f"--username={SUPERUSER}",
            "--auth-local=trust",  # the socket directory is private (mode 0700)
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self._fsync:
            command.append("--no-sync")
        result = subprocess.run(  # noqa: S603 - our own arguments, no shell
            command,
            capture_output=True,
            text=True,
            check=False,
            cwd=self._data_dir,
            env=_child_environment(),
            **account.popen_options(),
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed in {self._data_dir} (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout)[-_LOG_TAIL_CHARS:]}"
            )

    def _launch(self, bin_dir: Path, account: _Account) -> int:
        """Start `postgres`; return the log's size before it, to read its output from."""
        assert self._socket_dir is not None
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(self._data_dir),
            "-p",
            str(self._port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"unix_socket_directories={self._socket_dir}",
        ]
        if not self._fsync:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                command += ["-c", setting]
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._data_dir,
                env=_child_environment(),
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=parent_death_signal(signal.SIGINT),  # only sets the parent-death signal
                **account.popen_options(),
            )
        return offset

    def _wait_until_ready(self, log_offset: int) -> bool:
        """Wait until the server accepts connections.

        Returns:
            True when it does; False when it exited because its port was taken.

        Raises:
            PostgresError: it exited for another reason, or did not come up in time.
        """
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                tail = self._log_tail(log_offset)
                if "could not bind" in tail or "Address already in use" in tail:
                    return False
                raise PostgresError(f"postgres exited with {code} while starting:\n{tail}")
            try:
                with self._admin(connect_timeout=5):
                    return True
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"postgres did not accept connections within {self._start_timeout:g}"
                        f" s:\n{self._log_tail(log_offset)}"
                    ) from None
                time.sleep(_POLL_SECONDS)

    def _provision(self) -> None:
        """Give the role a fresh random password (creating it if needed), and the database."""
        password = secrets.token_urlsafe(24)
        with self._admin() as connection:
            # Only the SCRAM verifier is sent: the password itself reaches no server log.
            verifier = connection.pgconn.encrypt_password(
                password.encode(), self._user.encode(), b"scram-sha-256"
            ).decode()
            exists = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [self._user]
            ).fetchone()
            verb = "ALTER" if exists else "CREATE"
            connection.execute(
                sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(self._user), sql.Literal(verifier)
                )
            )
        self._password = password
        self.create_database(self._database)

    def _log_tail(self, offset: int) -> str:
        """The end of what the server logged since `offset`."""
        try:
            with self._log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError as error:
            return f"(cannot read {self._log_path}: {error})"
        return text[-_LOG_TAIL_CHARS:].strip() or f"(nothing in {self._log_path})"


def _child_environment() -> dict[str, str]:
    """Our environment without PG* variables (PGDATA, PGPORT, ...) that would interfere."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _shut_down(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; reap the process."""
    for signal_number, wait in (
        (signal.SIGINT, timeout),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, None),
    ):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal_number)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()
