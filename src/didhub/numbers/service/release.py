"""Giving numbers back: the owner's release, the billing run's, and the one refund policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import ROUND_DOWN

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.carriers.base import (
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
)
from didhub.carriers.registry import carrier_for
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import (
    CarrierError,
    Conflict,
)
from didhub.numbers import lifecycle, repository
from didhub.numbers.lifecycle import ACTIVE, RELEASED
from didhub.numbers.models import (
    NumberEvent,
    PhoneNumber,
)
from didhub.numbers.service.assignments import end_assignments
from didhub.numbers.service.inventory import lock_number
from didhub.numbers.service.pricing import add_months
from didhub.tenancy import Scope
from didhub.wallet import ledger


def release(
    db: Database,
    carrier: Carrier,
    scope: Scope,
    number_id: str,
    settings: Settings,
) -> PhoneNumber:
    """Give a number back: billing stops (``released_at``), assignments end, its
    history stays, and with ``release_refund = prorated`` the unused days of the
    paid month go back to the wallet. The carrier is asked between two
    transactions; if it refuses, the number is back as it was; if we can't
    tell, it stays ``releasing`` and ``reconcile`` finishes the job."""
    with db.session() as session:
        number = lock_number(session, scope, number_id)
        repository.require_writable(session, scope, number, "release")
        begin_release(session, number, scope.account_id, "released")
        number_pk = number.id
    return finish_release(
        db, carrier, number_pk, scope.account_id, "released", settings.release_refund
    )


NONPAYMENT_RELEASE = "released for non-payment"


def release_for_nonpayment(
    db: Database,
    carrier: Carrier,
    number_ids: Sequence[str],
    may_release: Callable[[Session], bool],
) -> list[PhoneNumber]:
    """The billing rules' last step: release one account's suspended numbers
    nobody paid for. ``may_release`` runs first in the transaction that begins
    the releases: it takes the account's billing locks (its wallet, then its
    billing profile: before any number, in the lock order) and says whether
    the account is still suspended, long enough, and unpaid. Only then are the
    numbers locked (ascending id), and only those still ``suspended`` begin
    their release. Returns those the carrier released (or may have: unknown
    outcomes are ``releasing`` for reconcile); one it refuses stays suspended
    for the next run."""
    reason = NONPAYMENT_RELEASE
    with db.session() as session:
        if not may_release(session):
            return []
        begun = []
        for number in session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.id.in_(number_ids), PhoneNumber.status == lifecycle.SUSPENDED)
            .order_by(PhoneNumber.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            begin_release(session, number, None, reason)
            begun.append(number.id)
    released = []
    for number_pk in begun:
        try:
            released.append(finish_release(db, carrier, number_pk, None, reason))
        except CarrierError:
            continue  # back to suspended: the next run tries again
    return released


def begin_release(
    session: Session, number: PhoneNumber, account_id: str | None, reason: str
) -> None:
    if number.status not in (ACTIVE, lifecycle.SUSPENDED):
        raise Conflict(
            f"{number.e164} is {number.status}; only an active or suspended number can be released",
            field="number_id",
            code="number_not_active",
        )
    # Assignments end only once the carrier confirms: a refused release must
    # leave the number routing exactly as before.
    lifecycle.transition(session, number, lifecycle.RELEASING, account_id, reason=reason)


def release_refund_policy(configured: str, reason: str) -> str:
    """What a release gives back, decided here only (docs/billing.md): a release
    for non-payment never refunds; any other follows ``release_refund``
    (``configured``). Every path that finishes a release asks this: the
    owner's release, the billing run's, and reconcile finishing either one
    after the carrier's answer was lost."""
    return "none" if reason == NONPAYMENT_RELEASE else configured


def release_reason(session: Session, number: PhoneNumber) -> str:
    """Why the number's current release began (its last ``status.releasing``)."""
    begun = session.scalars(
        select(NumberEvent)
        .where(NumberEvent.number_id == number.id, NumberEvent.kind == "status.releasing")
        .order_by(NumberEvent.id.desc())
    ).first()
    reason = begun.data.get("reason") if begun is not None else None
    return reason if isinstance(reason, str) else "released"


def finish_release(
    db: Database,
    carrier: Carrier,
    number_pk: str,
    account_id: str | None,
    reason: str,
    refund_policy: str = "none",
) -> PhoneNumber:
    """Ask the number's own carrier to release it, then settle: ``released``
    (with :func:`release_refund_policy`'s refund for ``reason``), back as it
    was on a refusal, still ``releasing`` when the answer is lost."""
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_pk)
        e164, managed, holder = number.e164, number.is_managed, number.carrier
        owner_id, currency = number.owner_id, number.currency
    refunds = managed and release_refund_policy(refund_policy, reason) == "prorated"
    try:
        if managed:
            carrier_for(carrier, holder).release(e164)
    except CarrierFailure as exc:
        with db.session() as session:
            number = session.get_one(PhoneNumber, number_pk, with_for_update=True)
            before = lifecycle.status_before(session, number, lifecycle.RELEASING) or ACTIVE
            lifecycle.transition(session, number, before, account_id, reason=str(exc))
        raise CarrierError(
            f"the carrier refused to release {e164}: {exc}", field="number_id"
        ) from exc
    except CarrierOutcomeUnknown:
        with db.session() as session:
            return session.get_one(PhoneNumber, number_pk)
    with db.session() as session:
        if refunds:  # the documented lock order: the wallet before the number
            ledger.lock_wallet(session, owner_id, currency)
        number = session.get_one(PhoneNumber, number_pk, with_for_update=True)
        if number.status == lifecycle.RELEASING:
            lifecycle.transition(session, number, RELEASED, account_id)
            end_assignments(session, number, account_id, reason)
            number.released_at = clock.now()
            if refunds:
                _refund_unused_days(session, number)
            number.renews_on = None
        return number


def _refund_unused_days(session: Session, number: PhoneNumber) -> None:
    """The prorated policy: the paid month's days after the release, at the
    month's daily rate, rounded down to the cent, back to the owner's wallet."""
    if not number.is_managed or number.renews_on is None or number.purchased_at is None:
        return
    today = clock.now().date()
    period_end = number.renews_on
    period_start = add_months(number.purchased_at.date(), number.billed_periods - 1)
    unused = (period_end - today).days
    if unused <= 0 or period_end <= period_start:
        return  # nothing paid ahead (an unpaid month is never refunded)
    days = (period_end - period_start).days
    amount = (number.monthly_cost * unused / days).quantize(ledger.CENTS, rounding=ROUND_DOWN)
    if amount <= 0:
        return
    ledger.transfer(
        session,
        kind="refund",
        description=f"Unused days of {number.e164}: {unused} of {days} (prorated release)",
        debit=ledger.ensure_platform_book(session, ledger.REVENUE, number.currency),
        credit=ledger.ensure_wallet(session, number.owner_id, number.currency),
        amount=amount,
        reference=f"release:{number.id}",
    )
