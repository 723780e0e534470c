"""Shared test helpers for the accounts tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def count_rows(engine: Engine, table: str) -> int:
    """How many rows `table` holds."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(sa.table(table))
        ).scalar_one()
