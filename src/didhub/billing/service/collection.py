"""Collecting what is due: one set-based transaction bills many accounts' due
periods (or settles one account), oldest period first, under the lock order."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from didhub import clock
from didhub.billing.models import Renewal
from didhub.config import Settings
from didhub.db import Database, insert_rows, table_of
from didhub.numbers import lifecycle
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import PhoneNumber
from didhub.numbers.service import add_months
from didhub.outputs import money_text
from didhub.wallet import ledger, standing
from didhub.wallet import service as wallet
from didhub.wallet.models import BillingProfile

log = logging.getLogger("didhub.billing.service.renewals")

BILLABLE = (ACTIVE, SUSPENDED)
# A billing.renewal_charged event lists at most this many renewed number-months
# (the account's invoice has them all).
RENEWAL_EVENT_NUMBERS = 1000

# owner, number id, monthly, currency, renews on, purchased at, periods billed
_Due = tuple[str, str, Decimal, str, date | None, datetime | None, int]


@dataclass
class RunReport:
    as_of: date
    accounts: int = 0
    renewals: int = 0
    charged: Decimal = Decimal("0.00")
    recharged: Decimal = Decimal("0.00")
    past_due: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    # Accounts this run could not bill or move along, and why (logged too);
    # nothing of theirs changed in the step that failed.
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: RunReport) -> None:
        self.accounts += other.accounts
        self.renewals += other.renewals
        self.charged += other.charged
        self.recharged += other.recharged
        for name in ("past_due", "suspended", "released", "restored"):
            getattr(self, name).extend(getattr(other, name))
        self.failed.update(other.failed)


def note_failure(report: RunReport, account_id: str, exc: Exception) -> None:
    log.error("billing account %s failed", account_id, exc_info=exc)
    report.failed[account_id] = f"{type(exc).__name__}: {exc}"


@dataclass
class Collected:
    renewals: int
    charged: Decimal
    shortfall: Decimal  # what the wallet lacks to pay every period due
    owed: Decimal = Decimal("0.00")  # what the due periods it didn't pay cost
    first_unpaid: str | None = None  # "number id:period start" of the first of them
    auto_recharge: bool = False
    restored: bool = False
    past_due: bool = False


def due_rows(numbers: Iterable[PhoneNumber], as_of: date) -> list[_Due]:
    """The numbers (of one account) a run bills on ``as_of``, oldest first."""
    due = [
        (
            n.owner_id,
            n.id,
            n.monthly_cost,
            n.currency,
            n.renews_on,
            n.purchased_at,
            n.billed_periods,
        )
        for n in numbers
        if n.status in BILLABLE
        and n.is_managed
        and n.carrier_missing_since is None
        and n.renews_on is not None
        and n.renews_on <= as_of
    ]
    return sorted(due, key=lambda row: (row[4], row[1]))


def lock_numbers(session: Session, account_id: str) -> list[PhoneNumber]:
    """Lock one account's active and suspended numbers, in ascending id."""
    return list(
        session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.owner_id == account_id, PhoneNumber.status.in_(BILLABLE))
            .order_by(PhoneNumber.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def collect_many(
    db: Database,
    settings: Settings,
    account_ids: Sequence[str],
    as_of: date,
    *,
    settling: bool,
    may_fall_past_due: bool = False,
) -> tuple[dict[str, Collected], list[str]]:
    """Bill the due periods of many accounts in one database transaction: one
    ledger transaction per account, oldest period first.

    A batch (``settling`` off) bills only accounts in good standing that can
    pay everything due; the others are left untouched and returned in the
    second list, for :func:`settle_account` (card recharge, past due), so the
    common case, every wallet paying, stays a handful of statements per batch:
    due numbers are read as plain rows and written back set-based, because a
    run touches every number once a month (see docs/performance.md).

    Settling (one account), the account pays what its balance covers, and its
    standing is decided in the same transaction, under its locks: good again
    when nothing due is left unpaid, past due (with ``may_fall_past_due``)
    when something is. Locks: wallets, billing profiles, then numbers, each in
    ascending id. The renewal rows are the numbers' billing history; each
    account gets one event.
    """
    collected: dict[str, Collected] = {}
    unpaid: list[str] = []
    currency = settings.currency
    with db.session() as session:
        books = ledger.lock_wallets(session, account_ids, currency, create=settling)
        unpaid.extend(a for a in account_ids if a not in books)  # never debited: pays nothing
        account_ids = [a for a in account_ids if a in books]
        e164s: dict[str, str] = {}
        by_account: dict[str, list[_Due]] = defaultdict(list)
        numbers: dict[str, list[PhoneNumber]] = {}
        due_by: dict[str, date] = {}
        if settling:
            profiles = {a: standing.lock_profile(session, a) for a in sorted(account_ids)}
            for account_id in account_ids:
                due_by[account_id] = _due_by(profiles[account_id], as_of)
                numbers[account_id] = lock_numbers(session, account_id)
                by_account[account_id] = due_rows(numbers[account_id], due_by[account_id])
                e164s.update((n.id, n.e164) for n in numbers[account_id])
        else:
            profiles = standing.lock_profiles(session, account_ids)
            behind = {a for a, p in profiles.items() if p.standing != standing.GOOD}
            unpaid.extend(a for a in account_ids if a in behind)
            account_ids = [a for a in account_ids if a not in behind]
            due = session.execute(
                select(
                    PhoneNumber.owner_id,
                    PhoneNumber.id,
                    PhoneNumber.e164,
                    PhoneNumber.monthly_cost,
                    PhoneNumber.currency,
                    PhoneNumber.renews_on,
                    PhoneNumber.purchased_at,
                    PhoneNumber.billed_periods,
                )
                .where(
                    PhoneNumber.owner_id.in_(account_ids),
                    PhoneNumber.status.in_(BILLABLE),
                    PhoneNumber.is_managed.is_(True),
                    PhoneNumber.carrier_missing_since.is_(None),
                    PhoneNumber.renews_on <= as_of,
                )
                # Locked in id order (the lock order), billed oldest first.
                .order_by(PhoneNumber.id)
                .with_for_update()
            )
            for owner, number_id, e164, *rest in due:
                by_account[owner].append((owner, number_id, *rest))  # type: ignore[arg-type]
                e164s[number_id] = e164
            for rows in by_account.values():
                rows.sort(key=lambda row: (row[4], row[1]))
        renewed: list[dict[str, object]] = []
        advanced: list[dict[str, object]] = []
        charges: list[tuple[str, Decimal, list[dict[str, object]]]] = []
        for account_id in account_ids:
            rows = by_account.get(account_id, [])
            for row in rows:
                if row[3] != books[account_id].currency:
                    raise ledger.CurrencyMismatch(
                        f"{e164s[row[1]]} is billed in {row[3]} but account {account_id}'s "
                        f"wallet is in {books[account_id].currency}",
                        field="currency",
                    )
            bill = periods(rows, books[account_id].balance, due_by.get(account_id, as_of))
            if bill.shortfall and not settling:
                unpaid.append(account_id)
                continue
            profile = profiles.get(account_id)
            collected[account_id] = Collected(
                len(bill.lines),
                bill.total,
                bill.shortfall,
                bill.owed,
                bill.first_unpaid,
                auto_recharge=bool(profile and profile.auto_recharge_enabled),
            )
            if bill.lines:
                charges.append((account_id, bill.total, bill.lines))
                renewed.extend(bill.lines)
                advanced.extend(bill.moves)
        paying = [c for c in charges if c[1] > 0]  # a free month posts nothing
        txn_ids: dict[str, str] = {}
        if paying:
            revenue = ledger.ensure_platform_book(session, ledger.REVENUE, currency)
            posted = ledger.transfer_many(
                session,
                kind="renewal",
                reference=f"renewals:{as_of}",
                currency=currency,
                transfers=[
                    ledger.Transfer(
                        books[account_id].id,
                        revenue,
                        total,
                        f"Monthly fees: {len(lines)} number-month(s) due by {as_of}",
                    )
                    for account_id, total, lines in paying
                ],
            )
            txn_ids = {c[0]: txn_id for c, txn_id in zip(paying, posted, strict=True)}
        now = clock.now()
        for account_id, total, lines in charges:
            for line in lines:
                line["account_id"] = account_id
                line["ledger_transaction_id"] = txn_ids.get(account_id) if line["amount"] else None
                line["created_at"] = now
            wallet.event(
                session,
                account_id,
                "renewal.charged",
                f"Monthly fees of {money_text(total, currency)} for {len(lines)} number-month(s)",
                amount=f"{total:.2f}",
                periods=len(lines),
                published={
                    "as_of": as_of.isoformat(),
                    "currency": currency,
                    "numbers": [
                        {
                            "number_id": line["number_id"],
                            "phone_number": e164s[str(line["number_id"])],
                            "period_start": str(line["period_start"]),
                            "period_end": str(line["period_end"]),
                            "amount": f"{line['amount']:.2f}",
                        }
                        for line in lines[:RENEWAL_EVENT_NUMBERS]
                    ],
                    "numbers_truncated": len(lines) > RENEWAL_EVENT_NUMBERS,
                },
            )
        _advance(session, advanced)
        if renewed:
            insert_rows(session, table_of(Renewal), renewed)
        if settling:
            for account_id, done in collected.items():
                if not done.shortfall:
                    done.restored = restore(session, account_id, numbers[account_id])
                elif may_fall_past_due:
                    done.past_due = _fall_past_due(session, settings, account_id, as_of, done)
    return collected, unpaid


@dataclass
class _Bill:
    lines: list[dict[str, object]] = field(default_factory=list)  # renewal rows
    moves: list[dict[str, object]] = field(default_factory=list)  # numbers' next renewal
    total: Decimal = Decimal("0.00")  # what the lines cost
    owed: Decimal = Decimal("0.00")  # what the due periods not paid cost
    shortfall: Decimal = Decimal("0.00")  # owed beyond what is left of the balance
    first_unpaid: str | None = None


def periods(rows: list[_Due], available: Decimal, as_of: date) -> _Bill:
    """The periods a balance pays for, oldest first: renewal lines, number
    moves and their total; from the first period it can't pay on, nothing more
    is paid and the rest is owed."""
    bill = _Bill()
    for _, number_id, monthly, currency, renews_on, purchased_at, billed in rows:
        assert renews_on is not None and purchased_at is not None  # billable rows have both
        anchor = purchased_at.date()
        periods, start, paid = billed, renews_on, 0
        while start <= as_of:
            end = add_months(anchor, periods + 1)
            # A free month is never unpaid, even by a wallet below zero.
            if bill.first_unpaid is None and monthly > 0 and available < monthly:
                bill.first_unpaid = f"{number_id}:{start}"
            if bill.first_unpaid is not None:
                bill.owed += monthly
            else:
                paid += 1
                bill.lines.append(
                    {
                        "number_id": number_id,
                        "period_start": start,
                        "period_end": end,
                        "amount": monthly,
                        "currency": currency,
                    }
                )
                available -= monthly
                bill.total += monthly
                renews_on = end
            periods += 1
            start = end
        if paid:
            bill.moves.append(
                {"id": number_id, "billed_periods": billed + paid, "renews_on": renews_on}
            )
    if bill.owed:
        bill.shortfall = bill.owed - available
    return bill


def _advance(session: Session, advanced: list[dict[str, object]]) -> None:
    """Move numbers to their next renewal date: one statement on PostgreSQL."""
    if not advanced:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE phone_numbers AS p SET billed_periods = v.billed, renews_on = v.renews "
                "FROM unnest(CAST(:ids AS varchar[]), CAST(:billed AS integer[]), "
                "CAST(:renews AS date[])) AS v(id, billed, renews) WHERE p.id = v.id"
            ),
            {
                "ids": [a["id"] for a in advanced],
                "billed": [a["billed_periods"] for a in advanced],
                "renews": [a["renews_on"] for a in advanced],
            },
        )
    else:
        session.execute(update(PhoneNumber), advanced)


