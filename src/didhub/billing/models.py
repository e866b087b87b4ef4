from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, BigId, Money, UtcDateTime


class Renewal(Base):
    """One monthly fee of one number for one period, billed once: the unique
    (number, period) is what makes re-running a billing run bill nothing."""

    __tablename__ = "renewals"
    __table_args__ = (UniqueConstraint("number_id", "period_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign keys: a billing run writes a million of these rows a month and
    # each key check costs a lookup a row. ``didhub ledger check`` proves
    # instead that each renewal transaction's rows add up to what the wallet
    # paid and that every row's number exists.
    # Looked up by number through the unique (number_id, period_start) index.
    number_id: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    # Invoices explain a renewal ledger transaction by its rows. None: a free
    # month (a 0.00 price), which moves no money and so posts nothing.
    ledger_transaction_id: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UsageRecord(Base):
    """One rated call. ``call_id`` is unique, so a record sent twice is ignored;
    ``ledger_transaction_id`` is set when its batch is posted to the wallet."""

    __tablename__ = "usage_records"
    __table_args__ = (
        # Today's outbound spend of a tenant or an owner (the daily limit).
        Index("ix_usage_records_tenant_direction_started", "tenant_id", "direction", "started_at"),
        Index(
            "ix_usage_records_account_direction_started", "account_id", "direction", "started_at"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(255), unique=True)
    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    direction: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    duration_seconds: Mapped[int]
    billable_seconds: Mapped[int]
    rate: Mapped[Decimal] = mapped_column(Money())
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    ledger_transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), default=None
    )
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # An outbound call's dialled number (E.164): rated by the outbound rate table.
    destination: Mapped[str | None] = mapped_column(String(20), default=None)


class OutboundRate(Base):
    """What an outbound minute costs by destination prefix (E.164 digits, no
    +): the longest prefix of the dialled number wins; a destination no prefix
    covers is rated at ``DIDHUB_OUTBOUND_DEFAULT_RATE``."""

    __tablename__ = "outbound_rates"

    prefix: Mapped[str] = mapped_column(String(15), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Money())
    description: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RetailPrice(Base):
    """What a partner charges its tenants, by number type: the partner's default
    (``applies_to`` = ``"default"``) or one tenant's override (its id)."""

    __tablename__ = "retail_prices"
    __table_args__ = (UniqueConstraint("partner_id", "applies_to", "phone_number_type"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    applies_to: Mapped[str] = mapped_column(String(40))
    phone_number_type: Mapped[str] = mapped_column(String(16))
    monthly: Mapped[Decimal] = mapped_column(Money())
    setup: Mapped[Decimal] = mapped_column(Money())
    per_minute_inbound: Mapped[Decimal] = mapped_column(Money())
    per_minute_outbound: Mapped[Decimal] = mapped_column(Money())
    # Percent over the platform's rate for outbound calls rated by destination.
    outbound_markup_percent: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RetailPriceVersion(Base):
    """A retail price as it was set, in force from ``valid_from`` until the next
    version of the same (partner, applies_to, number type). Rows are only ever
    added, so the price an event happened under never changes afterwards;
    ``retail_prices`` holds the latest version of each, for reading and listing."""

    __tablename__ = "retail_price_versions"
    __table_args__ = (
        Index(
            "ix_retail_price_versions_key",
            "partner_id",
            "applies_to",
            "phone_number_type",
            "valid_from",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    applies_to: Mapped[str] = mapped_column(String(40))
    phone_number_type: Mapped[str] = mapped_column(String(16))
    monthly: Mapped[Decimal] = mapped_column(Money())
    setup: Mapped[Decimal] = mapped_column(Money())
    per_minute_inbound: Mapped[Decimal] = mapped_column(Money())
    per_minute_outbound: Mapped[Decimal] = mapped_column(Money())
    outbound_markup_percent: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())


class ResaleCharge(Base):
    """A tenant charged retail by its partner for the same event the partner was
    charged wholesale for: a setup, a renewal, a call. ``source`` names that
    event and is unique, so no event is resold twice."""

    __tablename__ = "resale_charges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # setup | monthly | usage
    partner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), index=True)
    retail: Mapped[Decimal] = mapped_column(Money())
    wholesale: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    # The day of the event resold (a renewal's period start, a call's start).
    occurred_on: Mapped[date] = mapped_column(Date, index=True)
    ledger_transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
