"""e911: addresses, locations, a number's E911 provisioning

Revision ID: 0008
Revises: 0006 (re-chained after 0007 when the CNAM work merges)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "e911_addresses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("street", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("city", sa.String(length=60), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("postal_code", sa.String(length=10), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("caller_name", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("carrier_ref", sa.String(length=80), nullable=True),
        sa.Column("suggestion", sa.JSON(), nullable=True),
        sa.Column("created_at", didhub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("validated_at", didhub.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("e911_addresses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_e911_addresses_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "e911_locations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", didhub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["address_id"], ["e911_addresses.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("e911_locations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_e911_locations_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_e911_locations_address_id"), ["address_id"], unique=False
        )

    op.create_table(
        "number_e911",
        sa.Column("number_id", sa.String(length=40), nullable=False),
        sa.Column("address_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("updated_at", didhub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("provisioned_at", didhub.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["address_id"], ["e911_addresses.id"]),
        sa.ForeignKeyConstraint(["number_id"], ["phone_numbers.id"]),
        sa.PrimaryKeyConstraint("number_id"),
    )
    with op.batch_alter_table("number_e911", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_number_e911_address_id"), ["address_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_number_e911_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("number_e911", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_e911_status"))
        batch_op.drop_index(batch_op.f("ix_number_e911_address_id"))
    op.drop_table("number_e911")
    with op.batch_alter_table("e911_locations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e911_locations_address_id"))
        batch_op.drop_index(batch_op.f("ix_e911_locations_account_id"))
    op.drop_table("e911_locations")
    with op.batch_alter_table("e911_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e911_addresses_account_id"))
    op.drop_table("e911_addresses")
