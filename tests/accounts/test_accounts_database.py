"""Migrations, engines and stored times of the accounts database, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import Session, SQLModel, col

from deploy.postgres import PostgresServer
from sample_app.accounts import (
    Account,
    create_engine_for,
    current_revision,
    head_revision,
    upgrade_database,
)
from sample_app.accounts import database as database_module
from sample_app.accounts.database import VERSION_TABLE, alembic_config
from sample_app.accounts.models import accounts_metadata
from tests.accounts.helpers import (
    count_rows,
    postgresql_only,
    sqlite_only,
    upgrade_when_all_are_ready,
)

TABLES = {
    "accounts",
    "auth_sessions",
    "sign_in_attempts",
    "device_tokens",
    "registration_attempts",
}


def unique_indexes(engine: sa.Engine, table: str) -> dict[str | None, list[str | None]]:
    return {
        index["name"]: list(index["column_names"])
        for index in sa.inspect(engine).get_indexes(table)
        if index["unique"]
    }


def test_upgrade_creates_tables_and_unique_indexes_on_an_empty_database(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) is None
        assert upgrade_database(engine) == head_revision()

        tables = set(sa.inspect(engine).get_table_names())
        assert TABLES | {VERSION_TABLE} == tables
        assert unique_indexes(engine, "accounts") == {
            "ix_accounts_username": ["username"],
            "ix_accounts_sendbird_key": ["sendbird_key"],
        }
        assert unique_indexes(engine, "auth_sessions") == {
            "ix_auth_sessions_token_hash": ["token_hash"]
        }
        assert unique_indexes(engine, "device_tokens") == {
            "ix_device_tokens_token_hash": ["token_hash"]
        }
        attempt_indexes = {i["name"] for i in sa.inspect(engine).get_indexes("sign_in_attempts")}
        assert {"ix_sign_in_attempts_username_at", "ix_sign_in_attempts_client_key_at"} <= (
            attempt_indexes
        )
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    first = upgrade_database(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO accounts (username, display_name, password_hash, created_at,"
                    " sendbird_key) VALUES ('kept', 'Kept', 'x', '2026-01-01 00:00:00', 'k1')"
                )
            )
        assert upgrade_database(db_url) == first == head_revision()
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT username FROM accounts")).scalars().all() == [
                "kept"
            ]
            versions = connection.execute(
                sa.select(sa.column("version_num", sa.String)).select_from(sa.table(VERSION_TABLE))
            ).all()
        assert len(versions) == 1
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(engine: sa.Engine) -> None:
    """The hand-written migration and the SQLModel tables describe the same schema."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, accounts_metadata) == []


def test_in_memory_database_is_shared_by_the_engine() -> None:
    engine = create_engine_for("sqlite://")
    try:
        upgrade_database(engine)
        with engine.connect() as first, engine.connect() as second:
            assert first.connection.dbapi_connection is second.connection.dbapi_connection
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


# SQLite by nature: a relative file path.
def test_works_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert upgrade_database("sqlite:///relative.db") == head_revision()
    assert (elsewhere / "relative.db").exists()
    assert not (elsewhere / "alembic.ini").exists()


