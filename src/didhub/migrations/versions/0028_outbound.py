"""Outbound calls: agents' SIP credentials (HA1 only) and outbound trunks

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_credentials",
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id"), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("realm", sa.String(255), nullable=False),
        sa.Column("ha1", sa.String(32), nullable=False),
        sa.Column("created_at", didhub.db.UtcDateTime(), nullable=False),
    )
    op.create_index("ix_sip_credentials_tenant_id", "sip_credentials", ["tenant_id"])
    op.create_table(
        "outbound_trunks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("tech_prefix", sa.String(16), nullable=False),
        sa.Column("cost", didhub.db.Money(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("created_at", didhub.db.UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbound_trunks")
    op.drop_index("ix_sip_credentials_tenant_id", "sip_credentials")
    op.drop_table("sip_credentials")
