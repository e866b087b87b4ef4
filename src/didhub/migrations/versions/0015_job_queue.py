"""job queue: Procrastinate's tables, types and functions (PostgreSQL only); job_ticks

On PostgreSQL the periodic jobs run on Procrastinate's queue (didhub/jobs/queue.py);
this applies the schema of the Procrastinate release pinned in pyproject.toml.
A later Procrastinate release that changes its schema comes with its own SQL
migrations (procrastinate/sql/migrations/): upgrading it means a didhub migration
that applies them. SQLite runs the jobs in-process and needs none of this.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_ticks",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("tick", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # The schema is a script of many statements with '%' in it: sent as it is
    # through the driver (psycopg runs a parameterless script as one simple query).
    raw = bind.connection.driver_connection
    assert raw is not None
    raw.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.drop_table("job_ticks")
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        "procrastinate_jobs, procrastinate_workers CASCADE"
    )
    op.execute(
        "DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, "
        "procrastinate_job_status CASCADE"
    )
    functions = op.get_bind().exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname LIKE 'procrastinate\\_%' AND n.nspname = current_schema()"
    )
    for (signature,) in functions.all():
        op.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
