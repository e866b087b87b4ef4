"""Monthly renewals, and what happens when a wallet can't pay them.

Each managed number renews on its purchase anniversary (the 31st becomes the
month's last day, and comes back to the 31st the month after). A billing run
charges every period that is due on ``as_of`` once: the unique (number, period)
renewal row, written in the same transaction as the ledger debit under the
wallet's lock, is what makes a re-run bill nothing.

When the wallet can't pay: the card is charged if auto-recharge is on; else the
account goes ``past_due`` and keeps service for ``grace_days``; then its numbers
are ``suspended`` (routing answers the suspension) and, ``release_after_days``
later, released. Paying (a top-up, or a later run that succeeds) brings a
past-due or suspended account back to good standing and its numbers back to
active. Every step is a ledger entry or an account event.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from didhub import clock
from didhub.billing import ledger, resale, wallet
from didhub.billing.models import BillingProfile, Renewal
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database, insert_rows
from didhub.errors import CarrierError, PaymentDeclined, PaymentPending
from didhub.numbers import lifecycle
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import PhoneNumber
from didhub.numbers.service import add_months, release_for_nonpayment
from didhub.payments.base import PaymentGateway

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

    def merge(self, other: RunReport) -> None:
        self.accounts += other.accounts
        self.renewals += other.renewals
        self.charged += other.charged
        self.recharged += other.recharged
        for name in ("past_due", "suspended", "released", "restored"):
            getattr(self, name).extend(getattr(other, name))


def _due_accounts(session: Session, as_of: date) -> list[str]:
    return list(
        session.scalars(
            select(PhoneNumber.owner_id)
            .where(
                PhoneNumber.status.in_(BILLABLE),
                PhoneNumber.is_managed.is_(True),
                PhoneNumber.carrier_missing_since.is_(None),
                PhoneNumber.renews_on <= as_of,
            )
            .distinct()
            .order_by(PhoneNumber.owner_id)
        )
    )


@dataclass
class _Collected:
    renewals: int
    charged: Decimal
    shortfall: Decimal  # what the next unpaid period costs beyond the balance


# Accounts billed per database transaction by a run. Larger batches mean fewer
# commits; each batch holds its wallets' and numbers' row locks until it commits.
BATCH_ACCOUNTS = 200


def _collect(db: Database, settings: Settings, account_id: str, as_of: date) -> _Collected:
    """Charge every due period one account's wallet can pay, oldest first."""
    collected, _ = _collect_many(db, settings, [account_id], as_of, partial=True)
    return collected.get(account_id, _Collected(0, Decimal("0.00"), Decimal("0.00")))


