"""A port's progress as the carrier reports it (polled by the ``porting.sync``
job and on demand, or pushed by the carrier's webhook), and its completion:
the numbers enter the inventory as managed, active numbers of the tenant,
with the order's routing, CNAM and E911, billed from the port date.

Completion and cancellation race safely: completing a carrier order is one
transaction that moves the order with ``UPDATE … SET ported_count =
ported_count + n WHERE status NOT IN (ported, cancelled)``, and cancelling is
``UPDATE … SET status = cancelled WHERE … AND ported_count = 0``: on the same
row, so whichever commits first decides, and the other changes nothing.
Lock order: the owner's wallet, then the order row, then the new numbers.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select, update

from didhub import clock, numbering
from didhub.carriers.base import Carrier, CarrierFailure, CarrierOutcomeUnknown, PortOrderState
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.e911 import service as e911
from didhub.errors import CarrierError, DidhubError
from didhub.numbers import cnam
from didhub.numbers import lifecycle as number_lifecycle
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.porting import lifecycle
from didhub.porting.lifecycle import (
    CANCELLED,
    EXCEPTION,
    FOC_CONFIRMED,
    IN_PROGRESS,
    PORTED,
)
from didhub.porting.models import PortCarrierOrder, PortNumber, PortOrder
from didhub.porting.service.orders import (
    _publish,
    carrier_orders,
    owner_scope,
    port_numbers,
    porting_for,
)
from didhub.wallet import ledger

log = logging.getLogger("didhub.porting")


@dataclass
class SyncReport:
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    ported: list[str] = field(default_factory=list)  # numbers now active


class _Lost(Exception):
    """The order was cancelled (or completed) meanwhile: roll back."""


def sync_open(db: Database, carrier: Carrier, settings: Settings) -> SyncReport:
    """Ask the carrier about every order it is working on (the periodic job)."""
    with db.read_session() as session:
        ids = list(
            session.scalars(
                select(PortOrder.id)
                .where(PortOrder.status.in_((*lifecycle.OPEN, EXCEPTION)))
                .order_by(PortOrder.id)
            )
        )
    report = SyncReport()
    for order_id in ids:
        sync_order(db, carrier, settings, order_id, report)
    return report


def sync_order(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    order_id: str,
    report: SyncReport | None = None,
    *,
    asked: bool = False,
) -> SyncReport:
    """Ask the carrier about each of the order's open carrier orders and record
    what it says. ``asked``: a person asked (refresh in the API, CLI or
    dashboard), so a status check that fails is a 502 naming the carrier order
    and what the carrier said, after the others were recorded; the periodic job
    just asks again next sweep."""
    report = report if report is not None else SyncReport()
    failed: list[str] = []
    with db.read_session() as session:
        splits = [
            c.carrier_order_id
            for c in carrier_orders(session, order_id)
            if c.status not in lifecycle.FINAL
        ]
    porting = porting_for(carrier)
    for carrier_order_id in splits:
        report.checked += 1
        try:
            state = porting.port_status(carrier_order_id)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            log.warning("port status of %s failed: %s", carrier_order_id, exc)
            failed.append(f"{carrier_order_id}: {exc or type(exc).__name__}")
            continue
        apply_state(db, carrier, settings, order_id, state, report)
    if asked and failed:
        raise CarrierError(
            "the carrier didn't answer about " + "; ".join(failed) + " (nothing changed there)",
            field="order_id",
        )
    return report


def apply_state(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    order_id: str,
    state: PortOrderState,
    report: SyncReport | None = None,
) -> None:
    """What the carrier says of one of its orders, recorded (each change once)."""
    report = report if report is not None else SyncReport()
    if state.status == "ported":
        on = date.fromisoformat(state.foc_date) if state.foc_date else clock.now().date()
        report.ported.extend(complete(db, carrier, settings, order_id, state.carrier_order_id, on))
        return
    with db.session() as session:
        split = session.get(PortCarrierOrder, state.carrier_order_id, with_for_update=True)
        if split is None or split.order_id != order_id or split.status in lifecycle.FINAL:
            return
        foc = date.fromisoformat(state.foc_date) if state.foc_date else None
        if (split.status, split.reason, split.foc_date) == (state.status, state.reason, foc):
            return
        if split.status == EXCEPTION and state.status == EXCEPTION:
            return  # still in exception (a corrected order waits for its resubmission)
        split.status, split.reason, split.updated_at = state.status, state.reason, clock.now()
        split.foc_date = foc or split.foc_date
        order = session.get_one(PortOrder, order_id)
        report.changed.append(order_id)
        if state.status == EXCEPTION:
            if lifecycle.move(session, order_id, EXCEPTION, reason=(state.reason or "")[:1000]):
                _publish(
                    session,
                    order,
                    "port.exception",
                    f"Port order {order_id}: the losing carrier rejected it: {state.reason}",
                    reason=state.reason,
                    carrier_order_id=state.carrier_order_id,
                    losing_carrier=state.losing_carrier,
                )
        elif state.status == "foc_confirmed" and foc is not None:
            if lifecycle.move(session, order_id, FOC_CONFIRMED, foc_date=foc):
                _publish(
                    session,
                    order,
                    "port.foc_confirmed",
                    f"Port order {order_id}: the numbers move on {foc.isoformat()}",
                    foc_date=foc.isoformat(),
                    carrier_order_id=state.carrier_order_id,
                )
        elif state.status == "in_progress":
            lifecycle.move(
                session,
                order_id,
                IN_PROGRESS,
                only_from=(lifecycle.SUBMITTED, lifecycle.RESUBMITTED),
            )
        elif state.status == "cancelled" and lifecycle.move(
            session, order_id, CANCELLED, extra=PortOrder.ported_count == 0
        ):
            _publish(
                session,
                order,
                "port.cancelled",
                f"Port order {order_id} was cancelled by the carrier",
            )


def complete(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    order_id: str,
    carrier_order_id: str,
    ported_on: date,
) -> list[str]:
    """One carrier order has ported: its numbers become the tenant's, active,
    billed from ``ported_on``. Returns the numbers added (none when the order
    was cancelled meanwhile, or this was done before)."""
    with db.read_session() as session:
        order = session.get(PortOrder, order_id)
        if order is None or order.status in lifecycle.FINAL:
            return []
        owner_id, currency = order.owner_id, settings.currency
        wanted = [
            r.e164
            for r in port_numbers(session, order_id)
            if r.carrier_order_id == carrier_order_id
        ]
        total_numbers = len(port_numbers(session, order_id))
    try:
        with db.session() as session:
            wallet = ledger.lock_wallet(session, owner_id, currency)
            moved = session.execute(
                update(PortOrder)
                .where(PortOrder.id == order_id, PortOrder.status.not_in(lifecycle.FINAL))
                .values(ported_count=PortOrder.ported_count + len(wanted), updated_at=clock.now())
                .returning(PortOrder.ported_count)
                .execution_options(synchronize_session=False)
            ).first()
            if moved is None:
                raise _Lost
            split = session.execute(
                update(PortCarrierOrder)
                .where(
                    PortCarrierOrder.carrier_order_id == carrier_order_id,
                    PortCarrierOrder.status.not_in(lifecycle.FINAL),
                )
                .values(status=PORTED, foc_date=ported_on, updated_at=clock.now())
                .returning(PortCarrierOrder.carrier_order_id)
                .execution_options(synchronize_session=False)
            ).first()
            if split is None:
                raise _Lost
            session.expire_all()
            order = session.get_one(PortOrder, order_id)
            added = _add_numbers(session, settings, order, wanted, ported_on, wallet.id)
            if moved[0] >= total_numbers:
                lifecycle.move(
                    session,
                    order_id,
                    PORTED,
                    ported_on=ported_on,
                    foc_date=order.foc_date or ported_on,
                )
                session.expire_all()
                order = session.get_one(PortOrder, order_id)
                _publish(
                    session,
                    order,
                    "port.completed",
                    f"Port order {order_id} completed: {total_numbers} number(s) active from "
                    f"{ported_on.isoformat()}",
                    ported_on=ported_on.isoformat(),
                    phone_numbers=[n.e164 for n in added],
                )
            added_ids = [n.id for n in added]
            address_id, agent, listed = order.e911_address_id, order.agent_id, order.cnam
            scope = owner_scope(order)
    except _Lost:
        return []
    _after(db, carrier, scope, added_ids, address_id, listed is not None or agent is not None)
    return wanted


def _add_numbers(
    session: object,
    settings: Settings,
    order: PortOrder,
    wanted: list[str],
    ported_on: date,
    wallet_id: str,
) -> list[PhoneNumber]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    started = datetime.combine(ported_on, datetime.min.time(), tzinfo=UTC)
    scope = owner_scope(order)
    rows: list[PhoneNumber] = []
    total = Decimal("0.00")
    for e164 in sorted(wanted):
        kind = numbering.number_type_of(e164)
        price = numbers.price_for(settings, kind)
        row = PhoneNumber(
            id=new_id("num"),
            e164=e164,
            country_code=numbering.region_of(e164),
            phone_number_type=kind,
            features=["voice", "sms"],
            status=number_lifecycle.ACTIVE,
            is_managed=True,
            carrier=order.carrier,
            owner_id=order.owner_id,
            tenant_id=order.tenant_id,
            monthly_cost=price.monthly,
            upfront_cost=Decimal("0.00"),
            currency=settings.currency,
            created_at=clock.now(),
            purchased_at=started,
            renews_on=numbers.add_months(ported_on, 1),
            billed_periods=1,
        )
        session.add(row)
        session.flush()
        number_lifecycle.record(
            session,
            row,
            "ported_in",
            order.owner_id,
            order_id=order.id,
            ported_on=ported_on.isoformat(),
        )
        port_row = session.scalars(
            select(PortNumber).where(PortNumber.order_id == order.id, PortNumber.e164 == e164)
        ).first()
        if port_row is not None:
            port_row.number_id = row.id
        total += price.monthly
        rows.append(row)
    if total > 0:
        ledger.transfer(
            session,
            kind="port",
            description=f"Ported in {len(rows)} number(s): first month from {ported_on}",
            debit=wallet_id,
            credit=ledger.ensure_platform_book(session, ledger.REVENUE, settings.currency),
            amount=total,
            reference=order.id,
        )
    for row in rows:
        if order.agent_id is not None:
            numbers.assign_agent(session, scope, row.id, order.agent_id, "inbound")
        if order.cnam is not None:
            cnam.set_own_name(session, scope, row.id, order.cnam)
    return rows


def _after(
    db: Database,
    carrier: Carrier,
    scope: object,
    number_ids: list[str],
    address_id: str | None,
    push_cnam: bool,
) -> None:
    """After commit: the CNAM listing and the E911 address go to the carrier
    (a failure is the number's own CNAM/E911 status, retried by their sweeps)."""
    from didhub.tenancy import Scope

    assert isinstance(scope, Scope)
    if push_cnam:
        with contextlib.suppress(DidhubError, CarrierFailure, CarrierOutcomeUnknown):
            cnam.push(db, carrier, number_ids, scope.account_id)
    if address_id is None:
        return
    for number_id in number_ids:
        with contextlib.suppress(DidhubError):
            e911.attach(db, carrier, scope, number_id, address_id)


def on_carrier_event(
    db: Database, carrier: Carrier, settings: Settings, carrier_order_id: str
) -> str | None:
    """A carrier's porting webhook named one of its orders: ask the carrier
    about our order that holds it (the webhook is a nudge; the carrier's
    answer is what is recorded, so a forged or repeated one changes nothing).
    Returns our order id, None when the order isn't ours."""
    with db.read_session() as session:
        split = session.get(PortCarrierOrder, carrier_order_id)
        order_id = split.order_id if split is not None else None
    if order_id is not None:
        sync_order(db, carrier, settings, order_id)
    return order_id
