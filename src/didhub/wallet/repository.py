"""Wallet reads: the balance with the card and auto-recharge settings, the
wallet's movements, and the account's billing events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, literal, select
from sqlalchemy.orm import Session

from didhub.tenancy import Scope
from didhub.wallet import ledger
from didhub.wallet.models import (
    AccountEvent,
    BillingProfile,
    LedgerEntry,
    LedgerTransaction,
    PaymentCard,
)


@dataclass(frozen=True)
class WalletSummary:
    balance: Decimal
    currency: str
    profile: BillingProfile | None  # None until the account first used billing
    card: PaymentCard | None

    @property
    def standing(self) -> str:
        return self.profile.standing if self.profile else "good"


def wallet_summary(session: Session, account_id: str, currency: str) -> WalletSummary:
    return WalletSummary(
        balance=ledger.wallet_balance(session, account_id, currency),
        currency=currency,
        profile=session.get(BillingProfile, account_id),
        card=session.get(PaymentCard, account_id),
    )


def events(session: Session, account_id: str, limit: int = 50) -> list[AccountEvent]:
    """The account's billing events, newest first."""
    return list(
        session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account_id)
            .order_by(AccountEvent.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class WalletLine:
    entry_id: int
    transaction_id: str
    kind: str
    description: str
    reference: str | None
    amount: Decimal
    created_at: datetime


def transactions(
    session: Session, scope: Scope, currency: str, limit: int = 50, before: int | None = None
) -> list[WalletLine]:
    """The caller's wallet movements, newest first."""
    query = (
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.ledger_account_id == ledger.wallet_id(scope.account_id, currency))
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    if before is not None:
        # As BIGINT: a cursor past the INTEGER column's range is older than every id.
        query = query.where(LedgerEntry.id < literal(before, BigInteger))
    return [
        WalletLine(e.id, t.id, t.kind, t.description, t.reference, e.amount, t.created_at)
        for e, t in session.execute(query)
    ]