def _collect_many(
    db: Database, settings: Settings, account_ids: list[str], as_of: date, *, partial: bool
) -> tuple[dict[str, _Collected], list[str]]:
    """Bill the due periods of many accounts in one database transaction: one
    ledger transaction per account, oldest period first.

    With ``partial``, an account pays what its balance covers and the rest is
    its shortfall. Without, an account whose wallet can't pay everything due is
    left untouched and returned in the second list, for :func:`settle_account`
    (card recharge, past due), so the common case, every wallet paying, stays
    a handful of statements per batch: due numbers are read as plain rows and
    written back set-based, because a run touches every number once a month
    (see docs/performance.md). The renewal rows are the numbers' billing
    history; each account gets one event.
    """
    collected: dict[str, _Collected] = {}
    unpaid: list[str] = []
    with db.session() as session:
        if partial:  # one account, settling: an account never debited gets its wallet
            for account_id in account_ids:
                ledger.ensure_wallet(session, account_id, settings.currency)
        books = ledger.lock_wallets(session, account_ids, settings.currency)
        missing = [a for a in account_ids if a not in books]
        if missing:  # never debited before: an empty wallet, which pays nothing
            unpaid.extend(missing)
            account_ids = [a for a in account_ids if a in books]
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
            .order_by(PhoneNumber.owner_id, PhoneNumber.renews_on, PhoneNumber.id)
            .with_for_update()
        ).tuples()
        by_account: dict[str, list[_Due]] = defaultdict(list)
        e164s: dict[str, str] = {}
        for owner, number_id, e164, *rest in due:
            by_account[owner].append((owner, number_id, *rest))  # type: ignore[arg-type]
            e164s[number_id] = e164
        renewed: list[dict[str, object]] = []
        advanced: list[dict[str, object]] = []
        charges: list[tuple[str, Decimal, list[dict[str, object]]]] = []
        for account_id, rows in by_account.items():
            lines, moves, total, shortfall = _periods(rows, books[account_id].balance, as_of)
            if shortfall and not partial:
                unpaid.append(account_id)
                continue
            collected[account_id] = _Collected(len(lines), total, shortfall)
            if lines:
                charges.append((account_id, total, lines))
                renewed.extend(lines)
                advanced.extend(moves)
        if not charges:
            return collected, unpaid
        revenue = ledger.ensure_platform_book(session, ledger.REVENUE, settings.currency)
        txn_ids = ledger.transfer_many(
            session,
            kind="renewal",
            reference=f"renewals:{as_of}",
            transfers=[
                ledger.Transfer(
                    books[account_id].id,
                    revenue,
                    total,
                    f"Monthly fees: {len(lines)} number-month(s) due by {as_of}",
                )
                for account_id, total, lines in charges
            ],
        )
        now = clock.now()
        for (account_id, total, lines), txn_id in zip(charges, txn_ids, strict=True):
            for line in lines:
                line["account_id"] = account_id
                line["ledger_transaction_id"] = txn_id
                line["created_at"] = now
            wallet.event(
                session,
                account_id,
                "renewal.charged",
                f"Monthly fees of {total:.2f} {settings.currency} for {len(lines)} number-month(s)",
                amount=f"{total:.2f}",
                periods=len(lines),
                published={
                    "as_of": as_of.isoformat(),
                    "currency": settings.currency,
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
        insert_rows(session, Renewal.__table__, renewed)  # type: ignore[arg-type]
    return collected, unpaid


def _periods(
    rows: list[_Due], available: Decimal, as_of: date
) -> tuple[list[dict[str, object]], list[dict[str, object]], Decimal, Decimal]:
    """The periods a balance pays for, oldest first: renewal lines, number moves,
    their total, and the shortfall of the first period it can't pay."""
    renewed: list[dict[str, object]] = []
    advanced: list[dict[str, object]] = []
    total = Decimal("0.00")
    shortfall = Decimal("0.00")
    for _, number_id, monthly, currency, renews_on, purchased_at, billed in rows:
        assert renews_on is not None and purchased_at is not None  # billable rows have both
        anchor = purchased_at.date()
        periods = billed
        while renews_on <= as_of:
            if available < monthly:
                shortfall = monthly - available
                break
            periods += 1
            next_on = add_months(anchor, periods)
            renewed.append(
                {
                    "number_id": number_id,
                    "period_start": renews_on,
                    "period_end": next_on,
                    "amount": monthly,
                    "currency": currency,
                }
            )
            available -= monthly
            total += monthly
            renews_on = next_on
        if periods != billed:
            advanced.append({"id": number_id, "billed_periods": periods, "renews_on": renews_on})
        if shortfall:
            break
    return renewed, advanced, total, shortfall


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


def _restore(session: Session, account_id: str, billing: BillingProfile, report: RunReport) -> None:
    if billing.standing == "good":
        return
    for number in session.scalars(
        select(PhoneNumber)
        .where(PhoneNumber.owner_id == account_id, PhoneNumber.status == SUSPENDED)
        .with_for_update()
    ):
        lifecycle.transition(session, number, ACTIVE, account_id, reason="paid")
    billing.standing = "good"
    billing.past_due_since = None
    billing.suspended_since = None
    billing.updated_at = clock.now()
    wallet.event(session, account_id, "account.good_standing", "Paid up: service restored")
    report.restored.append(account_id)


def settle_account(
    db: Database,
    gateway: PaymentGateway | None,
    settings: Settings,
    account_id: str,
    as_of: date,
    report: RunReport,
) -> None:
    """Bill what's due for one account, recharge the card if allowed, and move
    its standing: good when everything due is paid, past due when not."""
    collected = _collect(db, settings, account_id, as_of)
    if collected.shortfall and gateway is not None:
        try:
            recharged = wallet.cover(
                db,
                gateway,
                settings,
                account_id,
                collected.shortfall + _balance(db, settings, account_id),
                f"renewal:{account_id}:{as_of}",
            )
        except (PaymentDeclined, PaymentPending):
            recharged = False  # the card failed: past due below
        if recharged:
            report.recharged += collected.shortfall
            more = _collect(db, settings, account_id, as_of)
            collected = _Collected(
                collected.renewals + more.renewals, collected.charged + more.charged, more.shortfall
            )
    report.renewals += collected.renewals
    report.charged += collected.charged
    with db.session() as session:
        billing = wallet.profile(session, account_id)
        if not collected.shortfall:
            _restore(session, account_id, billing, report)
        elif billing.standing == "good":
            billing.standing = "past_due"
            billing.past_due_since = as_of
            billing.updated_at = clock.now()
            grace_end = as_of + timedelta(days=settings.grace_days)
            wallet.event(
                session,
                account_id,
                "account.past_due",
                f"A monthly fee couldn't be paid ({collected.shortfall:.2f} "
                f"{settings.currency} short). Top up by {grace_end} to keep your numbers.",
                shortfall=f"{collected.shortfall:.2f}",
                grace_ends=grace_end.isoformat(),
            )
            report.past_due.append(account_id)
    if collected.charged:
        wallet.recharge_below_threshold(
            db, gateway, settings, account_id, f"renewal:{account_id}:{as_of}"
        )


def _balance(db: Database, settings: Settings, account_id: str) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, account_id, settings.currency)


def _progress(
    db: Database, carrier: Carrier, settings: Settings, as_of: date, report: RunReport
) -> None:
    """Past due past its grace → suspended; suspended past its period → released."""
    with db.session() as session:
        profiles = list(
            session.scalars(
                select(BillingProfile).where(BillingProfile.standing.in_(("past_due", "suspended")))
            )
        )
    for billing in profiles:
        account_id = billing.account_id
        if (
            billing.standing == "past_due"
            and billing.past_due_since is not None
            and as_of >= billing.past_due_since + timedelta(days=settings.grace_days)
        ):
            with db.session() as session:
                fresh = wallet.profile(session, account_id)
                for number in session.scalars(
                    select(PhoneNumber)
                    .where(PhoneNumber.owner_id == account_id, PhoneNumber.status == ACTIVE)
                    .with_for_update()
                ):
                    lifecycle.transition(session, number, SUSPENDED, account_id, reason="unpaid")
                fresh.standing = "suspended"
                fresh.suspended_since = as_of
                fresh.updated_at = clock.now()
                release_on = as_of + timedelta(days=settings.release_after_days)
                wallet.event(
                    session,
                    account_id,
                    "account.suspended",
                    f"Numbers suspended for non-payment; they will be released on {release_on} "
                    "unless the balance is paid.",
                    release_on=release_on.isoformat(),
                )
            report.suspended.append(account_id)
        elif (
            billing.standing == "suspended"
            and billing.suspended_since is not None
            and as_of >= billing.suspended_since + timedelta(days=settings.release_after_days)
        ):
            with db.session() as session:
                ids = list(
                    session.scalars(
                        select(PhoneNumber.id).where(
                            PhoneNumber.owner_id == account_id, PhoneNumber.status == SUSPENDED
                        )
                    )
                )
            for number_id in ids:
                try:
                    number = release_for_nonpayment(db, carrier, number_id)
                except CarrierError:
                    continue  # stays suspended; the next run tries again
                report.released.append(number.e164)
            with db.session() as session:
                remaining = session.scalars(
                    select(PhoneNumber.id).where(
                        PhoneNumber.owner_id == account_id, PhoneNumber.status == SUSPENDED
                    )
                ).first()
                fresh = wallet.profile(session, account_id)
                if remaining is None:
                    fresh.standing = "good"
                    fresh.past_due_since = None
                    fresh.suspended_since = None
                    fresh.updated_at = clock.now()
                    wallet.event(
                        session,
                        account_id,
                        "numbers.released_for_nonpayment",
                        f"{len(ids)} number(s) released for non-payment",
                    )


def after_payment(
    db: Database, gateway: PaymentGateway | None, settings: Settings, account_id: str
) -> RunReport:
    """Money just arrived (a top-up): pay what's due now and restore service."""
    report = RunReport(clock.now().date())
    settle_account(db, gateway, settings, account_id, report.as_of, report)
    return report


@dataclass(frozen=True)
class TopupResult:
    charge: wallet.ChargeOutcome
    renewals_paid: int
    balance: Decimal


def topup(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    account_id: str,
    amount: Decimal,
    idempotency_key: str | None,
) -> TopupResult:
    """Charge the card on file into the wallet, then pay what is due with it and
    restore service (a past-due account's renewals, a suspended one's numbers)."""
    charge = wallet.topup(db, gateway, settings, account_id, amount, idempotency_key)
    settled = after_payment(db, gateway, settings, account_id)
    return TopupResult(charge, settled.renewals, _balance(db, settings, account_id))


def run(
    db: Database,
    carrier: Carrier,
    gateway: PaymentGateway | None,
    settings: Settings,
    as_of: date | None = None,
) -> RunReport:
    """Bill every due number once per period, then move past-due accounts along."""
    as_of = as_of or clock.now().date()
    report = RunReport(as_of)
    with db.session() as session:
        accounts = _due_accounts(session, as_of)
    batches = [
        accounts[start : start + BATCH_ACCOUNTS]
        for start in range(0, len(accounts), BATCH_ACCOUNTS)
    ]
    # Batches hold disjoint wallets and numbers, so on PostgreSQL they run on
    # several connections at once; SQLite has one writer, so one at a time.
    workers = 1 if db.is_sqlite else max(1, settings.renewal_workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="renewals") as pool:
        for part in pool.map(lambda b: _run_batch(db, gateway, settings, b, as_of), batches):
            report.merge(part)
    _progress(db, carrier, settings, as_of, report)
    resale.bill_tenants(db, settings)  # tenants pay their partners for what was renewed
    return report


def _run_batch(
    db: Database,
    gateway: PaymentGateway | None,
    settings: Settings,
    batch: list[str],
    as_of: date,
) -> RunReport:
    report = RunReport(as_of)
    with db.session() as session:
        profiles = {
            p.account_id: (p.standing, p.auto_recharge_enabled)
            for p in session.scalars(
                select(BillingProfile).where(BillingProfile.account_id.in_(batch))
            )
        }
    # Accounts in good standing pay together; the rest (and any the batch
    # finds short) go one by one through recharge, past due and restore.
    paying = [a for a in batch if profiles.get(a, ("good", False))[0] == "good"]
    collected, _ = _collect_many(db, settings, paying, as_of, partial=False)
    for account_id, done in collected.items():
        report.accounts += 1
        report.renewals += done.renewals
        report.charged += done.charged
        if done.charged and profiles.get(account_id, ("good", False))[1]:
            wallet.recharge_below_threshold(
                db, gateway, settings, account_id, f"renewal:{account_id}:{as_of}"
            )
    for account_id in [a for a in batch if a not in collected]:
        report.accounts += 1
        settle_account(db, gateway, settings, account_id, as_of, report)
    return report
