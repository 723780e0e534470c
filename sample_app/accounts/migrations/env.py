"""Alembic environment for the accounts tables.

Normally run through `sample_app.accounts.database.upgrade_database`, which passes an
open connection in `config.attributes["connection"]`. Without one (the `alembic` command
line with a config that sets `sqlalchemy.url`), it opens its own engine.

`target_metadata` is the accounts tables only, so `alembic revision --autogenerate`
against this directory compares just those tables, and the version table is
`accounts_alembic_version` so Reflex's own Alembic history can live in the same database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from sample_app.accounts.database import VERSION_TABLE, create_engine_for
from sample_app.accounts.models import accounts_metadata

config = context.config


def _configure_and_run(**options: Any) -> None:
    """Configure the context for the accounts tables (plus `options`) and migrate."""
    context.configure(
        target_metadata=accounts_metadata,
        version_table=config.attributes.get("version_table", VERSION_TABLE),
        # SQLite cannot ALTER most things; batch mode recreates tables when needed.
        render_as_batch=True,
        **options,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: sa.Connection) -> None:
    _configure_and_run(connection=connection, compare_type=True)


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    _configure_and_run(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)


def run_migrations_online() -> None:
    """Migrate over the caller's connection, or over a new engine from `sqlalchemy.url`."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine_for(url)
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
