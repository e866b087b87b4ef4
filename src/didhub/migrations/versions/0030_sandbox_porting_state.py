"""The sandbox carrier's porting state in the database (its orders, port-outs
and port-out PINs), so every process running the sandbox agrees

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_port_orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("losing_carrier", sa.String(40), nullable=False),
        sa.Column("pin", sa.String(20), nullable=True),
        sa.Column("account_number", sa.String(60), nullable=False),
        sa.Column("requested_foc_date", sa.String(10), nullable=False),
        sa.Column("submitted_at", didhub.db.UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("foc_date", sa.String(10), nullable=True),
    )
    op.create_table(
        "sandbox_port_outs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("ported_on", sa.String(10), nullable=False),
        sa.Column("winning_carrier", sa.String(60), nullable=False),
        sa.Column("reported_at", didhub.db.UtcDateTime(), nullable=False),
    )
    op.create_table(
        "sandbox_port_pins",
        sa.Column("e164", sa.String(20), primary_key=True),
        sa.Column("pin", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sandbox_port_pins")
    op.drop_table("sandbox_port_outs")
    op.drop_table("sandbox_port_orders")
