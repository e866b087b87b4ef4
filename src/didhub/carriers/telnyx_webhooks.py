"""Telnyx order webhooks: ``number_order.complete`` settles a number order as
soon as Telnyx finishes it, instead of waiting for reconcile to ask.

Telnyx signs each webhook with the account's Ed25519 key: the signature
(``telnyx-signature-ed25519``, base64) is over ``f"{telnyx-timestamp}|{raw body}"``.
A webhook that isn't signed by the configured public key, or is older than the
tolerance, is refused. Telnyx delivers at least once: a duplicate settles
nothing twice, because settling only moves numbers still ``provisioning``.

An order split across carriers (``multi``) settles only its numbers recorded
as Telnyx's: the others are another carrier's to answer for (its own answer,
or reconcile asking it). Numbers recorded as ``multi`` (before each number
kept its carrier) are left to reconcile, which asks every carrier.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select

from didhub.carriers.base import Carrier
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import Unauthorized, ValidationFailed
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import PROVISIONING
from didhub.numbers.models import NumberOrder, PhoneNumber

FINAL_EVENTS = ("number_order.complete",)


def verify(settings: Settings, body: bytes, signature: str | None, timestamp: str | None) -> None:
    """Raise Unauthorized unless Telnyx signed ``body`` recently."""
    if not settings.telnyx_public_key:
        raise Unauthorized("Telnyx webhooks are not configured (DIDHUB_TELNYX_PUBLIC_KEY)")
    if not signature or not timestamp or not timestamp.isdigit():
        raise Unauthorized("missing telnyx-signature-ed25519 or telnyx-timestamp")
    if abs(time.time() - int(timestamp)) > settings.telnyx_webhook_tolerance_seconds:
        raise Unauthorized("the webhook's timestamp is too old (or in the future)")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(settings.telnyx_public_key))
        key.verify(base64.b64decode(signature), timestamp.encode() + b"|" + body)
    except (InvalidSignature, ValueError, binascii.Error):
        raise Unauthorized("the webhook's signature does not verify") from None


@dataclass(frozen=True)
class WebhookOutcome:
    event_type: str
    order_id: str | None  # ours (the order's customer_reference)
    settled: bool  # numbers changed now (False for a duplicate or an early event)


def handle(db: Database, carrier: Carrier, settings: Settings, body: bytes) -> WebhookOutcome:
    """Settle the order a ``number_order.complete`` event finishes; other events
    and orders that aren't ours are acknowledged and ignored."""
    try:
        event: dict[str, Any] = json.loads(body)["data"]
        event_type = str(event["event_type"])
        payload: dict[str, Any] = event.get("payload") or {}
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed("not a Telnyx webhook", field="data") from None
    order_id = payload.get("customer_reference")
    if event_type not in FINAL_EVENTS or not isinstance(order_id, str):
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
    results = TelnyxCarrier._results(payload, None)
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
