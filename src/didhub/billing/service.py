"""Wallet reads. (Renewals, usage and invoices come with the billing engine.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub.accounts.service import Scope
from didhub.billing import ledger
from didhub.billing.models import LedgerEntry, LedgerTransaction


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
        query = query.where(LedgerEntry.id < before)
    return [
        WalletLine(e.id, t.id, t.kind, t.description, t.reference, e.amount, t.created_at)
        for e, t in session.execute(query)
    ]
