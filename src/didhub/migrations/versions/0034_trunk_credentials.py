"""Outbound trunks that authenticate the edge with SIP digest credentials:
a trunk's username and password (NULL both for an IP-authenticated trunk)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-02 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_trunks") as batch_op:
        batch_op.add_column(sa.Column("auth_username", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("auth_password", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_trunks") as batch_op:
        batch_op.drop_column("auth_password")
        batch_op.drop_column("auth_username")
