"""Port-out: a number the carrier reports ported away to another carrier.

It is marked ``ported_out`` (``numbers/lifecycle.py``), billing stops from the
port date (``released_at``, no renewal), its agent assignments end so it loses
its routing (the routing generation moves with the commit, as a release's
does), and its owner is told: the number's history event is published as
``number.ported_out`` and the owner's account history says so.

Carriers report port-outs through reconcile (``Porting.port_outs``) and their
webhooks (Telnyx ``portout.status_changed``); both call :func:`mark_ported_out`,
which changes only a live number, so a repeated report changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from didhub import clock
from didhub.carriers.base import Carrier, CarrierFailure, CarrierOutcomeUnknown, porting_of
from didhub.carriers.registry import carrier_for, served_carrier_names
from didhub.db import Database
from didhub.numbers import lifecycle
from didhub.numbers.models import PhoneNumber
from didhub.numbers.service.assignments import end_assignments
from didhub.wallet import service as billing_wallet

_MOVABLE = (lifecycle.ACTIVE, lifecycle.SUSPENDED, lifecycle.RELEASING)


def mark_ported_out(
    db: Database,
    e164: str,
    ported_on: date,
    winning_carrier: str | None = None,
    reference: str | None = None,
) -> PhoneNumber | None:
    """Mark the live number ``e164`` ported out; None when there is none (or
    it arrived after ``ported_on``: an old report about an earlier holder)."""
    with db.session() as session:
        number = session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.e164 == e164, PhoneNumber.status.in_(_MOVABLE))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if number is None:
            return None
        if number.purchased_at is not None and number.purchased_at.date() > ported_on:
            return None
        lifecycle.transition(
            session,
            number,
            lifecycle.PORTED_OUT,
            None,
            ported_on=ported_on.isoformat(),
            winning_carrier=winning_carrier,
            reference=reference,
        )
        end_assignments(session, number, None, "ported out")
        number.released_at = datetime.combine(ported_on, datetime.min.time(), tzinfo=UTC)
        number.renews_on = None
        number.carrier_missing_since = None
        billing_wallet.event(
            session,
            number.owner_id,
            "number.ported_out",
            f"{e164} was ported away to {winning_carrier or 'another carrier'} on "
            f"{ported_on.isoformat()}; it is no longer billed or routed",
            phone_number=e164,
            ported_on=ported_on.isoformat(),
        )
        session.flush()
        return number


def reconcile_port_outs(db: Database, carrier: Carrier) -> list[str]:
    """Ask every served carrier that can port which numbers left; mark them."""
    marked: list[str] = []
    for name in served_carrier_names(carrier):
        try:
            reports = porting_of(carrier_for(carrier, name)).port_outs()
        except (CarrierFailure, CarrierOutcomeUnknown):
            continue
        for report in reports:
            try:
                on = date.fromisoformat(report.ported_on)
            except ValueError:
                on = clock.now().date()
            if mark_ported_out(
                db, report.phone_number, on, report.winning_carrier, report.reference
            ):
                marked.append(report.phone_number)
    return marked
