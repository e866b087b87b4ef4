"""Outbound guards and rating: per-account outbound settings (caller-ID
policy, destinations, daily spend, concurrent calls, IP allow-list), the
outbound rate table by destination prefix, a usage record's destination, and
a partner's retail markup on destination-rated calls

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_settings",
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("caller_id_policy", sa.String(16), nullable=True),
        sa.Column("allowed_countries", sa.String(1000), nullable=True),
        sa.Column("denied_number_types", sa.String(200), nullable=True),
        sa.Column("daily_spend_limit", didhub.db.Money(), nullable=True),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("allowed_ips", sa.String(2000), nullable=True),
        sa.Column("updated_at", didhub.db.UtcDateTime(), nullable=False),
    )
    op.create_table(
        "outbound_rates",
        sa.Column("prefix", sa.String(15), primary_key=True),
        sa.Column("rate", didhub.db.Money(), nullable=False),
        sa.Column("description", sa.String(100), nullable=False),
        sa.Column("updated_at", didhub.db.UtcDateTime(), nullable=False),
    )
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("destination", sa.String(20), nullable=True))
    for table in ("retail_prices", "retail_price_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "outbound_markup_percent",
                    didhub.db.Money(),
                    nullable=False,
                    server_default="0",
                )
            )
    # Today's outbound spend of a tenant (the daily limit), read per INVITE.
    op.create_index(
        "ix_usage_records_tenant_direction_started",
        "usage_records",
        ["tenant_id", "direction", "started_at"],
    )
    op.create_index(
        "ix_usage_records_account_direction_started",
        "usage_records",
        ["account_id", "direction", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_usage_records_account_direction_started", table_name="usage_records")
    op.drop_index("ix_usage_records_tenant_direction_started", table_name="usage_records")
    for table in ("retail_price_versions", "retail_prices"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("outbound_markup_percent")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("destination")
    op.drop_table("outbound_rates")
    op.drop_table("outbound_settings")
