"""Contract tests for Telnyx porting (carriers/telnyx_porting.py) against the
v2 payloads of Telnyx's porting reference (tests/fixtures/telnyx/porting_*),
and its signed webhooks reaching didhub."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import respx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from carrier_fixtures import load_json
from conftest import Acct
from didhub.api.app import create_app
from didhub.carriers.base import CarrierFailure, E911AddressData, PortRequestData
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.numbers.models import PhoneNumber

BASE = "https://api.telnyx.test"
FIRST = "f1486bae-f067-460c-ad43-73a92848f902"
SECOND = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"


@pytest.fixture
def telnyx() -> TelnyxCarrier:
    return TelnyxCarrier("KEYsecret0123456789", BASE, max_attempts=2, sleep=lambda _s: None)


def _request() -> PortRequestData:
    return PortRequestData(
        reference="port_ref_1",
        phone_numbers=("+13125552486", "+13125550147"),
        entity_name="Acme Dental LLC",
        authorized_person="Dana Smith",
        account_number="ACCT-778899",
        pin="4321",
        billing_phone_number="+13125552486",
        service_address=E911AddressData(
            "123 N MAIN ST", "STE 200", "LITTLE ROCK", "AR", "72201", "US", "Acme Dental"
        ),
        foc_date="2026-12-10",
        loa_document="doc-loa",
        bill_document="doc-bill",
    )


@respx.mock
def test_portability_check_reads_portable_fast_port_and_the_reason(telnyx: TelnyxCarrier) -> None:
    route = respx.post(f"{BASE}/v2/portability_checks").respond(
        json=load_json("telnyx", "porting_portability_check.json")
    )
    portable, refused = telnyx.porting.check_portability(["+13125552486", "+12125558724"])
    assert json.loads(route.calls.last.request.content) == {
        "phone_numbers": ["+13125552486", "+12125558724"]
    }
    assert (portable.portable, portable.fast_portable, portable.losing_carrier) == (
        True,
        True,
        "Example Bell",
    )
    assert (refused.portable, refused.reason) == (False, "no_coverage")


@respx.mock
def test_submit_fills_and_confirms_every_split_order(telnyx: TelnyxCarrier) -> None:
    created = respx.post(f"{BASE}/v2/porting_orders").respond(
        201, json=load_json("telnyx", "porting_orders_created_split.json")
    )
    patches = [
        respx.patch(f"{BASE}/v2/porting_orders/{i}").respond(json={"data": {}})
        for i in (FIRST, SECOND)
    ]
    in_process = load_json("telnyx", "porting_order_in_process.json")
    second = json.loads(json.dumps(in_process))
    second["data"]["id"] = SECOND
    second["data"]["old_service_provider_ocn"] = "Example Wireless"
    confirms = [
        respx.post(f"{BASE}/v2/porting_orders/{FIRST}/actions/confirm").respond(json=in_process),
        respx.post(f"{BASE}/v2/porting_orders/{SECOND}/actions/confirm").respond(json=second),
    ]
    states = telnyx.porting.submit_port(_request())
    assert json.loads(created.calls.last.request.content) == {
        "phone_numbers": ["+13125552486", "+13125550147"],
        "customer_reference": "port_ref_1",
    }
    body = json.loads(patches[0].calls.last.request.content)
    assert body["end_user"]["admin"] == {
        "entity_name": "Acme Dental LLC",
        "auth_person_name": "Dana Smith",
        "billing_phone_number": "+13125552486",
        "account_number": "ACCT-778899",
        "pin_passcode": "4321",
    }
    assert body["end_user"]["location"]["postal_code"] == "72201"
    assert body["documents"] == {"loa": "doc-loa", "invoice": "doc-bill"}
    assert body["activation_settings"] == {"foc_datetime_requested": "2026-12-10T16:00:00Z"}
    assert all(c.called for c in confirms) and patches[1].called
    assert [(s.carrier_order_id, s.status, s.losing_carrier) for s in states] == [
        (FIRST, "in_progress", "Example Bell"),
        (SECOND, "in_progress", "Example Wireless"),
    ]


@respx.mock
def test_status_exception_in_the_losing_carriers_words_then_foc_then_ported(
    telnyx: TelnyxCarrier,
) -> None:
    route = respx.get(f"{BASE}/v2/porting_orders/{FIRST}")
    route.respond(json=load_json("telnyx", "porting_order_exception.json"))
    state = telnyx.porting.port_status(FIRST)
    assert (state.status, state.reason) == (
        "exception",
        "Entity name does not match that on the CSR",
    )
    route.respond(json=load_json("telnyx", "porting_order_foc_confirmed.json"))
    state = telnyx.porting.port_status(FIRST)
    assert (state.status, state.foc_date, state.reason) == ("foc_confirmed", "2026-12-10", None)
    route.respond(json=load_json("telnyx", "porting_order_ported.json"))
    assert telnyx.porting.port_status(FIRST).status == "ported"


@respx.mock
def test_allowed_foc_dates_from_a_draft_it_then_deletes(telnyx: TelnyxCarrier) -> None:
    respx.post(f"{BASE}/v2/porting_orders").respond(
        201, json=load_json("telnyx", "porting_orders_created_split.json")
    )
    windows = load_json("telnyx", "porting_allowed_foc_windows.json")
    for order in (FIRST, SECOND):
        respx.get(f"{BASE}/v2/porting_orders/{order}/allowed_foc_windows").respond(json=windows)
    deleted = [respx.delete(f"{BASE}/v2/porting_orders/{o}").respond(204) for o in (FIRST, SECOND)]
    assert telnyx.porting.allowed_foc_dates(["+13125552486"]) == ["2026-12-10", "2026-12-11"]
    assert all(d.called for d in deleted)


@respx.mock
def test_documents_upload_base64_and_cancel_and_port_outs(telnyx: TelnyxCarrier) -> None:
    upload = respx.post(f"{BASE}/v2/documents").respond(
        json=load_json("telnyx", "document_created.json")
    )
    assert telnyx.porting.upload_document("loa.pdf", b"%PDF-1.4") == (
        "6a09cdc3-8948-47f0-aa62-74ac943d6c58"
    )
    sent = json.loads(upload.calls.last.request.content)
    assert base64.b64decode(sent["file"]) == b"%PDF-1.4" and sent["filename"] == "loa.pdf"
    cancel = respx.post(f"{BASE}/v2/porting_orders/{FIRST}/actions/cancel").respond(json={})
    telnyx.porting.cancel_port(FIRST)
    assert cancel.called
    outs = respx.get(f"{BASE}/v2/portouts").respond(
        json=load_json("telnyx", "portouts_completed.json")
    )
    [out] = telnyx.porting.port_outs()
    assert dict(outs.calls.last.request.url.params) == {"filter[status]": "completed"}
    assert (out.phone_number, out.ported_on, out.winning_carrier) == (
        "+13125550199",
        "2026-12-05",
        "Testing Carrier",
    )
    with pytest.raises(CarrierFailure, match="portal"):
        telnyx.porting.set_port_out_pin("+13125550199", "1234")


@respx.mock
def test_a_rejected_submission_names_telnyxs_error(telnyx: TelnyxCarrier) -> None:
    respx.post(f"{BASE}/v2/porting_orders").respond(
        422,
        json={
            "errors": [
                {"code": "10015", "title": "Bad Request", "detail": "Number is not portable"}
            ]
        },
    )
    with pytest.raises(CarrierFailure, match="Number is not portable"):
        telnyx.porting.submit_port(_request())


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _signed(client: TestClient, key: Ed25519PrivateKey, event: dict[str, Any]) -> Any:
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()
    return client.post(
        "/carriers/telnyx/webhooks",
        content=body,
        headers={"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp},
    )


@respx.mock
def test_signed_portout_webhook_marks_the_number_ported_out(
    settings: Settings, db: Database, key: Ed25519PrivateKey, partner: Acct
) -> None:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = settings.model_copy(update={"telnyx_public_key": base64.b64encode(public).decode()})
    telnyx = TelnyxCarrier("KEYsecret0123456789", BASE, max_attempts=1, sleep=lambda _s: None)
    client = TestClient(create_app(signed, db, telnyx))
    number_id = new_id("num")
    with db.session() as session:  # a number didhub sold from Telnyx in November
        session.add(
            PhoneNumber(
                id=number_id, e164="+13125550199", country_code="US",
                phone_number_type="local", features=["voice"], status="active",
                is_managed=True, carrier="telnyx", owner_id=partner.id,
                monthly_cost=Decimal("1.00"), upfront_cost=Decimal("0"), currency="USD",
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
                purchased_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )  # fmt: skip
    answer = _signed(client, key, load_json("telnyx", "webhook_portout_completed.json"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["settled"] is True
    shown = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert (shown["status"], shown["renews_on"]) == ("ported_out", None)
    events = client.get("/events", headers=partner.headers).json()["data"]
    assert "number.ported_out" in [e["type"] for e in events]
    again = _signed(client, key, load_json("telnyx", "webhook_portout_completed.json"))
    assert again.json()["data"]["settled"] is False  # a duplicate changes nothing


@respx.mock
def test_signed_porting_order_webhook_asks_telnyx_and_records_the_exception(
    settings: Settings, db: Database, key: Ed25519PrivateKey
) -> None:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = settings.model_copy(update={"telnyx_public_key": base64.b64encode(public).decode()})
    telnyx = TelnyxCarrier("KEYsecret0123456789", BASE, max_attempts=1, sleep=lambda _s: None)
    client = TestClient(create_app(signed, db, telnyx))
    answer = _signed(client, key, load_json("telnyx", "webhook_porting_order_status_changed.json"))
    assert answer.status_code == 200, answer.text
    # Not an order of ours: acknowledged, nothing asked.
    assert answer.json()["data"] == {
        "event_type": "porting_order.status_changed",
        "order_id": None,
        "settled": False,
    }
