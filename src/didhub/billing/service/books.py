"""``didhub ledger check``: the books proved, the wallet's and billing's.

The ledger proves its own books (every transaction balances, every wallet's
cached balance equals its entries, no transaction across currencies); billing
adds what only it knows: renewal rows carry no foreign keys (a billing run
writes a million a month), so each renewal transaction's rows must add up to
what its wallet paid, and every row's number must exist."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from didhub.billing.models import Renewal
from didhub.numbers.models import PhoneNumber
from didhub.wallet import ledger
from didhub.wallet.ledger import LedgerProblem
from didhub.wallet.models import LedgerAccount, LedgerEntry, LedgerTransaction


def check(session: Session) -> list[LedgerProblem]:
    """Every problem with the books; an empty list when they are right."""
    return ledger.check(session) + _renewal_problems(session)


def _renewal_problems(session: Session) -> list[LedgerProblem]:
    """Renewal rows carry no foreign keys (see ``Renewal``): prove that every
    renewal transaction's rows add up to what its wallet paid, and that no
    row points at a transaction that isn't one."""
    rows = (
        select(Renewal.ledger_transaction_id, func.sum(Renewal.amount).label("total"))
        .where(Renewal.ledger_transaction_id.is_not(None))
        .group_by(Renewal.ledger_transaction_id)
        .subquery()
    )
    paid = (
        select(LedgerEntry.transaction_id, (-func.sum(LedgerEntry.amount)).label("total"))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.ledger_account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerTransaction.kind == "renewal", LedgerAccount.owner_id.is_not(None))
        .group_by(LedgerEntry.transaction_id)
        .subquery()
    )
    problems: list[LedgerProblem] = []
    for txn_id, renewed, debited in session.execute(
        select(rows.c.ledger_transaction_id, rows.c.total, paid.c.total)
        .outerjoin(paid, paid.c.transaction_id == rows.c.ledger_transaction_id)
        .where((paid.c.total.is_(None)) | (paid.c.total != rows.c.total))
    ):
        detail = (
            f"renewal rows of {renewed} point at no renewal transaction"
            if debited is None
            else f"renewal rows sum to {renewed} but the wallet paid {debited}"
        )
        problems.append(LedgerProblem("renewal_mismatch", txn_id, detail))
    for txn_id, debited in session.execute(
        select(paid.c.transaction_id, paid.c.total)
        .outerjoin(rows, rows.c.ledger_transaction_id == paid.c.transaction_id)
        .where(rows.c.ledger_transaction_id.is_(None))
    ):
        problems.append(
            LedgerProblem("renewal_mismatch", txn_id, f"{debited} paid for no renewal rows")
        )
    # A free month (a 0.00 price) is a renewal row with no transaction; any
    # other amount must have been paid.
    for renewal_id, amount in session.execute(
        select(Renewal.id, Renewal.amount).where(
            Renewal.ledger_transaction_id.is_(None), Renewal.amount != 0
        )
    ):
        problems.append(
            LedgerProblem("renewal_mismatch", str(renewal_id), f"{amount} due but never paid")
        )
    for renewal_id, number_id in session.execute(
        select(Renewal.id, Renewal.number_id)
        .outerjoin(PhoneNumber, PhoneNumber.id == Renewal.number_id)
        .where(PhoneNumber.id.is_(None))
    ):
        problems.append(
            LedgerProblem("renewal_mismatch", str(renewal_id), f"no number {number_id}")
        )
    return problems
