"""Port-in orders, the carrier's orders they split into, their numbers and documents."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, BigId, UtcDateTime


class PortOrder(Base):
    """One tenant's request to bring numbers in. ``status`` moves only through
    ``porting/lifecycle.py``'s table, each move one conditional UPDATE."""

    __tablename__ = "port_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Who asked and pays (a partner or the tenant itself), and the tenant served.
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    entity_name: Mapped[str] = mapped_column(String(200))
    authorized_person: Mapped[str] = mapped_column(String(200))
    account_number: Mapped[str] = mapped_column(String(60))
    pin: Mapped[str | None] = mapped_column(String(20), default=None)
    billing_phone_number: Mapped[str] = mapped_column(String(20))
    # The service address and E911 address (required before submission).
    e911_address_id: Mapped[str | None] = mapped_column(
        ForeignKey("e911_addresses.id"), default=None
    )
    # Routing and CNAM the numbers take when they arrive.
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"), default=None)
    cnam: Mapped[str | None] = mapped_column(String(15), default=None)
    foc_date_requested: Mapped[date | None] = mapped_column(Date, default=None)
    foc_date: Mapped[date | None] = mapped_column(Date, default=None)
    ported_on: Mapped[date | None] = mapped_column(Date, default=None)
    # The latest exception's reason, in the losing carrier's words.
    reason: Mapped[str | None] = mapped_column(String(1000), default=None)
    ported_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class PortNumber(Base):
    """A number of an order: its portability check and the carrier order it is in."""

    __tablename__ = "port_numbers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("port_orders.id"), index=True)
    e164: Mapped[str] = mapped_column(String(20), index=True)
    portable: Mapped[bool | None] = mapped_column(default=None)
    fast_portable: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    losing_carrier: Mapped[str | None] = mapped_column(String(120), default=None)
    carrier_order_id: Mapped[str | None] = mapped_column(String(80), default=None)
    number_id: Mapped[str | None] = mapped_column(ForeignKey("phone_numbers.id"), default=None)


class PortCarrierOrder(Base):
    """One of the carrier's orders ours was split into (by losing carrier)."""

    __tablename__ = "port_carrier_orders"

    carrier_order_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("port_orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    losing_carrier: Mapped[str | None] = mapped_column(String(120), default=None)
    foc_date: Mapped[date | None] = mapped_column(Date, default=None)
    reason: Mapped[str | None] = mapped_column(String(1000), default=None)
    phone_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PortDocument(Base):
    """An LOA or a bill: the row says where the file is; the bytes are never
    in the database (``porting/documents.py``)."""

    __tablename__ = "port_documents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("port_orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # loa | bill
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(300))
    signed: Mapped[bool] = mapped_column(default=False)  # an uploaded signed LOA
    carrier_document_id: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PortOutPin(Base):
    """An account's port-out PIN, pushed to carriers that support one."""

    __tablename__ = "port_out_pins"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    pin: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
