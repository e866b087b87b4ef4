"""renewals.ledger_transaction_id may be empty: a free month posts nothing

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renewals") as batch:
        batch.alter_column(
            "ledger_transaction_id", existing_type=sa.String(length=40), nullable=True
        )


def downgrade() -> None:
    # A free month has no transaction to point at: those rows can't be kept.
    op.execute("DELETE FROM renewals WHERE ledger_transaction_id IS NULL")
    with op.batch_alter_table("renewals") as batch:
        batch.alter_column(
            "ledger_transaction_id", existing_type=sa.String(length=40), nullable=False
        )
