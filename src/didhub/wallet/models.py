"""The wallet's tables: the double-entry books, an account's billing profile
(standing, auto-recharge), its card and card charges, and its money events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, BigId, Money, UtcDateTime


class LedgerAccount(Base):
    """A book in the double-entry ledger. Wallets belong to an account
    (``owner_id``); platform books (revenue, funding) have no owner.
    ``balance`` is a cache of the sum of its entries, updated in the same
    transaction under the row lock; ``didhub ledger check`` proves it."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("owner_id", "kind", "currency"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    kind: Mapped[str] = mapped_column(String(32))  # wallet | revenue | funding | ...
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # funding | purchase | refund | ...
    description: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class LedgerEntry(Base):
    """One side of a transaction. Positive amounts credit a book; a wallet's
    balance is what the account may spend."""

    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="ck_ledger_entries_nonzero"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())


class BillingProfile(Base):
    """An account's billing state and auto-recharge settings.

    ``standing``: ``good``; ``past_due`` since a renewal the wallet couldn't pay
    (grace period running); ``suspended`` once the grace period ended (its
    numbers stop routing); back to ``good`` when every due renewal is paid."""

    __tablename__ = "billing_profiles"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    auto_recharge_enabled: Mapped[bool] = mapped_column(default=False)
    auto_recharge_threshold: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    auto_recharge_amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    standing: Mapped[str] = mapped_column(String(16), default="good")
    past_due_since: Mapped[date | None] = mapped_column(Date, default=None)
    suspended_since: Mapped[date | None] = mapped_column(Date, default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PaymentCard(Base):
    """The card on file: the gateway's token and what a person recognises it by.
    Never a card number."""

    __tablename__ = "payment_cards"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(255))
    customer: Mapped[str | None] = mapped_column(String(255), default=None)
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int]
    exp_year: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CardCharge(Base):
    """One attempt to charge the card on file. ``idempotency_key`` is what the
    gateway sees, so asking again for an ``unknown`` charge never charges twice."""

    __tablename__ = "card_charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # topup | auto_recharge
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    # pending -> succeeded | declined | unknown ; unknown -> succeeded | declined
    status: Mapped[str] = mapped_column(String(16), index=True)
    gateway: Mapped[str] = mapped_column(String(16))
    gateway_charge_id: Mapped[str | None] = mapped_column(String(255), default=None)
    decline_code: Mapped[str | None] = mapped_column(String(64), default=None)
    message: Mapped[str | None] = mapped_column(String(500), default=None)
    ledger_transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AccountEvent(Base):
    """What happened to an account's money, in words it can read: renewal
    charged, payment failed, past due, suspended, released for non-payment."""

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
