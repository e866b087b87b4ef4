"""Reconcile: settle what a carrier call left open, compare the inventory with the carriers'."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from didhub import clock
from didhub.carriers.base import (
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    NumberOrderResult,
)
from didhub.carriers.registry import carrier_for, served_carrier_names
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import (
    CarrierError,
)
from didhub.numbers import lifecycle
from didhub.numbers.lifecycle import ACTIVE, FAILED, PROVISIONING, RELEASED
from didhub.numbers.models import (
    NumberOrder,
    PhoneNumber,
)
from didhub.numbers.service.orders import settle_order
from didhub.numbers.service.portout import reconcile_port_outs
from didhub.numbers.service.release import finish_release, release_reason
from didhub.numbers.service.search import expire_holds
from didhub.wallet import service as billing_wallet


@dataclass
class ReconcileReport:
    orders_checked: int = 0
    activated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refunded: Decimal = Decimal("0.00")
    still_pending: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    holds_expired: int = 0
    # Inventory against the carrier's own list (None: the carrier couldn't list).
    missing_at_carrier: list[str] | None = None  # ours, the carrier no longer has
    found_again: list[str] = field(default_factory=list)  # listed again: billed again
    not_ours: list[str] | None = None  # the carrier bills us, we don't sell them
    ported_out: list[str] = field(default_factory=list)  # reported ported away: marked


def reconcile(
    db: Database, carrier: Carrier, settings: Settings, min_age: timedelta = timedelta(seconds=60)
) -> ReconcileReport:
    """Settle what a carrier call left open: orders whose outcome we don't know
    (each carrier asked by our order id about the numbers ordered from it) and
    releases the carrier didn't confirm. Orders younger than ``min_age`` are
    left alone: their purchase may still be talking to the carrier."""
    report = ReconcileReport()
    cutoff = clock.now() - min_age
    served = served_carrier_names(carrier)
    with db.session() as session:
        report.holds_expired = expire_holds(session, settings)
        order_ids = list(
            session.scalars(
                select(NumberOrder.id)
                .where(
                    NumberOrder.status == "pending",
                    NumberOrder.carrier.in_(served),
                    NumberOrder.created_at <= cutoff,
                )
                .order_by(NumberOrder.id)
            )
        )
        releasing = [
            (number.id, release_reason(session, number))
            for number in session.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.status == lifecycle.RELEASING, PhoneNumber.carrier.in_(served))
                .order_by(PhoneNumber.id)
            )
        ]
    for order_id in order_ids:
        report.orders_checked += 1
        _reconcile_order(db, carrier, settings, order_id, report)
    for number_pk, reason in releasing:
        try:
            # The reason the release began with decides its refund, as it
            # would have had the carrier answered at once.
            number = finish_release(db, carrier, number_pk, None, reason, settings.release_refund)
        except CarrierError:
            continue
        if number.status == RELEASED:
            report.released.append(number.e164)
    # Before the comparison: a number ported away is ported out, not "missing".
    report.ported_out = reconcile_port_outs(db, carrier)
    compare_inventory(db, carrier, report)
    return report


def _reconcile_order(
    db: Database, carrier: Carrier, settings: Settings, order_id: str, report: ReconcileReport
) -> None:
    """Ask each carrier the order's open numbers were ordered from; settle what
    those that answered say. A carrier that can't be asked leaves its numbers
    ``provisioning`` (a partial answer must not fail what it may have filled)."""
    with db.session() as session:
        open_numbers = {
            e164: holder
            for e164, holder in session.execute(
                select(PhoneNumber.e164, PhoneNumber.carrier).where(
                    PhoneNumber.order_id == order_id, PhoneNumber.status == PROVISIONING
                )
            )
        }
    asked = sorted(set(open_numbers.values()))
    results: list[NumberOrderResult] = []
    answered: set[str] = set()
    for name in asked:
        try:
            results.extend(carrier_for(carrier, name).order_status(order_id))
        except (CarrierFailure, CarrierOutcomeUnknown):
            continue
        answered.add(name)
    if len(answered) < len(asked):
        report.still_pending.append(order_id)
    if asked and not answered:
        return
    settled = settle_order(
        db,
        carrier,
        settings,
        order_id,
        results,
        authoritative=True,
        answered_by=frozenset(answered),
    )
    report.refunded += settled.refunded
    for row in settled.numbers:
        if row.e164 not in open_numbers:
            continue
        if row.status == ACTIVE:
            report.activated.append(row.e164)
        elif row.status == FAILED:
            report.failed.append(row.e164)


def _inventories(carrier: Carrier) -> dict[str, set[str] | None]:
    """Each carrier's list of the numbers it says we hold, by the name numbers
    record (None: it couldn't list them). Numbers recorded as ``multi`` are
    compared with every carrier's list together, when every carrier listed."""
    names = served_carrier_names(carrier)
    lists: dict[str, set[str] | None] = {}
    for name in names:
        if name == carrier.name and len(names) > 1:
            continue  # multi itself: the union below
        try:
            lists[name] = set(carrier_for(carrier, name).owned_numbers())
        except (CarrierFailure, CarrierOutcomeUnknown):
            lists[name] = None
    if len(names) > 1:
        parts = list(lists.values())
        lists[carrier.name] = (
            set().union(*(p for p in parts if p is not None)) if None not in parts else None
        )
    return lists


def compare_inventory(db: Database, carrier: Carrier, report: ReconcileReport) -> None:
    """What each carrier says we hold against our live managed numbers recorded
    as its. A number it no longer lists is flagged (``carrier_missing_since``,
    an event for its owner) and renewals skip it; one it lists again is
    cleared and billed again. Numbers a carrier lists that we don't sell are
    reported for an operator.

    Our own snapshot is read before any carrier is asked: a number that settles
    while a carrier's list is read was still ``provisioning`` in the snapshot,
    so a list read before the carrier filled it can't flag it. Only the
    numbers that change are locked, one per transaction, in id order, and
    re-checked under the lock; a billing run locking the same numbers (wallets,
    then numbers by id) therefore never deadlocks with this."""
    served = served_carrier_names(carrier)
    with db.read_session() as session:
        snapshot = session.execute(
            select(
                PhoneNumber.id,
                PhoneNumber.e164,
                PhoneNumber.carrier,
                PhoneNumber.status,
                PhoneNumber.carrier_missing_since,
            )
            .where(
                PhoneNumber.carrier.in_(served),
                PhoneNumber.is_managed.is_(True),
                PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
            )
            .order_by(PhoneNumber.id)
        ).all()
    lists = _inventories(carrier)
    if all(theirs is None for theirs in lists.values()):
        return  # can't tell: flag nothing
    missing: list[str] = []
    changes: list[tuple[str, str, bool]] = []  # number id, its carrier, listed
    for number_id, e164, holder, status, missing_since in snapshot:
        theirs = lists.get(holder)
        if theirs is None or status == PROVISIONING:
            continue  # that carrier couldn't list, or an order still settling
        listed = e164 in theirs
        if listed == (missing_since is not None):
            changes.append((number_id, holder, listed))
        elif missing_since is not None:
            missing.append(e164)  # flagged before, still not listed
    now = clock.now()
    for number_id, holder, listed in changes:
        with db.session() as session:
            number = session.get_one(PhoneNumber, number_id, with_for_update=True)
            if number.status not in lifecycle.LIVE_STATUSES or number.status == PROVISIONING:
                continue
            if number.carrier != holder:
                continue  # re-recorded meanwhile (a "multi" row settled): next time
            if not listed and number.carrier_missing_since is None:
                number.carrier_missing_since = now
                lifecycle.record(session, number, "carrier.missing")
                billing_wallet.event(
                    session,
                    number.owner_id,
                    "number.carrier_missing",
                    f"{number.e164} is no longer held at the carrier; it is not billed "
                    "until this is resolved",
                    phone_number=number.e164,
                )
            elif listed and number.carrier_missing_since is not None:
                number.carrier_missing_since = None
                lifecycle.record(session, number, "carrier.found")
                report.found_again.append(number.e164)
            if number.carrier_missing_since is not None:
                missing.append(number.e164)
    report.missing_at_carrier = sorted(missing)
    listed_anywhere = set().union(*(t for t in lists.values() if t is not None))
    unknown = listed_anywhere - {e164 for _, e164, *_ in snapshot}
    if unknown:
        # Bought while the carriers were listing: ours, not a discrepancy.
        with db.read_session() as session:
            unknown -= set(
                session.scalars(
                    select(PhoneNumber.e164).where(
                        PhoneNumber.e164.in_(sorted(unknown)),
                        PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
                    )
                )
            )
    report.not_ours = sorted(unknown)
