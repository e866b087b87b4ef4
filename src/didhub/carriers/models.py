"""The carriers domain's tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, Money, UtcDateTime

# A stock number's status.
AVAILABLE = "available"
SOLD = "sold"


class SandboxAllocation(Base):
    __tablename__ = "sandbox_allocations"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16))  # "active" | "released"
    allocated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When it was given back: it ages (isn't sold again) for the aging period.
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The CNAM listing (caller name) the carrier holds for the number.
    cnam: Mapped[str | None] = mapped_column(String(15), default=None)


class SandboxPortOrder(Base):
    """The sandbox carrier's porting order (``carriers/sandbox_porting.py``):
    kept in the database so every process running the sandbox (servers, the
    CLI, workers) sees the same order, as a real carrier's would be."""

    __tablename__ = "sandbox_port_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The didhub order it was made for (PortRequestData.reference).
    reference: Mapped[str] = mapped_column(String(40))
    numbers: Mapped[list[str]] = mapped_column(JSON)
    losing_carrier: Mapped[str] = mapped_column(String(40))
    # What the losing carrier checks, and the FOC date asked for (ISO).
    pin: Mapped[str | None] = mapped_column(String(20), default=None)
    account_number: Mapped[str] = mapped_column(String(60))
    requested_foc_date: Mapped[str] = mapped_column(String(10))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    foc_date: Mapped[str | None] = mapped_column(String(10), default=None)


class SandboxPortOut(Base):
    """A number another carrier took from the sandbox (``port_away``)."""

    __tablename__ = "sandbox_port_outs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    e164: Mapped[str] = mapped_column(String(20))
    ported_on: Mapped[str] = mapped_column(String(10))
    winning_carrier: Mapped[str] = mapped_column(String(60))
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SandboxPortPin(Base):
    """A sandbox number's port-out PIN."""

    __tablename__ = "sandbox_port_pins"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    pin: Mapped[str] = mapped_column(String(20))


class StockNumber(Base):
    __tablename__ = "stock_numbers"
    __table_args__ = (
        Index("ix_stock_numbers_state_npa_nxx", "state", "npa", "nxx", "e164"),
        Index("ix_stock_numbers_npa_nxx", "npa", "nxx", "e164"),
        Index("ix_stock_numbers_rate_center", "rate_center", "npa", "nxx", "e164"),
        Index("ix_stock_numbers_city", "city", "npa", "nxx", "e164"),
    )

    e164: Mapped[str] = mapped_column(String(16), primary_key=True)
    country: Mapped[str] = mapped_column(String(2))  # "US" | "CA"
    number_type: Mapped[str] = mapped_column(String(16))  # "local" | "toll-free"
    npa: Mapped[str] = mapped_column(String(3))
    nxx: Mapped[str] = mapped_column(String(3))
    # Upper case, single spaces: what searches compare against.
    rate_center: Mapped[str] = mapped_column(String(64))
    city: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(2))
    cost: Mapped[Decimal] = mapped_column(Money())  # what the block cost the platform, per number
    status: Mapped[str] = mapped_column(String(16), default=AVAILABLE)
    order_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sold_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # When a buyer gave it back: it ages (isn't sold again) for the aging period.
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
