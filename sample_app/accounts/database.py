"""Database engines and schema migrations for the accounts tables.

The schema is managed by Alembic, but with no `alembic.ini`: the script directory ships
inside this package (`sample_app/accounts/migrations/`) and is located from this file,
so `upgrade_database()` works from any working directory and from tests. Applied
revisions are recorded in `accounts_alembic_version`, not Alembic's default
`alembic_version`, so these migrations can share a database with Reflex's own
(`reflex db migrate`) without either history overwriting the other.

Any SQLAlchemy URL works (`sqlite:///reflex.db`, `postgresql+psycopg://...`). SQLite gets
what a multi-threaded web server needs: connections usable from any thread (Reflex runs
handlers on worker threads), a busy timeout so concurrent writers wait instead of failing
with "database is locked", and foreign keys switched on (SQLite leaves them off).

Several workers may call `upgrade_database` at the same moment at start-up. On PostgreSQL
the whole upgrade runs in one transaction that first takes a transaction-level advisory
lock (`MIGRATION_LOCK_KEY`): one worker migrates, the others wait for it, then find the
database at the target and do nothing. The lock is released at commit or rollback, and
by the server if the worker dies, so a crashed migration cannot leave it held. (Without
it, every worker would run the migrations at once, and all but one would fail half-way
on the server.) SQLite serialises writers by itself; there a worker that loses the race
gets an error, which is ignored once the database is at the target revision.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "VERSION_TABLE",
    "alembic_config",
    "create_engine_for",
    "current_revision",
    "head_revision",
    "upgrade_database",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "accounts_alembic_version"
SQLITE_BUSY_TIMEOUT_SECONDS = 15.0
# The PostgreSQL advisory lock held while migrating the accounts tables (any 64-bit number
# no other code in the database locks; this is b"accounts" read as an integer). Advisory
# locks are per database, so databases on one server do not wait for each other.
MIGRATION_LOCK_KEY = int.from_bytes(b"accounts", "big")


def _is_memory_sqlite(url: sa.URL) -> bool:
    database = url.database or ""
    return database in {"", ":memory:"} or url.query.get("mode") == "memory"


def create_engine_for(url: str | sa.URL, **engine_options: Any) -> Engine:
    """Create an engine for the accounts database at `url`.

    Args:
        url: Any SQLAlchemy URL. `sqlite://` (in memory) gives one database shared by all
            threads of this engine, which is what tests want.
        **engine_options: Passed on to `sqlalchemy.create_engine`.

    Returns:
        The engine, with `hide_parameters` on (so database errors never quote values).
        SQLite engines enable foreign keys and a busy timeout on every
        connection; other databases get `pool_pre_ping`, so connections dropped by the
        server are replaced instead of failing a request.
    """
    parsed = sa.make_url(url)
    # Errors (IntegrityError and friends) would otherwise quote the statement's parameters:
    # password hashes, token hashes and usernames would end up in logs and tracebacks.
    engine_options.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        engine_options.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **engine_options)

    connect_args = dict(engine_options.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    if _is_memory_sqlite(parsed):
        # Each new connection to ":memory:" would be a new, empty database.
        engine_options.setdefault("poolclass", StaticPool)
    engine = sa.create_engine(parsed, connect_args=connect_args, **engine_options)

    @sa.event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        finally:
            cursor.close()

    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Return an Alembic configuration for the accounts migrations (no `alembic.ini`).

    Args:
        connection: When given, `env.py` migrates over this connection instead of
            opening its own.
    """
    config = Config()
    # ConfigParser interpolates "%", which may occur in a path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> str:
    """Return the newest revision of the accounts migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only if the versions directory were emptied
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the accounts tables are at, or None if never migrated."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_database(url_or_engine: str | sa.URL | Engine, revision: str = "head") -> str:
    """Apply the accounts migrations up to `revision` (default: the newest).

    Safe to call at every start: an up-to-date database is left alone. Safe to call from
    several processes at once: on PostgreSQL they take turns (an advisory lock, see the
    module docstring), and a losing attempt's error (SQLite) is ignored as long as the
    database ends up at the requested revision.

    Args:
        url_or_engine: A database URL (an engine is created and disposed) or an engine.
            For an in-memory SQLite database pass the engine that will use it: a URL
            would migrate a private database that vanishes with its engine.
        revision: The target: "head" or a revision id.

    Returns:
        The revision the database is at afterwards.
    """
    owns_engine = not isinstance(url_or_engine, Engine)
    engine = (
        url_or_engine if isinstance(url_or_engine, Engine) else create_engine_for(url_or_engine)
    )
    target = head_revision() if revision == "head" else revision
    try:
        if current_revision(engine) != target:
            try:
                with engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        # Waits for a worker that is migrating; the revision is then read
                        # again (by Alembic, in a new statement: READ COMMITTED sees it).
                        connection.execute(
                            sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY))
                        )
                    command.upgrade(alembic_config(connection), revision)
            except sa.exc.DBAPIError:
                if current_revision(engine) != target:
                    raise
                logger.info("accounts schema was migrated concurrently by another process")
        return current_revision(engine) or ""
    finally:
        if owns_engine:
            engine.dispose()
