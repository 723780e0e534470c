"""Shared test helpers for the accounts tests (fixtures live in conftest.py)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

PASSWORD = "correct horse battery"

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = (SQLITE, POSTGRESQL)

# Run a test that takes `db_url` or `engine` on one back end only (its id still says
# which). Say why next to it: only what is about that back end by nature belongs here.
sqlite_only = pytest.mark.parametrize("backend", [SQLITE], indirect=True)
postgresql_only = pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)


def count_rows(engine: Engine, table: str) -> int:
    """How many rows `table` holds."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(sa.table(table))
        ).scalar_one()


def upgrade_when_all_are_ready(url: str, barrier: Barrier, results: Queue[tuple[str, str]]) -> None:
    """A worker process's start-up: connect, wait for the others, `upgrade_database(url)`.

    Puts ("ok", revision) or ("error", what was raised) on `results`.
    """
    from sample_app.accounts.database import create_engine_for, upgrade_database

    try:
        engine = create_engine_for(url)
        try:
            with engine.connect():  # connected already: all start upgrading at once
                pass
            barrier.wait(timeout=60)
            results.put(("ok", upgrade_database(engine)))
        finally:
            engine.dispose()
    except BaseException as error:
        results.put(("error", f"{type(error).__name__}: {error}"))
