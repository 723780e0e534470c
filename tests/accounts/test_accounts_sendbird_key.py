"""Each account's random, never-changing `sendbird_key`, and the migration that adds it.

The Sendbird user id is derived from this key (see `sample_app.identity`), so it must
never repeat (not across accounts, not across recreated databases) and never change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import Session

from sample_app.accounts import (
    Account,
    AccountService,
    AccountView,
    create_engine_for,
    head_revision,
    upgrade_database,
)
from sample_app.accounts.database import alembic_config
from sample_app.identity import sendbird_identity

PASSWORD = "correct horse battery"
KEY = re.compile(r"^[0-9a-f]{20}$")


def register(service: AccountService, username: str) -> AccountView:
    return service.register(username, PASSWORD, username.title())


def test_each_account_gets_its_own_random_key(service: AccountService) -> None:
    views = [register(service, f"user{i}") for i in range(20)]
    keys = [view.sendbird_key for view in views]
    assert all(KEY.match(key) for key in keys), keys
    assert len(set(keys)) == len(keys)
    # Random, not derived from the id: two databases each have an account 1.
    assert all(key != f"{view.id}" for view, key in zip(views, keys, strict=True))


def test_the_key_is_stored_and_resolved_unchanged(service: AccountService) -> None:
    view = register(service, "alice")
    signed_in = service.sign_in("alice", PASSWORD, "client")
    resolved = service.resolve_sign_in(signed_in.sign_in_token)
    assert resolved is not None
    assert resolved.sendbird_key == view.sendbird_key


def test_the_sendbird_user_id_is_the_prefix_and_the_key_never_the_id(
    service: AccountService,
) -> None:
    view = register(service, "alice")
    assert sendbird_identity(view, "sample-").user_id == f"sample-{view.sendbird_key}"
    assert sendbird_identity(view, "sample-").user_id != f"sample-{view.id}"


def test_an_account_without_a_key_has_no_sendbird_identity() -> None:
    keyless = AccountView(1, "alice", "Alice", sendbird_key="")
    with pytest.raises(ValueError, match="sendbird_key"):
        sendbird_identity(keyless, "sample-")


def test_a_stored_key_cannot_be_changed(service: AccountService, engine: Engine) -> None:
    view = register(service, "alice")
    with Session(engine) as session:
        account = session.get(Account, view.id)
        assert account is not None
        account.sendbird_key = "0" * 20
        session.add(account)
        with pytest.raises(ValueError, match="never changes"):
            session.commit()
    with Session(engine) as session:
        stored = session.get(Account, view.id)
        assert stored is not None and stored.sendbird_key == view.sendbird_key


def test_other_changes_to_an_account_are_still_saved(
    service: AccountService, engine: Engine
) -> None:
    view = register(service, "alice")
    with Session(engine) as session:
        account = session.get(Account, view.id)
        assert account is not None
        account.display_name = "Alice B."
        session.add(account)
        session.commit()
        assert account.sendbird_key == view.sendbird_key


def test_the_database_refuses_a_duplicate_key(service: AccountService, engine: Engine) -> None:
    view = register(service, "alice")
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO accounts (username, display_name, password_hash, created_at,"
                " sendbird_key) VALUES ('bob', 'Bob', 'x', '2026-01-01 00:00:00', :key)"
            ),
            {"key": view.sendbird_key},
        )


def test_the_database_refuses_a_missing_key(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO accounts (username, display_name, password_hash, created_at)"
                " VALUES ('bob', 'Bob', 'x', '2026-01-01 00:00:00')"
            )
        )


def test_the_migration_gives_existing_accounts_distinct_keys(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert upgrade_database(engine, "0001_accounts") == "0001_accounts"
        created = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
        with engine.begin() as connection:
            for name in ("alice", "bob"):
                connection.execute(
                    sa.text(
                        "INSERT INTO accounts (username, display_name, password_hash, created_at)"
                        " VALUES (:name, :name, 'x', :created)"
                    ),
                    {"name": name, "created": created},
                )

        assert upgrade_database(engine) == head_revision()

        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, username, sendbird_key FROM accounts ORDER BY id")
            ).all()
        assert [(row.id, row.username) for row in rows] == [(1, "alice"), (2, "bob")]
        keys = [row.sendbird_key for row in rows]
        assert all(KEY.match(key) for key in keys), keys
        assert keys[0] != keys[1]
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("accounts")}
        assert columns["sendbird_key"]["nullable"] is False
        with Session(engine) as session:  # the models read the migrated rows
            alice = session.get(Account, 1)
            assert alice is not None and alice.public().sendbird_key == keys[0]
    finally:
        engine.dispose()


def test_the_migration_downgrades_to_the_first_revision(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine)
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001_accounts")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("accounts")}
        assert "sendbird_key" not in columns
        assert upgrade_database(engine) == head_revision()
    finally:
        engine.dispose()
