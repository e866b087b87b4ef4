"""Number aging: when a released sandbox number (sandbox_allocations.released_at)
or stock number (stock_numbers.released_at) was given back: it is sold again
once it has aged DIDHUB_NUMBER_AGING_DAYS

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_allocations") as batch:
        batch.add_column(sa.Column("released_at", didhub.db.UtcDateTime(), nullable=True))
    with op.batch_alter_table("stock_numbers") as batch:
        batch.add_column(sa.Column("released_at", didhub.db.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stock_numbers") as batch:
        batch.drop_column("released_at")
    with op.batch_alter_table("sandbox_allocations") as batch:
        batch.drop_column("released_at")
