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

from sqlalchemy import func, select

from didhub.carriers import telnyx_webhooks
from didhub.carriers.base import Carrier
from didhub.carriers.telnyx import TelnyxCarrier
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
