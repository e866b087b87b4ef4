"""Telnyx order webhooks, as Telnyx sends them: the signature and the order
event (``numbers/carrier_webhooks.py`` settles the order).

Telnyx signs each webhook with the account's Ed25519 key: the signature
(``telnyx-signature-ed25519``, base64) is over ``f"{telnyx-timestamp}|{raw body}"``.
A webhook that isn't signed by the configured public key, or is older than the
tolerance, is refused.
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

from didhub.carriers.base import NumberOrderResult
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.config import Settings
from didhub.errors import Unauthorized, ValidationFailed

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
class OrderEvent:
    event_type: str
    order_id: str | None  # ours (the order's customer_reference); None: not an order of ours
    results: list[NumberOrderResult]  # what Telnyx says of each number


def parse(body: bytes) -> OrderEvent:
    """The order event a webhook carries; 422 for a body that isn't one."""
    try:
        event: dict[str, Any] = json.loads(body)["data"]
        event_type = str(event["event_type"])
        payload: dict[str, Any] = event.get("payload") or {}
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed("not a Telnyx webhook", field="data") from None
    order_id = payload.get("customer_reference")
    if event_type not in FINAL_EVENTS or not isinstance(order_id, str):
        return OrderEvent(event_type, None, [])
    return OrderEvent(event_type, order_id, TelnyxCarrier._results(payload, None))
