from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, BigId, Money, UtcDateTime

# The partial unique indexes below make "two buyers own one number" impossible
# at the database, whatever the application does.
_LIVE = "status IN ('provisioning', 'active', 'suspended', 'releasing')"
LIVE_NUMBER_INDEX = "uq_phone_numbers_live_e164"


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (
        Index(
            LIVE_NUMBER_INDEX,
            "e164",
            unique=True,
            sqlite_where=text(_LIVE),
            postgresql_where=text(_LIVE),
        ),
        Index("ix_phone_numbers_owner_status", "owner_id", "status"),
        # settle_order and reconcile find an order's numbers; reconcile's sweep
        # finds the numbers being released (docs/performance.md).
        Index("ix_phone_numbers_order_id", "order_id"),
        Index("ix_phone_numbers_status_carrier", "status", "carrier"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    phone_number_type: Mapped[str] = mapped_column(String(16))
    locality: Mapped[str | None] = mapped_column(String(120), default=None)
    administrative_area: Mapped[str | None] = mapped_column(String(8), default=None)
    rate_center: Mapped[str | None] = mapped_column(String(32), default=None)
    # A label the owner gives it (the Twilio-compatible API's FriendlyName).
    friendly_name: Mapped[str | None] = mapped_column(String(64), default=None)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    # See numbers/lifecycle.py for the allowed transitions.
    status: Mapped[str] = mapped_column(String(16))
    is_managed: Mapped[bool] = mapped_column(default=True)
    carrier: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("number_orders.id"), default=None)
    # The account that bought (and pays for) the number, and the tenant it serves.
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=None
    )
    monthly_cost: Mapped[Decimal] = mapped_column(Money())
    upfront_cost: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    failure_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    purchased_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    renews_on: Mapped[date | None] = mapped_column(Date, default=None)
    # Monthly periods paid since purchase (the purchase pays the first); the next
    # renewal is the purchase date plus this many months (the 31st stays the 31st
    # where a month has one).
    billed_periods: Mapped[int] = mapped_column(default=1)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # Set by reconcile when the carrier no longer lists the number as ours:
    # renewals skip it until the carrier lists it again (then cleared).
    carrier_missing_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class NumberAssignment(Base):
    """A number pointed at an agent for one direction. Ended assignments stay
    as history (``ended_at``); at most one live one per number and direction."""

    __tablename__ = "number_assignments"
    __table_args__ = (
        Index(
            "uq_number_assignments_live",
            "number_id",
            "assignment_type",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    assignment_type: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class NumberHold(Base):
    """A quote's short hold: the number is kept for its buyer and hidden from
    everyone else's searches until ``expires_at``."""

    __tablename__ = "number_holds"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    holder_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    quote_id: Mapped[str] = mapped_column(String(40))
    # What the held number would cost now (first month + setup): an account's
    # holds are worth at most what it can pay.
    amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    # When this holder's holding of the number began; re-quotes keep it, so a
    # number is held for one buyer at most hold_max_total_minutes in a row.
    first_held_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class NumberOrder(Base):
    __tablename__ = "number_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(32))
    # pending (carrier outcome not known yet) | settled
    status: Mapped[str] = mapped_column(String(16), index=True)
    total: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    ledger_transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class NumberEvent(Base):
    """The number's history: every state change and assignment, kept after release."""

    __tablename__ = "number_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), index=True)
    account_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CnamListing(Base):
    """A number's caller-name (CNAM) listing at its carrier. ``name`` is the
    number's own CNAM (NULL: inherit the tenant's, else the partner's default);
    ``listed_name`` is the effective name last sent (NULL: no listing).
    ``revision`` grows with every change so a slow carrier answer never
    overwrites a newer change; ``pushed_at`` is when the push began (the sweep
    re-pushes ``pending`` rows whose push is old enough to have been lost)."""

    __tablename__ = "cnam_listings"

    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(15), default=None)
    listed_name: Mapped[str | None] = mapped_column(String(15), default=None)
    source: Mapped[str] = mapped_column(String(16))  # number | tenant | partner | none
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | active | failed
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    revision: Mapped[int] = mapped_column(default=1)
    pushed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
