"""porting: port-in orders, the carrier orders they split into, their numbers,
their documents (the files stay out of the database), port-out PINs

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-02 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import didhub.db

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "port_orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("entity_name", sa.String(200), nullable=False),
        sa.Column("authorized_person", sa.String(200), nullable=False),
        sa.Column("account_number", sa.String(60), nullable=False),
        sa.Column("pin", sa.String(20), nullable=True),
        sa.Column("billing_phone_number", sa.String(20), nullable=False),
        sa.Column(
            "e911_address_id", sa.String(40), sa.ForeignKey("e911_addresses.id"), nullable=True
        ),
        sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id"), nullable=True),
        sa.Column("cnam", sa.String(15), nullable=True),
        sa.Column("foc_date_requested", sa.Date(), nullable=True),
        sa.Column("foc_date", sa.Date(), nullable=True),
        sa.Column("ported_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("ported_count", sa.Integer(), nullable=False),
        sa.Column("created_at", didhub.db.UtcDateTime(), nullable=False),
        sa.Column("updated_at", didhub.db.UtcDateTime(), nullable=False),
        sa.Column("submitted_at", didhub.db.UtcDateTime(), nullable=True),
    )
    op.create_index("ix_port_orders_owner_id", "port_orders", ["owner_id"])
    op.create_index("ix_port_orders_tenant_id", "port_orders", ["tenant_id"])
    op.create_index("ix_port_orders_status", "port_orders", ["status"])
    op.create_table(
        "port_numbers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("port_orders.id"), nullable=False),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("portable", sa.Boolean(), nullable=True),
        sa.Column("fast_portable", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("losing_carrier", sa.String(120), nullable=True),
        sa.Column("carrier_order_id", sa.String(80), nullable=True),
        sa.Column("number_id", sa.String(40), sa.ForeignKey("phone_numbers.id"), nullable=True),
    )
    op.create_index("ix_port_numbers_order_id", "port_numbers", ["order_id"])
    op.create_index("ix_port_numbers_e164", "port_numbers", ["e164"])
    op.create_table(
        "port_carrier_orders",
        sa.Column("carrier_order_id", sa.String(80), primary_key=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("port_orders.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("losing_carrier", sa.String(120), nullable=True),
        sa.Column("foc_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("phone_numbers", sa.JSON(), nullable=False),
        sa.Column("updated_at", didhub.db.UtcDateTime(), nullable=False),
    )
    op.create_index("ix_port_carrier_orders_order_id", "port_carrier_orders", ["order_id"])
    op.create_table(
        "port_documents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("port_orders.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("carrier_document_id", sa.String(80), nullable=True),
        sa.Column("created_at", didhub.db.UtcDateTime(), nullable=False),
    )
    op.create_index("ix_port_documents_order_id", "port_documents", ["order_id"])
    op.create_table(
        "port_out_pins",
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("pin", sa.String(20), nullable=False),
        sa.Column("updated_at", didhub.db.UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("port_out_pins")
    op.drop_table("port_documents")
    op.drop_table("port_carrier_orders")
    op.drop_table("port_numbers")
    op.drop_table("port_orders")
