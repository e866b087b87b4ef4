"""Monthly renewals, and what happens when a wallet can't pay them.

Each managed number renews on its purchase anniversary (the 31st becomes the
month's last day, and comes back to the 31st the month after). A billing run
charges every period that is due on ``as_of`` once: the unique (number, period)
renewal row, written in the same transaction as the ledger debit under the
wallet's lock, is what makes a re-run bill nothing. A free month (a 0.00 price)
is a renewal row and posts nothing.

When the wallet can't pay: the card is charged if auto-recharge is on; else the
account goes ``past_due`` and keeps service for ``grace_days``; then its numbers
are ``suspended`` (routing answers the suspension) and, ``release_after_days``
later, released. Paying (a top-up, or a later run that succeeds) brings a
past-due or suspended account back to good standing and its numbers back to
active. Every step is a ledger entry or an account event.

Standing moves only through ``wallet/standing.py``'s guarded transitions, each
decided under the account's wallet lock, then its billing profile's, then its
numbers' (ascending id): the lock order of docs/architecture.md. One account
that fails is reported in ``RunReport.failed``; the others are billed.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.billing.service import resale
from didhub.billing.service.collection import (
    BILLABLE,
    Collected,
    collect_many,
    note_failure,
    settle,
)
from didhub.billing.service.collection import RunReport as RunReport  # the run's answer
from didhub.billing.service.dunning import progress
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import PaymentDeclined, PaymentPending, ValidationFailed
from didhub.numbers.models import PhoneNumber
from didhub.payments.base import PaymentGateway
from didhub.wallet import ledger
from didhub.wallet import service as wallet

log = logging.getLogger("didhub.billing.service.renewals")

# Accounts billed per database transaction by a run. Larger batches mean fewer
# commits; each batch holds its wallets' and numbers' row locks until it commits.
BATCH_ACCOUNTS = 200

# How many times one settling charges the card for what is still missing.
COVER_ATTEMPTS = 3


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


def settle_account(
    db: Database,
    gateway: PaymentGateway | None,
    settings: Settings,
    account_id: str,
    as_of: date,
    report: RunReport,
) -> None:
    """Bill what's due for one account, recharge the card if allowed, and move
    its standing: good when everything due is paid, past due when not.

    Auto-recharge charges what the wallet lacks for everything due, in one
    charge rounded up to a multiple of the recharge amount (``wallet.cover``).
    Its idempotency key names the account, the day, the first unpaid period,
    the amount and the card: a retry of the same step (the gateway's answer
    was lost) asks again with the same key and can't charge twice, while a
    later run the same day that still finds something due (a new card, say)
    charges again."""
    with db.session() as session:
        recharge = gateway is not None and wallet.auto_recharge_on(session, account_id)
    done = settle(db, settings, account_id, as_of, may_fall_past_due=not recharge)
    # Money the charge brought can be spent before the renewals take it (a
    # purchase commits in between): then what is still missing is charged
    # again, a bounded number of times, before the account falls past due.
    attempts = COVER_ATTEMPTS if recharge else 0
    for attempt in range(1, attempts + 1):
        if not done.shortfall:
            break
        try:
            charge = wallet.cover(
                db,
                gateway,
                settings,
                account_id,
                done.owed,
                f"renewal:{account_id}:{as_of}:{done.first_unpaid}",
            )
        except (PaymentDeclined, PaymentPending, ValidationFailed):
            charge = None  # the card failed (or is gone): past due below
        if charge is not None:
            report.recharged += charge.amount
        last = charge is None or attempt == COVER_ATTEMPTS
        more = settle(db, settings, account_id, as_of, may_fall_past_due=last)
        done = Collected(
            done.renewals + more.renewals,
            done.charged + more.charged,
            more.shortfall,
            owed=more.owed,
            first_unpaid=more.first_unpaid,
            restored=done.restored or more.restored,
            past_due=done.past_due or more.past_due,
        )
        if last:
            break
    report.renewals += done.renewals
    report.charged += done.charged
    if done.restored:
        report.restored.append(account_id)
    if done.past_due:
        report.past_due.append(account_id)
    if done.charged and not done.shortfall:
        # Only an account that is paid up tops its wallet back up: money for
        # one still short pays what it owes (the next settling), never idles.
        wallet.recharge_below_threshold(
            db, gateway, settings, account_id, f"renewal:{account_id}:{as_of}"
        )


def _balance(db: Database, settings: Settings, account_id: str) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, account_id, settings.currency)


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
    """Bill every due number once per period, then move past-due accounts along.
    An account that fails is in ``failed`` (and the log); the rest is billed."""
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
    progress(db, carrier, settings, as_of, report)
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
    # Accounts in good standing pay together; the rest (and any the batch
    # finds short) go one by one through recharge, past due and restore. If
    # the batch's transaction fails, every account in it goes one by one, so
    # only the account that fails again is left unbilled.
    try:
        collected, rest = collect_many(db, settings, batch, as_of, settling=False)
    except Exception:  # noqa: BLE001 - isolated below, account by account
        log.exception(
            "a renewal batch of %d account(s) failed; billing them one by one", len(batch)
        )
        collected, rest = {}, list(batch)
    for account_id, done in collected.items():
        report.accounts += 1
        report.renewals += done.renewals
        report.charged += done.charged
        if done.charged and done.auto_recharge:
            try:
                wallet.recharge_below_threshold(
                    db, gateway, settings, account_id, f"renewal:{account_id}:{as_of}"
                )
            except Exception as exc:  # noqa: BLE001 - the renewal is paid; reported
                note_failure(report, account_id, exc)
    one_by_one = set(rest)
    for account_id in [a for a in batch if a in one_by_one]:
        report.accounts += 1
        try:
            settle_account(db, gateway, settings, account_id, as_of, report)
        except Exception as exc:  # noqa: BLE001 - one account must not stop the others
            note_failure(report, account_id, exc)
    return report
