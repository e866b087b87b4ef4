"""renewal storage: indexes a billing run can afford, room for in-place updates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:40:00

A renewal run writes a renewal row and moves ``renews_on`` for every number
once a month. The renewal rows keep the unique (number, period) index and gain
one by ledger transaction (what invoices look up); the single-column number and
account indexes were never read, and the account and ledger-transaction foreign
keys cost a lookup a row; ``didhub ledger check`` proves those rows instead.
On PostgreSQL, phone_numbers pages keep 20 % free so moving ``renews_on`` (not
indexed) is a HOT update that touches no index.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Names for SQLite's unnamed foreign keys, so batch mode can drop them.
NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("renewals", naming_convention=NAMES) as batch:
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint("renewals_account_id_fkey", type_="foreignkey")
            batch.drop_constraint("renewals_ledger_transaction_id_fkey", type_="foreignkey")
        else:
            batch.drop_constraint("fk_renewals_account_id", type_="foreignkey")
            batch.drop_constraint("fk_renewals_ledger_transaction_id", type_="foreignkey")
    op.drop_index("ix_renewals_number_id", table_name="renewals")
    op.drop_index("ix_renewals_account_id", table_name="renewals")
    op.create_index(
        "ix_renewals_ledger_transaction_id", "renewals", ["ledger_transaction_id"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE phone_numbers SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE phone_numbers RESET (fillfactor)")
    op.drop_index("ix_renewals_ledger_transaction_id", table_name="renewals")
    op.create_index("ix_renewals_account_id", "renewals", ["account_id"], unique=False)
    op.create_index("ix_renewals_number_id", "renewals", ["number_id"], unique=False)
    with op.batch_alter_table("renewals") as batch:
        batch.create_foreign_key("renewals_account_id_fkey", "accounts", ["account_id"], ["id"])
        batch.create_foreign_key(
            "renewals_ledger_transaction_id_fkey",
            "ledger_transactions",
            ["ledger_transaction_id"],
            ["id"],
        )
