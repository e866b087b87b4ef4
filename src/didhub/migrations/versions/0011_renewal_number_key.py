"""renewal rows: the number's foreign key goes too

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 12:45:00

Like the account and ledger-transaction keys in 0005: a lookup a row on a
million-row monthly insert; ``didhub ledger check`` proves the rows instead.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Names for SQLite's unnamed foreign keys, so batch mode can drop them.
NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("renewals", naming_convention=NAMES) as batch:
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint("renewals_number_id_fkey", type_="foreignkey")
        else:
            batch.drop_constraint("fk_renewals_number_id", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("renewals") as batch:
        batch.create_foreign_key("renewals_number_id_fkey", "phone_numbers", ["number_id"], ["id"])
