"""retail_price_versions: every retail price as set, from when it applied

Revision ID: 0017
Revises: 0016

A tenant pays retail only for an event that happened while a retail price
applied, at that price: resale looks the price up by the event's time. Each
price already set becomes its first version, valid from when it was last set
(its earlier values were never kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retail_price_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("applies_to", sa.String(length=40), nullable=False),
        sa.Column("phone_number_type", sa.String(length=16), nullable=False),
        sa.Column("monthly", didhub.db.Money(), nullable=False),
        sa.Column("setup", didhub.db.Money(), nullable=False),
        sa.Column("per_minute_inbound", didhub.db.Money(), nullable=False),
        sa.Column("per_minute_outbound", didhub.db.Money(), nullable=False),
        sa.Column("valid_from", didhub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_retail_price_versions_key",
        "retail_price_versions",
        ["partner_id", "applies_to", "phone_number_type", "valid_from"],
        unique=False,
    )
    op.execute(
        "INSERT INTO retail_price_versions (partner_id, applies_to, phone_number_type, "
        "monthly, setup, per_minute_inbound, per_minute_outbound, valid_from) "
        "SELECT partner_id, applies_to, phone_number_type, monthly, setup, "
        "per_minute_inbound, per_minute_outbound, updated_at FROM retail_prices"
    )


def downgrade() -> None:
    op.drop_index("ix_retail_price_versions_key", table_name="retail_price_versions")
    op.drop_table("retail_price_versions")
