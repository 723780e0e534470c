"""Give every account a random, never-changing `sendbird_key`.

The Sendbird user id used to be the deployment prefix plus the integer account id. Ids
start again at 1 when the accounts database is recreated or moved, so the next person
to register took over the previous person's Sendbird user, channels and chat history.
The id is now derived from this random key instead (see `sample_app/identity.py`).

Every existing account is given its own fresh random key here, so existing accounts
start with a new, empty Sendbird user on their next chat: their old `{prefix}{id}` user
is not adopted, because nothing proves that it belonged to them and not to whoever had
that id in an earlier database. The old users stay at Sendbird untouched.

The column is added as nullable, filled row by row with explicit keys, then made NOT
NULL and unique; SQLite cannot alter a column in place, so that last step runs in batch
mode (the table is copied).

Revision ID: 0002_sendbird_key
Revises: 0001_accounts
Create Date: 2026-11-28
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_sendbird_key"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported from the models: a migration must keep doing what it did when it
# was written, even if the models change later.
KEY_BYTES = 10
KEY_LENGTH = 2 * KEY_BYTES


def upgrade() -> None:
    """Add `accounts.sendbird_key`, give each existing row its own key, then enforce it."""
    op.add_column("accounts", sa.Column("sendbird_key", sa.String(length=KEY_LENGTH)))
    accounts = sa.table("accounts", sa.column("id", sa.Integer), sa.column("sendbird_key"))
    connection = op.get_bind()
    ids = connection.execute(sa.select(accounts.c.id)).scalars().all()
    for account_id in ids:
        connection.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(sendbird_key=secrets.token_hex(KEY_BYTES))
        )
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column(
            "sendbird_key", existing_type=sa.String(length=KEY_LENGTH), nullable=False
        )
        batch.create_index("ix_accounts_sendbird_key", ["sendbird_key"], unique=True)


def downgrade() -> None:
    """Drop the key (the Sendbird users derived from it become unreachable from the app)."""
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_sendbird_key")
        batch.drop_column("sendbird_key")
