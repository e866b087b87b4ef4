"""64-bit ids for the tables that only grow: on PostgreSQL their INTEGER ids
(and the sequences behind them, created AS integer) would end at
2,147,483,647 and every insert after would fail. SQLite's INTEGER PRIMARY KEY
is already the 64-bit rowid: nothing to do there.

On PostgreSQL each ALTER rewrites its table under an exclusive lock: on a
large ledger, run it in a maintenance window (docs/operations.md).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-02 16:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

# table -> its id column
GROWING = {
    "ledger_entries": "id",
    "account_events": "id",
    "renewals": "id",
    "usage_records": "id",
    "retail_prices": "id",
    "retail_price_versions": "id",
    "resale_charges": "id",
    "events": "seq",
    "webhook_attempts": "id",
    "number_events": "id",
    "port_numbers": "id",
}


def _alter(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in GROWING.items():
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {kind}')
        sequence = (
            op.get_bind()
            .exec_driver_sql(f"SELECT pg_get_serial_sequence('\"{table}\"', '{column}')")
            .scalar()
        )
        if sequence is not None:
            op.execute(f"ALTER SEQUENCE {sequence} AS {kind}")
    op.execute(f'ALTER TABLE "webhook_deliveries" ALTER COLUMN "event_seq" TYPE {kind}')


def upgrade() -> None:
    _alter("bigint")


def downgrade() -> None:
    _alter("integer")
