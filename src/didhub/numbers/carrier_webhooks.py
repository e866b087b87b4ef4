"""Carriers' order webhooks, settled: Telnyx's ``number_order.complete`` settles
an order as soon as Telnyx finishes it, instead of waiting for reconcile to ask
(``carriers/telnyx_webhooks.py`` checks the signature and reads the event).

Telnyx delivers at least once: a duplicate settles nothing twice, because
settling only moves numbers still ``provisioning``. An order split across
carriers (``multi``) settles only its numbers recorded as Telnyx's: the others
are another carrier's to answer for (its own answer, or reconcile asking it).
Numbers recorded as ``multi`` (before each number kept its carrier) are left to
reconcile, which asks every carrier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from didhub import clock
from didhub.carriers import telnyx_webhooks
from didhub.carriers.base import Carrier
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.carriers.telnyx_porting import parse_webhook
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import PROVISIONING
from didhub.numbers.models import NumberOrder, PhoneNumber


@dataclass(frozen=True)
class WebhookOutcome:
    event_type: str
    order_id: str | None  # ours (the order's customer_reference)
    settled: bool  # numbers changed now (False for a duplicate or an early event)


def handle_telnyx(
    db: Database, carrier: Carrier, settings: Settings, body: bytes
) -> WebhookOutcome:
    """Settle the order a ``number_order.complete`` event finishes; other events
    and orders that aren't ours are acknowledged and ignored."""
    ported_away = _telnyx_port_out(db, body)
    if ported_away is not None:
        return ported_away
    event = telnyx_webhooks.parse(body)
    event_type, order_id, results = event.event_type, event.order_id, event.results
    if order_id is None:
        return WebhookOutcome(event_type, None, False)
    with db.read_session() as session:
        if session.get(NumberOrder, order_id) is None:
            return WebhookOutcome(event_type, None, False)
        open_numbers = session.scalar(
            select(func.count())
            .select_from(PhoneNumber)
            .where(
                PhoneNumber.order_id == order_id,
                PhoneNumber.status == PROVISIONING,
                PhoneNumber.carrier == TelnyxCarrier.name,
            )
        )
    if not open_numbers or any(r.status == "unknown" for r in results):
        return WebhookOutcome(event_type, order_id, False)  # a duplicate, or not final
    numbers.settle_order(
        db,
        carrier,
        settings,
        order_id,
        results,
        authoritative=True,
        answered_by=frozenset({TelnyxCarrier.name}),
    )
    return WebhookOutcome(event_type, order_id, True)


def _telnyx_port_out(db: Database, body: bytes) -> WebhookOutcome | None:
    """``portout.status_changed`` with status ``completed``: the payload's
    numbers left for another carrier (numbers/service/portout.py). None for
    any other event."""
    try:
        event_type, payload = parse_webhook(body)
    except Exception:
        return None
    if event_type != "portout.status_changed":
        return None
    if payload.get("status") != "completed":
        return WebhookOutcome(event_type, None, False)
    when = str(payload.get("foc_date") or payload.get("updated_at") or "")[:10]
    try:
        on = date.fromisoformat(when)
    except ValueError:
        on = clock.now().date()
    changed = False
    for e164 in payload.get("phone_numbers") or []:
        marked = numbers.mark_ported_out(
            db, str(e164), on, payload.get("carrier_name"), str(payload.get("id"))
        )
        changed = changed or marked is not None
    return WebhookOutcome(event_type, None, changed)