@sqlite_only  # PRAGMAs: SQLite's per-connection settings, which PostgreSQL does not need
def test_sqlite_connections_enforce_foreign_keys_and_wait_when_busy(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000


def test_foreign_keys_are_enforced(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO auth_sessions (token_hash, account_id, created_at, expires_at, "
                "last_seen_at) VALUES ('h', 999, '2026-01-01', '2026-01-02', '2026-01-01')"
            )
        )


def test_accounts_tables_stay_out_of_sqlmodels_global_metadata() -> None:
    """Reflex migrates SQLModel.metadata; our tables have their own history."""
    assert set(accounts_metadata.tables) == TABLES
    assert not TABLES & set(SQLModel.metadata.tables)


def test_downgrade_to_base_removes_the_tables(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    assert current_revision(engine) is None
    assert upgrade_database(engine) == head_revision()


# SQLite only: on PostgreSQL the migration lock makes this interleaving impossible (the
# "other worker" below would wait for our lock, forever); the real race is tested there by
# test_concurrent_start_up_migrates_once.
@sqlite_only
def test_losing_a_concurrent_migration_race_is_not_an_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker migrates between our check and our upgrade; we end up at head."""
    real_upgrade = command.upgrade

    def racing_upgrade(config: object, revision: str) -> None:
        other = create_engine_for(db_url)
        try:
            with other.begin() as connection:
                real_upgrade(alembic_config(connection), revision)
        finally:
            other.dispose()
        raise sa.exc.OperationalError("CREATE TABLE accounts", {}, Exception("already exists"))

    monkeypatch.setattr(database_module.command, "upgrade", racing_upgrade)
    assert upgrade_database(db_url) == head_revision()


def test_times_are_stored_as_utc_and_loaded_as_aware_utc(engine: sa.Engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 5, 1, 14, 30, tzinfo=plus_two)
    with Session(engine) as session:
        account = Account(username="tz", display_name="Tz", password_hash="x", created_at=created)
        session.add(account)
        session.commit()
        account_id = account.id
    with engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT created_at FROM accounts")).scalar_one()
    # SQLite returns the stored text, PostgreSQL a naive datetime: both are UTC.
    assert str(raw).startswith("2026-05-01 12:30:00")
    with Session(engine) as session:
        loaded = session.get(Account, account_id)
        assert loaded is not None
        assert loaded.created_at == created
        assert loaded.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.add(
            Account(
                username="naive",
                display_name="Naive",
                password_hash="x",
                created_at=datetime(2026, 5, 1, 12, 0),  # naive on purpose
            )
        )
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            session.commit()


@postgresql_only  # a `timestamp` column and the server's TimeZone setting
def test_times_do_not_depend_on_the_database_time_zone(engine: sa.Engine) -> None:
    """A session in another time zone stores and loads the same instants."""
    created = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    tokyo = create_engine_for(engine.url, connect_args={"options": "-c timezone=Asia/Tokyo"})
    try:
        with tokyo.connect() as connection:
            assert connection.exec_driver_sql("SHOW timezone").scalar_one() == "Asia/Tokyo"
        with Session(tokyo) as session:
            session.add(
                Account(username="tz", display_name="Tz", password_hash="x", created_at=created)
            )
            session.commit()
        for reader in (engine, tokyo):
            with Session(reader) as session:
                loaded = session.scalars(sa.select(col(Account.created_at))).one()
                assert loaded == created
        with engine.connect() as connection:
            raw = connection.execute(sa.text("SELECT created_at FROM accounts")).scalar_one()
        assert raw == datetime(2026, 5, 1, 12, 30)  # naive UTC, whatever the session's zone
    finally:
        tokyo.dispose()


START_UP_WORKERS = 4


@postgresql_only  # several workers migrating one server database at the same moment
@pytest.mark.parametrize("start", [None, "0001_accounts"], ids=["fresh", "from-0001"])
def test_concurrent_start_up_migrates_once(
    db_url: str, start: str | None, postgres_server: PostgresServer
) -> None:
    """Worker processes all calling `upgrade_database` at once: one migrates, once.

    The others wait for it and find the database at head. Without the migration lock they
    all migrate at once and all but one fail on the server (duplicate tables or columns):
    those errors are what this test looks for in the server's log, because the losers'
    fallback (re-reading the revision) would hide them from the outcomes.
    """
    engine = create_engine_for(db_url)
    try:
        if start is not None:
            upgrade_database(engine, start)
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO accounts (username, display_name, password_hash,"
                        " created_at) VALUES ('old', 'Old', 'x', '2026-01-01 00:00:00')"
                    )
                )
        log_start = postgres_server.log_path.stat().st_size
        # Separate processes, like real workers (Alembic keeps per-process global state).
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(START_UP_WORKERS)
        results = context.Queue()
        workers = [
            context.Process(target=upgrade_when_all_are_ready, args=(db_url, barrier, results))
            for _ in range(START_UP_WORKERS)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert [worker.exitcode for worker in workers] == [0] * START_UP_WORKERS
        results.close()
        results.join_thread()

        assert outcomes == [("ok", head_revision())] * START_UP_WORKERS
        with postgres_server.log_path.open("rb") as log:
            log.seek(log_start)
            server_errors = [
                line
                for line in log.read().decode(errors="replace").splitlines()
                if "ERROR:" in line
            ]
        assert server_errors == []
        assert current_revision(engine) == head_revision()
        assert count_rows(engine, VERSION_TABLE) == 1
        with engine.connect() as connection:
            context_ = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context_, accounts_metadata) == []
            if start is not None:  # the data migration ran once: one key, kept
                keys = connection.execute(sa.text("SELECT sendbird_key FROM accounts")).all()
                assert len(keys) == 1 and keys[0][0]
    finally:
        engine.dispose()
