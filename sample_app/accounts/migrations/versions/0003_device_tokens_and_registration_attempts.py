"""Add `device_tokens` and `registration_attempts`.

`device_tokens` remembers which browsers have signed in to which account (only the
SHA-256 of each random device token), so the sign-in limit can count a known browser's
failures apart from everyone else's: failures made elsewhere, even from the same address,
no longer lock its owner out. `registration_attempts` counts registrations per client and
overall, so anonymous sign-ups cannot be used to burn password-hashing time.

Both tables are new and start empty; nothing existing changes.

Revision ID: 0003_device_tokens
Revises: 0002_sendbird_key
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_device_tokens"
down_revision: str | Sequence[str] | None = "0002_sendbird_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the two tables and their indexes."""
    op.create_table(
        "device_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_device_tokens_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_tokens"),
    )
    op.create_index("ix_device_tokens_token_hash", "device_tokens", ["token_hash"], unique=True)
    op.create_index("ix_device_tokens_account_id", "device_tokens", ["account_id"])
    op.create_index("ix_device_tokens_last_used_at", "device_tokens", ["last_used_at"])

    op.create_table(
        "registration_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registration_attempts"),
    )
    op.create_index(
        "ix_registration_attempts_client_key_at", "registration_attempts", ["client_key", "at"]
    )
    op.create_index("ix_registration_attempts_at", "registration_attempts", ["at"])


def downgrade() -> None:
    """Drop both tables (known browsers lose their own sign-in bucket)."""
    op.drop_table("registration_attempts")
    op.drop_table("device_tokens")
