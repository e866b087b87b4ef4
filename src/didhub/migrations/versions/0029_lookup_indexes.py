"""phone_numbers indexes for the purchase, release and reconcile look-ups:
order_id (settle_order, reconcile) and (status, carrier) (the releasing sweep)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_phone_numbers_order_id", "phone_numbers", ["order_id"])
    op.create_index("ix_phone_numbers_status_carrier", "phone_numbers", ["status", "carrier"])


def downgrade() -> None:
    op.drop_index("ix_phone_numbers_status_carrier", table_name="phone_numbers")
    op.drop_index("ix_phone_numbers_order_id", table_name="phone_numbers")
