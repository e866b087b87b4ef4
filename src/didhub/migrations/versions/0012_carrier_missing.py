"""phone_numbers.carrier_missing_since: reconcile's flag for a number the
carrier no longer lists (renewals skip it)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("phone_numbers") as batch:
        batch.add_column(sa.Column("carrier_missing_since", didhub.db.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("phone_numbers") as batch:
        batch.drop_column("carrier_missing_since")
