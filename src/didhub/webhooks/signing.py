"""Webhook signatures, Stripe-style, and the check a receiver runs.

Every delivery carries ``Didhub-Signature: t=<unix seconds>,v1=<hex>`` where
the hex is HMAC-SHA256, keyed with the endpoint's secret (the whole
``whsec_…`` string), of ``f"{t}.{body}"``: the timestamp, a dot, and the raw
request body exactly as received. Signing the timestamp lets a receiver refuse
a delivery replayed later. This module uses only the standard library, so a
receiver can ``from didhub.webhooks.signing import verify_signature`` or copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "Didhub-Signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    signed = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes | str) -> str:
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` (the ``Didhub-Signature`` value) signs ``body`` (the
    raw request body, before any JSON parsing) with ``secret``, and its
    timestamp is within ``tolerance`` seconds of ``now`` (default: the wall
    clock; ``tolerance=0`` skips the age check). Any ``v1`` entry may match."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
