"""The directory generation: routing_generation's second row (id 2), which a
commit moves when it writes a table an API key's scope or an event's webhook
subscribers are read from (db.DIRECTORY_TABLES), so a purchase no longer
empties every server's kept API keys

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = sa.table("routing_generation", sa.column("id"), sa.column("generation"))
    op.bulk_insert(table, [{"id": 2, "generation": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM routing_generation WHERE id = 2")
