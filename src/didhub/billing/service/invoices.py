"""Monthly invoices (statements), built from the ledger so they always add up:
opening balance + credits − charges = closing balance, with every ledger
transaction of the month explained line by line (a number's setup and first
month, each renewal period, calls per number, a provider's charges, top-ups,
refunds)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from didhub.accounts.models import Account
from didhub.billing.models import Renewal, ResaleCharge, UsageRecord
from didhub.billing.service import rating
from didhub.config import Settings
from didhub.errors import NotFound, ValidationFailed
from didhub.numbers.models import PhoneNumber
from didhub.wallet import ledger
from didhub.wallet.models import LedgerEntry, LedgerTransaction

RESALE_LABELS = {"setup": "Setup and first month", "monthly": "Monthly fee", "usage": "Calls"}
CREDIT_LABELS = {
    "funding": "Credit",
    "card_topup": "Card top-up",
    "auto_recharge": "Auto-recharge",
    "refund": "Refund",
}


@dataclass(frozen=True)
class InvoiceLine:
    day: date
    kind: str  # setup | monthly | renewal | usage | resale | credit | income
    description: str
    amount: Decimal  # positive: a charge; negative: a credit
    phone_number: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    minutes: int | None = None


@dataclass
class Invoice:
    account_id: str
    account_name: str
    month: str
    currency: str
    opening_balance: Decimal
    closing_balance: Decimal
    lines: list[InvoiceLine] = field(default_factory=list)
    tax_name: str | None = None
    tax_rate: Decimal = Decimal("0")  # a fraction: 0.10 is 10 %, included in prices

    @property
    def charges(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.amount > 0), Decimal("0"))

    @property
    def tax_percent(self) -> str:
        return f"{(self.tax_rate * 100).normalize():f}"

    @property
    def tax_included(self) -> Decimal:
        """The tax contained in the month's charges (prices include it), to the cent."""
        if not self.tax_name or not self.tax_rate:
            return Decimal("0.00")
        return (self.charges * self.tax_rate / (1 + self.tax_rate)).quantize(
            ledger.CENTS, rounding=ROUND_HALF_UP
        )

    @property
    def credits(self) -> Decimal:
        return -sum((line.amount for line in self.lines if line.amount < 0), Decimal("0"))


def parse_month(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a month like 2026-11", field="month") from None


def _next_month(start: date) -> date:
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _balance_before(session: Session, book: str, moment: datetime) -> Decimal:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.ledger_account_id == book, LedgerTransaction.created_at < moment)
    )
    return Decimal(total or 0)


def months(session: Session, account_id: str, currency: str) -> list[str]:
    """The months in which the account's wallet moved, newest first."""
    book = ledger.wallet_id(account_id, currency)
    stamps = session.scalars(
        select(LedgerTransaction.created_at)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.ledger_account_id == book)
    )
    return sorted({s.strftime("%Y-%m") for s in stamps}, reverse=True)


def build(session: Session, settings: Settings, account_id: str, month: str) -> Invoice:
    """The account's invoice for ``month`` (``2026-11``) in the platform currency,
    with the configured tax shown as included."""
    currency, tax_name, tax_rate = settings.currency, settings.tax_name, settings.tax_rate
    start = parse_month(month)
    end = _next_month(start)
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found", field="account_id")
    book = ledger.wallet_id(account_id, currency)
    entries = session.execute(
        select(LedgerEntry.amount, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerEntry.ledger_account_id == book,
            LedgerTransaction.created_at >= _midnight(start),
            LedgerTransaction.created_at < _midnight(end),
        )
        .order_by(LedgerTransaction.created_at, LedgerEntry.id)
    )
    invoice = Invoice(
        account_id=account_id,
        account_name=account.name,
        month=start.strftime("%Y-%m"),
        currency=currency,
        opening_balance=_balance_before(session, book, _midnight(start)),
        closing_balance=_balance_before(session, book, _midnight(end)),
        tax_name=tax_name,
        tax_rate=tax_rate,
    )
    for amount, txn in entries:
        invoice.lines.extend(_explain(session, account_id, -amount, txn))
    return invoice


def _explain(
    session: Session, account_id: str, charged: Decimal, txn: LedgerTransaction
) -> list[InvoiceLine]:
    """Lines for one wallet movement (``charged`` > 0 is money out), summing to it."""
    day = txn.created_at.date()
    lines: list[InvoiceLine] = []
    if txn.kind == "purchase":
        for n in session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.order_id == txn.reference)
            .order_by(PhoneNumber.e164)
        ):
            lines.append(InvoiceLine(day, "setup", "Setup fee", n.upfront_cost, n.e164))
            lines.append(
                InvoiceLine(day, "monthly", "Monthly fee, first month", n.monthly_cost, n.e164)
            )
    elif txn.kind == "renewal":
        for r, e164 in session.execute(
            select(Renewal, PhoneNumber.e164)
            .join(PhoneNumber, PhoneNumber.id == Renewal.number_id)
            .where(Renewal.ledger_transaction_id == txn.id)
            .order_by(PhoneNumber.e164)
        ):
            lines.append(
                InvoiceLine(
                    day, "renewal", "Monthly fee", r.amount, e164, r.period_start, r.period_end
                )
            )
    elif txn.kind == "usage":
        amounts: dict[str, Decimal] = defaultdict(Decimal)
        seconds: dict[str, list[int]] = defaultdict(list)
        for u, e164 in session.execute(
            select(UsageRecord, PhoneNumber.e164)
            .join(PhoneNumber, PhoneNumber.id == UsageRecord.number_id)
            .where(UsageRecord.ledger_transaction_id == txn.id)
        ):
            amounts[e164] += u.amount
            seconds[e164].append(u.billable_seconds)
        for e164, amount in sorted(amounts.items()):
            # Counted as the transaction's description counts them (usage.py).
            minutes = rating.billable_minutes(seconds[e164])
            lines.append(InvoiceLine(day, "usage", "Calls", amount, e164, minutes=minutes))
    elif txn.kind == "resale":
        for c, e164 in session.execute(
            select(ResaleCharge, PhoneNumber.e164)
            .join(PhoneNumber, PhoneNumber.id == ResaleCharge.number_id)
            .where(ResaleCharge.ledger_transaction_id == txn.id)
            .order_by(ResaleCharge.id)
        ):
            if c.tenant_id == account_id:
                lines.append(InvoiceLine(day, "resale", RESALE_LABELS[c.kind], c.retail, e164))
            else:
                lines.append(
                    InvoiceLine(
                        day, "income", f"From your tenant: {RESALE_LABELS[c.kind]}", -c.retail, e164
                    )
                )
    if sum((line.amount for line in lines), Decimal("0")) != charged:
        # Anything not itemised above (or itemised differently) is shown as it
        # is in the ledger, so the invoice always adds up to the wallet's movement.
        label = CREDIT_LABELS.get(txn.kind, txn.description)
        lines = [InvoiceLine(day, "credit" if charged < 0 else txn.kind, label, charged)]
    return lines


def render_html(invoice: Invoice) -> str:
    """The invoice as a page a person would send (print it to PDF from a browser)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("didhub", "templates"), autoescape=select_autoescape())
    template = env.get_template("invoice.html")
    return template.render(
        inv=invoice,
        money=lambda v: f"{v:,.2f}" if v == v.quantize(Decimal("0.01")) else f"{v:,.4f}",
    )
