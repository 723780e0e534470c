"""`deploy.postgres.PostgresServer`, which the PostgreSQL variants of these tests run on.

(Here, not in a tests folder of its own, because the accounts suite is its first user.)
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from deploy import postgres as postgres_module
from deploy.postgres import PostgresNotFoundError, PostgresServer, find_bin_dir


def test_missing_binaries_name_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_module.shutil, "which", lambda _name: None)
    monkeypatch.setattr(postgres_module, "DEBIAN_BIN_DIRS", "/nonexistent/postgresql/*/bin")
    with pytest.raises(PostgresNotFoundError, match="Debian package `postgresql`"):
        find_bin_dir()
    with pytest.raises(PostgresNotFoundError):
        PostgresServer(Path(tempfile.gettempdir()) / "never-created").start()


def test_the_url_needs_the_password_and_nothing_shows_it(
    postgres_server: PostgresServer,
) -> None:
    url = sa.make_url(postgres_server.url)
    assert (url.drivername, url.host) == ("postgresql+psycopg", "127.0.0.1")
    password = url.password
    assert password and len(password) >= 20
    assert password not in repr(postgres_server) + postgres_server.safe_url
    plain = f"host={url.host} port={url.port} user={url.username} dbname=postgres"
    with psycopg.connect(plain, password=password) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("accounts",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(plain, password="not-" + password).close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under /tmp, not tmp_path: as root the server's user must reach it.
    path = Path(tempfile.mkdtemp(prefix="postgres-server-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_data_directory_is_reused_and_stop_leaves_nothing_running(data_dir: Path) -> None:
    with PostgresServer(data_dir, database="kept", fsync=False) as server:
        socket_dir = server._socket_dir
        assert socket_dir is not None
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        assert not str(socket_dir).startswith(("/var/run", "/run"))
        first_url = server.url
        engine = sa.create_engine(first_url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE notes (body text)"))
            connection.execute(sa.text("INSERT INTO notes VALUES ('still here')"))
        engine.dispose()
        process = server._process
        assert process is not None
    assert process.poll() is not None  # stopped, and reaped
    assert not socket_dir.exists()
    assert not server.running
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url

    with PostgresServer(data_dir, database="kept", fsync=False) as again:
        assert again.url != first_url  # a new password at every start
        engine = sa.create_engine(again.url)
        with engine.connect() as connection:
            notes = connection.execute(sa.text("SELECT body FROM notes")).scalars().all()
        engine.dispose()
    assert notes == ["still here"]
    if os.geteuid() == 0:
        assert data_dir.stat().st_uid != 0  # given to the `postgres` user
