"""Shared test helpers for the accounts tests (fixtures live in conftest.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

PASSWORD = "correct horse battery"


def count_rows(engine: Engine, table: str) -> int:
    """How many rows `table` holds."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(sa.table(table))
        ).scalar_one()