def restore(session: Session, account_id: str, numbers: Sequence[PhoneNumber]) -> bool:
    """Past due or suspended → good, its suspended numbers active again. The
    caller holds the wallet, the profile and ``numbers`` (all the account's
    active and suspended ones) locked."""
    if not standing.restore(session, account_id):
        return False
    for number in numbers:
        if number.status == SUSPENDED:
            lifecycle.transition(session, number, ACTIVE, account_id, reason="paid")
    wallet.event(session, account_id, "account.good_standing", "Paid up: service restored")
    return True


def _fall_past_due(
    session: Session, settings: Settings, account_id: str, as_of: date, done: Collected
) -> bool:
    if not standing.fall_past_due(session, account_id, as_of):
        return False
    grace_end = as_of + timedelta(days=settings.grace_days)
    wallet.event(
        session,
        account_id,
        "account.past_due",
        f"A monthly fee couldn't be paid ({money_text(done.shortfall, settings.currency)} "
        f"short). Top up by {grace_end} to keep your numbers.",
        shortfall=f"{done.shortfall:.2f}",
        grace_ends=grace_end.isoformat(),
    )
    return True


def _due_by(profile: BillingProfile, as_of: date) -> date:
    """The date an account's dues are counted to when it is settled: ``as_of``,
    or, for an account past due since a later date (a run for a later date, an
    operator's ``--as-of``), that date: a run for an earlier day mustn't find
    "nothing due yet" and call the account paid up while the months that made
    it past due are still unpaid."""
    since = profile.past_due_since
    if profile.standing != standing.GOOD and since is not None and since > as_of:
        return since
    return as_of


def settle(
    db: Database, settings: Settings, account_id: str, as_of: date, *, may_fall_past_due: bool
) -> Collected:
    collected, _ = collect_many(
        db, settings, [account_id], as_of, settling=True, may_fall_past_due=may_fall_past_due
    )
    return collected.get(account_id, Collected(0, Decimal("0.00"), Decimal("0.00")))
