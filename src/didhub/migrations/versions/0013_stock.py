"""stock_numbers: blocks of numbers the platform owns and sells itself

Revision ID: 0013
Revises: 0012

Each filter a search uses has an index ending in (npa, nxx, e164), the E.164
order of +1 numbers, so a page of a filtered search over millions of rows is
read from the index without a sort.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_numbers",
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("npa", sa.String(length=3), nullable=False),
        sa.Column("nxx", sa.String(length=3), nullable=False),
        sa.Column("rate_center", sa.String(length=64), nullable=False),
        sa.Column("city", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("cost", didhub.db.Money(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("imported_at", didhub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sold_at", didhub.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("e164"),
    )
    with op.batch_alter_table("stock_numbers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stock_numbers_state_npa_nxx", ["state", "npa", "nxx", "e164"], unique=False
        )
        batch_op.create_index("ix_stock_numbers_npa_nxx", ["npa", "nxx", "e164"], unique=False)
        batch_op.create_index(
            "ix_stock_numbers_rate_center", ["rate_center", "npa", "nxx", "e164"], unique=False
        )
        batch_op.create_index("ix_stock_numbers_city", ["city", "npa", "nxx", "e164"], unique=False)
        batch_op.create_index(batch_op.f("ix_stock_numbers_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_numbers_order_id"))
        batch_op.drop_index("ix_stock_numbers_city")
        batch_op.drop_index("ix_stock_numbers_rate_center")
        batch_op.drop_index("ix_stock_numbers_npa_nxx")
        batch_op.drop_index("ix_stock_numbers_state_npa_nxx")
    op.drop_table("stock_numbers")
