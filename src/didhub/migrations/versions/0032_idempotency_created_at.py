"""An index on idempotency_records.created_at, for the purge of old keys
(the ``idempotency.purge`` job).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02 16:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_created_at", table_name="idempotency_records")
