"""Telnyx order webhooks: a signed ``number_order.complete`` settles an order
whose outcome the purchase didn't learn (a timeout mid-order), partially filled
(3 of 5), with exact refunds; the duplicate Telnyx sends changes nothing; a bad
signature is refused; reconcile afterwards finds nothing to do and the books
are clean."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from conftest import Acct, ledger_ok
from didhub.api.app import create_app
from didhub.carriers.base import (
    AvailableNumber,
    CarrierOutcomeUnknown,
    NumberOrderResult,
    SearchQuery,
    WithoutCnamAndE911,
)
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.wallet import ledger

NUMBERS = [f"+1312555010{i}" for i in range(1, 6)]
FILLED, UNFILLED = NUMBERS[:3], NUMBERS[3:]
ORDERED = "number_order_phone_number"


class TimingOutCarrier(WithoutCnamAndE911):
    """Offers NUMBERS; an order times out (its outcome unknown); asked later,
    it says 3 of the 5 were filled."""

    name = "telnyx"

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        return iter([self._number(n) for n in NUMBERS if n not in exclude])

    @staticmethod
    def _number(e164: str) -> AvailableNumber:
        return AvailableNumber(e164, "US", "local", "Chicago", "IL", "CHICAGO")

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        return self._number(phone_number) if phone_number in NUMBERS else None

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        return None

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        raise CarrierOutcomeUnknown("telnyx: timeout after the order was sent")

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        return [NumberOrderResult(n, "active") for n in FILLED] + [
            NumberOrderResult(n, "failed", "number no longer available") for n in UNFILLED
        ]

    def owned_numbers(self) -> Iterator[str]:
        return iter(FILLED)

    def release(self, phone_number: str) -> None:
        return None


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def app_client(settings: Settings, db: Database, key: Ed25519PrivateKey) -> TestClient:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = settings.model_copy(update={"telnyx_public_key": base64.b64encode(public).decode()})
    return TestClient(create_app(signed, db, TimingOutCarrier()))


def complete_event(order_id: str) -> dict[str, Any]:
    """``number_order.complete`` as Telnyx sends it (v2 webhook envelope)."""
    return {
        "data": {
            "event_type": "number_order.complete",
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2026-11-23T13:30:00.000000Z",
            "record_type": "event",
            "payload": {
                "id": "12ade33a-21c0-473b-b055-b3c836e1c292",
                "record_type": "number_order",
                "customer_reference": order_id,
                "status": "success",
                "phone_numbers_count": 5,
                "phone_numbers": [
                    {"phone_number": n, "status": "success", "record_type": ORDERED}
                    for n in FILLED
                ]
                + [
                    {"phone_number": n, "status": "failure", "record_type": ORDERED}
                    for n in UNFILLED
                ],
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://didhub.example/carriers/telnyx/webhooks"},
    }  # fmt: skip


def post_signed(
    client: TestClient, key: Ed25519PrivateKey, event: dict[str, Any], stamp: int | None = None
) -> Any:
    body = json.dumps(event).encode()
    timestamp = str(stamp if stamp is not None else int(time.time()))
    signature = base64.b64encode(key.sign(timestamp.encode() + b"|" + body)).decode()
    return client.post(
        "/carriers/telnyx/webhooks",
        content=body,
        headers={
            "telnyx-signature-ed25519": signature,
            "telnyx-timestamp": timestamp,
            "content-type": "application/json",
        },
    )


def test_a_signed_completion_settles_a_timed_out_order_once(
    app_client: TestClient,
    partner: Acct,
    db: Database,
    settings: Settings,
    key: Ed25519PrivateKey,
) -> None:
    bought = app_client.post(
        "/telephony/numbers/purchase", json={"phone_numbers": NUMBERS}, headers=partner.headers
    )
    assert bought.status_code == 202, bought.text  # the outcome isn't known yet
    order_id = bought.json()["meta"]["order_id"]
    assert {n["status"] for n in bought.json()["data"]} == {"provisioning"}

    def balance() -> Decimal:
        with db.session() as session:
            return ledger.wallet_balance(session, partner.id, "USD")

    assert balance() == Decimal("90.00")  # 5 × (1.00 setup + 1.00 month)

    # Not signed by our key: refused, nothing settles.
    forged = post_signed(app_client, Ed25519PrivateKey.generate(), complete_event(order_id))
    assert forged.status_code == 401
    stale = post_signed(app_client, key, complete_event(order_id), int(time.time()) - 3600)
    assert stale.status_code == 401

    first = post_signed(app_client, key, complete_event(order_id))
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {
        "event_type": "number_order.complete",
        "order_id": order_id,
        "settled": True,
    }
    listed = app_client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    status = {n["phone_number"]: n["status"] for n in listed}
    assert all(status[n] == "active" for n in FILLED)
    assert balance() == Decimal("94.00")  # the 2 unfilled numbers refunded exactly

    # Telnyx delivers at least once: the duplicate changes nothing.
    again = post_signed(app_client, key, complete_event(order_id))
    assert again.status_code == 200 and again.json()["data"]["settled"] is False
    assert balance() == Decimal("94.00")

    # Reconcile afterwards has nothing to settle; the books are clean.
    report = numbers.reconcile(db, TimingOutCarrier(), settings)
    assert report.orders_checked == 0 and report.refunded == 0
    assert report.missing_at_carrier == [] and balance() == Decimal("94.00")
    assert ledger_ok(db)


def test_events_for_orders_that_are_not_ours_are_acknowledged(
    app_client: TestClient, key: Ed25519PrivateKey
) -> None:
    answer = post_signed(app_client, key, complete_event("ord_someone_else"))
    assert answer.status_code == 200
    assert answer.json()["data"] == {
        "event_type": "number_order.complete",
        "order_id": None,
        "settled": False,
    }
