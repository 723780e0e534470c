"""Fixtures for the accounts tests: both database back ends, a fake clock, cheap argon2.

Every test that takes `db_url` or `engine` (directly or through `service`) runs twice,
on SQLite (`[sqlite]` in its id) and on a real PostgreSQL server (`[postgresql]`). The
server is started once per test session, only if a PostgreSQL test runs, on a temporary
data directory with fsync off (see `deploy.postgres.PostgresServer`), and stopped when
the session ends, whether it passed, failed or was interrupted. Each test gets a
database of its own:

* `db_url`: an empty database that was never migrated (a new SQLite file, or a new
  PostgreSQL database);
* `engine`: a database at the head revision with empty tables (SQLite: a new file,
  migrated; PostgreSQL: one database per session, copied from a template migrated once,
  whose tables are emptied and id sequences restarted before each test: a few
  milliseconds, where `CREATE DATABASE` takes a few hundred on a busy machine. A test
  that leaves it at another revision gets it recreated for the next one).

The two are separate databases: a test takes one or the other. A test that is about one
back end only says so with `sqlite_only` / `postgresql_only` from `helpers`.

Without the PostgreSQL server binaries (Debian package `postgresql`) the PostgreSQL
variants are skipped with that reason (in CI, where `make test` installs them, they
fail); with them, a server that fails to start fails the tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import argon2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from deploy.postgres import PostgresNotFoundError, PostgresServer, find_bin_dir
from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    PasswordCheck,
    RateLimit,
    create_engine_for,
    current_revision,
    head_revision,
    upgrade_database,
)
from sample_app.accounts.models import accounts_metadata
from tests.accounts.helpers import BACKENDS, POSTGRESQL, SQLITE
from tests.clock import FakeClock

# The migrated database every PostgreSQL `engine` database is copied from.
TEMPLATE_DATABASE = "accounts_template"
# The database every PostgreSQL `engine` uses, emptied before each test.
SHARED_DATABASE = "accounts_tests"
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, with the migrated template database."""
    try:
        find_bin_dir()
    except PostgresNotFoundError as error:
        if os.environ.get("CI"):
            # `make test` installs the server (its `servers` target): in CI a missing one
            # is a broken set-up, never a reason to count the PostgreSQL half as done.
            pytest.fail(f"CI without PostgreSQL: {error}", pytrace=False)
        pytest.skip(str(error))
    # Not pytest's tmp_path: its parents are private to us, and as root the server runs
    # as the `postgres` user, which must reach the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="accounts-tests-pg-"))
    server = PostgresServer(data_dir, database=TEMPLATE_DATABASE, fsync=False)
    try:
        server.start()
        upgrade_database(server.url)  # disposes its engine: a template has no connections
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database back end of this test run: "sqlite" or "postgresql"."""
    name: str = request.param
    return name


def _new_postgres_database(request: pytest.FixtureRequest, template: str | None = None) -> str:
    """Create a database for this test only (dropped after it) and return its URL."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{next(_database_numbers)}"
    url = server.create_database(name, template=template)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database that was never migrated."""
    if backend == SQLITE:
        return f"sqlite:///{tmp_path / 'accounts.db'}"
    assert backend == POSTGRESQL
    return _new_postgres_database(request)


def _empty_tables(engine: Engine) -> None:
    """Delete every accounts row and restart the id sequences, as in a new database."""
    with engine.begin() as connection:
        for table in reversed(accounts_metadata.sorted_tables):  # children first
            connection.execute(table.delete())
            connection.execute(
                sa.select(
                    sa.func.setval(sa.func.pg_get_serial_sequence(table.name, "id"), 1, False)
                )
            )


@pytest.fixture
def engine(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a database at the head revision, with empty tables (see above)."""
    if backend == SQLITE:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'accounts.db'}")
        upgrade_database(engine)
        yield engine
        engine.dispose()
        return
    assert backend == POSTGRESQL
    server: PostgresServer = request.getfixturevalue("postgres_server")
    engine = create_engine_for(server.create_database(SHARED_DATABASE, template=TEMPLATE_DATABASE))
    try:
        _empty_tables(engine)
        yield engine
        try:
            intact = current_revision(engine) == head_revision()
        except sa.exc.SQLAlchemyError:
            intact = False
    finally:
        engine.dispose()
    if not intact:  # e.g. a downgrade test that failed half-way: start again from the template
        server.drop_database(SHARED_DATABASE)


@pytest.fixture(scope="session")
def hasher() -> Argon2Hasher:
    """argon2id at the cheapest cost, so hashing takes microseconds in tests."""
    return Argon2Hasher(argon2.profiles.CHEAPEST)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rate_limit() -> RateLimit:
    return RateLimit()


@pytest.fixture
def service(
    engine: Engine, hasher: Argon2Hasher, clock: FakeClock, rate_limit: RateLimit
) -> AccountService:
    return AccountService(
        engine,
        hasher=hasher,
        clock=clock,
        session_ttl=timedelta(hours=12),
        rate_limit=rate_limit,
    )


@pytest.fixture
def verified_passwords(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password `Argon2Hasher.verify_password` checks from now on, in order."""
    calls: list[str] = []
    real = Argon2Hasher.verify_password

    def spy(self: Argon2Hasher, stored: str, password: str) -> PasswordCheck:
        calls.append(password)
        return real(self, stored, password)

    monkeypatch.setattr(Argon2Hasher, "verify_password", spy)
    return calls
