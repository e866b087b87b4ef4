"""idempotency_records.lease_expires_at: the in-progress lease, renewed while
the first request still runs (a long carrier wait no longer lets a retry in)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("lease_expires_at", didhub.db.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("lease_expires_at")
