"""Dunning: past due past its grace is suspended, suspended past its period is
released; each step decided again under the account's locks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub.billing.service.collection import (
    RunReport,
    due_rows,
    lock_numbers,
    note_failure,
    periods,
    restore,
)
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import lifecycle
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import PhoneNumber
from didhub.numbers.service import release_for_nonpayment
from didhub.wallet import ledger, standing
from didhub.wallet import service as wallet
from didhub.wallet.models import BillingProfile

log = logging.getLogger("didhub.billing.service.renewals")


def progress(
    db: Database, carrier: Carrier, settings: Settings, as_of: date, report: RunReport
) -> None:
    """Past due past its grace → suspended; suspended past its period → released.
    The list is only who to look at: each step decides again under the
    account's locks."""
    with db.session() as session:
        listed = session.execute(
            select(
                BillingProfile.account_id,
                BillingProfile.standing,
                BillingProfile.past_due_since,
                BillingProfile.suspended_since,
            )
            .where(BillingProfile.standing.in_((standing.PAST_DUE, standing.SUSPENDED)))
            .order_by(BillingProfile.account_id)
        ).all()
    for account_id, state, past_due_since, suspended_since in listed:
        try:
            if (
                state == standing.PAST_DUE
                and past_due_since is not None
                and as_of >= past_due_since + timedelta(days=settings.grace_days)
            ):
                _suspend(db, settings, account_id, as_of, report)
            elif (
                state == standing.SUSPENDED
                and suspended_since is not None
                and as_of >= suspended_since + timedelta(days=settings.release_after_days)
            ):
                _release_unpaid(db, carrier, settings, account_id, as_of, report)
        except Exception as exc:  # noqa: BLE001 - one account must not stop the others
            note_failure(report, account_id, exc)


@dataclass
class _Locked:
    profile: BillingProfile
    numbers: list[PhoneNumber]  # the account's active and suspended ones
    owes: bool | None  # the wallet lacks money for what is due now; None: nothing is due


def _lock_account(session: Session, settings: Settings, account_id: str, as_of: date) -> _Locked:
    """Take one account's locks in the lock order (its wallet, its billing
    profile, its numbers by id) and decide, under them, whether it still owes:
    a top-up credits the wallet under the same lock, so this sees every
    top-up committed before it and none that is half done."""
    book = ledger.lock_wallets(session, [account_id], settings.currency).get(account_id)
    profile = standing.lock_profile(session, account_id)
    numbers = lock_numbers(session, account_id)
    rows = due_rows(numbers, as_of)
    if not rows:
        return _Locked(profile, numbers, None)
    available = book.balance if book is not None else Decimal("0")
    return _Locked(profile, numbers, periods(rows, available, as_of).owed > 0)


def _suspend(
    db: Database, settings: Settings, account_id: str, as_of: date, report: RunReport
) -> None:
    """past_due → suspended, if it still is and still can't pay: a top-up
    committed before this transaction locked the wallet is seen here (and its
    own settling restores the account); one after it restores the account."""
    with db.session() as session:
        locked = _lock_account(session, settings, account_id, as_of)
        if locked.owes is None:  # nothing left to pay for (its numbers were released)
            if restore(session, account_id, locked.numbers):
                report.restored.append(account_id)
            return
        if not locked.owes:
            return
        if not standing.suspend(session, account_id, as_of, settings.grace_days):
            return
        for number in locked.numbers:
            if number.status == ACTIVE:
                lifecycle.transition(session, number, SUSPENDED, account_id, reason="unpaid")
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


def _release_unpaid(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    account_id: str,
    as_of: date,
    report: RunReport,
) -> None:
    """Release a suspended account's numbers, if it still is suspended, long
    enough, and still unpaid when the release begins; then, its numbers gone,
    it is back in good standing (billing stops)."""

    def may_release(session: Session) -> bool:
        locked = _lock_account(session, settings, account_id, as_of)
        return locked.owes is True and standing.release_due(
            locked.profile, as_of, settings.release_after_days
        )

    with db.session() as session:
        ids = list(
            session.scalars(
                select(PhoneNumber.id).where(
                    PhoneNumber.owner_id == account_id, PhoneNumber.status == SUSPENDED
                )
            )
        )
    released = release_for_nonpayment(db, carrier, ids, may_release) if ids else []
    report.released.extend(number.e164 for number in released)
    with db.session() as session:
        locked = _lock_account(session, settings, account_id, as_of)
        if any(n.status == SUSPENDED for n in locked.numbers):
            if locked.owes is None and restore(session, account_id, locked.numbers):
                report.restored.append(account_id)  # what is left is never billed
        elif standing.release_due(
            locked.profile, as_of, settings.release_after_days
        ) and standing.close_released(session, account_id):
            wallet.event(
                session,
                account_id,
                "numbers.released_for_nonpayment",
                f"{len(released)} number(s) released for non-payment",
            )
