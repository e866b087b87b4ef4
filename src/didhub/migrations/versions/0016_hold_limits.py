"""number_holds: amount and first_held_at, for the hold allowance

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("number_holds") as batch:
        batch.add_column(sa.Column("amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("first_held_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE number_holds SET first_held_at = expires_at")
    with op.batch_alter_table("number_holds") as batch:
        batch.alter_column("first_held_at", nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("number_holds") as batch:
        batch.drop_column("first_held_at")
        batch.drop_column("amount")
