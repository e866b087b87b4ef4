"""users.role (admin | billing | read-only) and user_invitations: people
invited from the dashboard's Settings → People

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="admin"))
    op.create_table(
        "user_invitations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invited_by", sa.String(254), nullable=True),
        sa.Column("created_at", didhub.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", didhub.db.UtcDateTime(), nullable=False),
        sa.Column("accepted_at", didhub.db.UtcDateTime(), nullable=True),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_user_invitations_account_id", "user_invitations", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_user_invitations_account_id", "user_invitations")
    op.drop_table("user_invitations")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
