"""phone_numbers.friendly_name: a label the owner gives a number (the
Twilio-compatible API's FriendlyName)

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-02 13:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("phone_numbers") as batch:
        batch.add_column(sa.Column("friendly_name", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("phone_numbers") as batch:
        batch.drop_column("friendly_name")
