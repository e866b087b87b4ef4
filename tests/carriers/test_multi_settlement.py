"""An order split across carriers (issue 12, item 5): through ``multi``, one
number comes from Telnyx and one from Twilio. Telnyx is still filling its half
and Twilio's answer was lost when Telnyx's ``number_order.complete`` webhook
arrives: it settles Telnyx's number only, and Twilio's number (which Twilio
did fill, and bills the platform for) is neither failed nor refunded; reconcile
settles it by asking Twilio. Each number records the carrier that holds it, and
its caller name, E911 address and release go to that carrier's API only, even
in a process that never saw the search.

The carriers are faked at the HTTP level (respx) with what each account holds,
so the real adapters and ``MultiCarrier`` run end to end."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from carrier_fixtures import load_json
from conftest import Acct, ledger_ok
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.multi import MultiCarrier
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.carriers.twilio import CNAM_REFUSAL, TwilioCarrier
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.e911.models import E911Address
from didhub.numbers import service as numbers
from didhub.numbers.models import NumberOrder, PhoneNumber
from didhub.wallet import ledger

TELNYX = "https://api.telnyx.test"
TWILIO = "https://api.twilio.test"
SID = "AC00000000000000000000000000000000"
TWILIO_ACCOUNT = f"/2010-04-01/Accounts/{SID}"
AT_TELNYX = "+13125550101"  # only Telnyx offers it
AT_TWILIO = "+13124440000"  # only Twilio offers it


@dataclass
class Seen:
    carrier: str
    method: str
    url: str  # unquoted, with its query
    body: str

    def mentions(self, e164: str) -> bool:
        return e164 in self.url or e164 in self.body


@dataclass
class CarrierAccounts:
    """What the platform's Telnyx and Twilio accounts hold, answered over HTTP."""

    telnyx: dict[str, str] = field(default_factory=dict)  # e164 -> Telnyx number id
    twilio: dict[str, tuple[str, str]] = field(default_factory=dict)  # e164 -> (sid, name)
    telnyx_cnam: dict[str, str | None] = field(default_factory=dict)  # number id -> name
    twilio_e911: dict[str, str] = field(default_factory=dict)  # sid -> address sid
    seen: list[Seen] = field(default_factory=list)

    def _see(self, carrier: str, request: httpx.Request) -> None:
        self.seen.append(
            Seen(
                carrier,
                request.method,
                unquote(str(request.url)),
                unquote(request.content.decode()),
            )
        )

    # -- Telnyx ------------------------------------------------------------------

    def telnyx_api(self, request: httpx.Request) -> httpx.Response:
        self._see("telnyx", request)
        path, params = request.url.path, request.url.params
        if request.method == "GET" and path == "/v2/available_phone_numbers":
            offered = load_json("telnyx", "available_phone_numbers.json")
            offered["data"] = [n for n in offered["data"] if n["phone_number"] == AT_TELNYX]
            return httpx.Response(200, json=offered)
        if request.method == "POST" and path == "/v2/number_orders":
            asked = json.loads(request.content)
            order = load_json("telnyx", "number_order_pending.json")["data"]
            order["customer_reference"] = asked["customer_reference"]
            order["phone_numbers"] = [
                {"phone_number": n["phone_number"], "status": "pending"}
                for n in asked["phone_numbers"]
            ]
            return httpx.Response(200, json={"data": order})  # Telnyx fills it later
        if request.method == "GET" and path == "/v2/number_orders":
            return httpx.Response(200, json={"data": [], "meta": {"total_pages": 1}})
        if request.method == "GET" and path == "/v2/phone_numbers":
            wanted = params.get("filter[phone_number]")
            held = [
                {"id": number_id, "record_type": "phone_number", "phone_number": e164}
                for e164, number_id in sorted(self.telnyx.items())
                if wanted is None or e164 == wanted
            ]
            return httpx.Response(200, json={"data": held, "meta": {"total_pages": 1}})
        voice = re.fullmatch(r"/v2/phone_numbers/(\w+)/voice", path)
        if request.method == "PATCH" and voice and voice[1] in self.telnyx.values():
            listing = json.loads(request.content)["cnam_listing"]
            self.telnyx_cnam[voice[1]] = listing.get("cnam_listing_details")
            return httpx.Response(200, json=load_json("telnyx", "voice_settings_active.json"))
        return httpx.Response(404, json={"errors": [{"code": "10005", "detail": "not found"}]})

    # -- Twilio ------------------------------------------------------------------

    def twilio_api(self, request: httpx.Request) -> httpx.Response:
        self._see("twilio", request)
        path, params = request.url.path, request.url.params
        incoming = f"{TWILIO_ACCOUNT}/IncomingPhoneNumbers"
        if (
            request.method == "GET"
            and path == f"{TWILIO_ACCOUNT}/AvailablePhoneNumbers/US/Local.json"
        ):
            offered = load_json("twilio", "available_local.json")
            offered["available_phone_numbers"] = [
                n for n in offered["available_phone_numbers"] if n["phone_number"] == AT_TWILIO
            ]
            return httpx.Response(200, json=offered)
        if request.method == "POST" and path == f"{incoming}.json":
            form = dict(httpx.QueryParams(request.content.decode()))
            self.twilio[form["PhoneNumber"]] = (
                f"PN{len(self.twilio) + 1:032d}",
                form["FriendlyName"],
            )
            # Twilio bought it, and the answer is lost on the way back.
            raise httpx.ReadTimeout("read timed out", request=request)
        if request.method == "GET" and path == f"{incoming}.json":
            rows = [
                {"sid": sid, "phone_number": e164, "friendly_name": name}
                for e164, (sid, name) in sorted(self.twilio.items())
                if params.get("PhoneNumber", e164) == e164
                and params.get("FriendlyName", name) == name
            ]
            return httpx.Response(200, json={"incoming_phone_numbers": rows, "next_page_uri": None})
        one = re.fullmatch(rf"{incoming}/(PN\d+)\.json", path)
        held = {sid: e164 for e164, (sid, _) in self.twilio.items()}
        if one and one[1] in held and request.method == "DELETE":
            del self.twilio[held[one[1]]]
            return httpx.Response(204)
        if one and one[1] in held and request.method == "POST":
            self.twilio_e911[one[1]] = dict(httpx.QueryParams(request.content.decode()))[
                "EmergencyAddressSid"
            ]
            answer = load_json("twilio", "incoming_e911_registered.json")
            answer.update(sid=one[1], phone_number=held[one[1]])
            return httpx.Response(200, json=answer)
        if request.method == "GET" and path == f"{TWILIO_ACCOUNT}/Addresses.json":
            return httpx.Response(200, json=load_json("twilio", "addresses_empty.json"))
        if request.method == "POST" and path == f"{TWILIO_ACCOUNT}/Addresses.json":
            return httpx.Response(201, json=load_json("twilio", "address_created.json"))
        return httpx.Response(404, json={"code": 20404, "message": "not found", "status": 404})


@pytest.fixture
def accounts() -> Iterator[CarrierAccounts]:
    fake = CarrierAccounts()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.telnyx.test").mock(side_effect=fake.telnyx_api)
        router.route(host="api.twilio.test").mock(side_effect=fake.twilio_api)
        yield fake


def multi_carrier() -> MultiCarrier:
    """A fresh process's carrier: it remembers no search."""
    return MultiCarrier(
        [
            TelnyxCarrier("key", TELNYX, order_wait_seconds=0, sleep=lambda _: None),
            TwilioCarrier(SID, "token", TWILIO, sleep=lambda _: None),
        ]
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(settings: Settings, key: Ed25519PrivateKey) -> Settings:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return settings.model_copy(update={"telnyx_public_key": base64.b64encode(public).decode()})


def telnyx_completes(
    client: TestClient, key: Ed25519PrivateKey, order_id: str, filled: list[str]
) -> Any:
    """Telnyx's signed ``number_order.complete`` for its part of the order."""
    event = {
        "data": {
            "event_type": "number_order.complete",
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "record_type": "event",
            "payload": {
                "record_type": "number_order",
                "customer_reference": order_id,
                "status": "success",
                "phone_numbers_count": len(filled),
                "phone_numbers": [
                    {
                        "phone_number": n,
                        "status": "success",
                        "record_type": "number_order_phone_number",
                    }
                    for n in filled
                ],
            },
        }
    }
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()
    return client.post(
        "/carriers/telnyx/webhooks",
        content=body,
        headers={"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp},
    )


def balance(db: Database, acct: Acct) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, acct.id, "USD")


def shown(client: TestClient, acct: Acct) -> dict[str, dict[str, Any]]:
    listed = client.get(
        "/telephony/numbers", params={"status": "all"}, headers=acct.headers
    ).json()["data"]
    return {n["phone_number"]: n for n in listed}


def test_a_telnyx_webhook_settles_only_telnyx_numbers_of_a_split_order(
    accounts: CarrierAccounts,
    signed: Settings,
    db: Database,
    partner: Acct,
    key: Ed25519PrivateKey,
) -> None:
    client = TestClient(create_app(signed, db, multi_carrier()))
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [AT_TELNYX, AT_TWILIO]},
        headers=partner.headers,
    )
    assert bought.status_code == 202, bought.text  # neither carrier's outcome is known
    order_id = bought.json()["meta"]["order_id"]
    assert balance(db, partner) == Decimal("96.00")  # 2 × (1.00 setup + 1.00 month)
    assert AT_TWILIO in accounts.twilio  # Twilio did buy it: it bills the platform

    accounts.telnyx[AT_TELNYX] = "1293384261075731499"  # Telnyx fills its half
    answer = telnyx_completes(client, key, order_id, [AT_TELNYX])
    assert answer.status_code == 200 and answer.json()["data"]["settled"] is True
    status = {e164: n["status"] for e164, n in shown(client, partner).items()}
    assert status == {AT_TELNYX: "active", AT_TWILIO: "provisioning"}
    assert balance(db, partner) == Decimal("96.00")  # nothing refunded for Twilio's number
    assert AT_TWILIO in accounts.twilio  # and nothing released there

    # Reconcile asks Twilio (by the order id in FriendlyName) about its number.
    report = numbers.reconcile(db, multi_carrier(), signed, min_age=timedelta(0))
    assert report.activated == [AT_TWILIO] and report.failed == [] and report.refunded == 0
    assert report.missing_at_carrier == [] and report.not_ours == []
    carriers = {e164: (n["status"], n["carrier"]) for e164, n in shown(client, partner).items()}
    assert carriers == {AT_TELNYX: ("active", "telnyx"), AT_TWILIO: ("active", "twilio")}
    with db.session() as session:
        assert session.get_one(NumberOrder, order_id).status == "settled"
    assert balance(db, partner) == Decimal("96.00")
    assert ledger_ok(db)


def test_cnam_e911_and_release_go_to_the_carrier_that_holds_the_number(
    accounts: CarrierAccounts, signed: Settings, db: Database, partner: Acct, key: Ed25519PrivateKey
) -> None:
    client = TestClient(create_app(signed, db, multi_carrier()))
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [AT_TELNYX, AT_TWILIO]},
        headers=partner.headers,
    )
    order_id = bought.json()["meta"]["order_id"]
    accounts.telnyx[AT_TELNYX] = "1293384261075731499"
    telnyx_completes(client, key, order_id, [AT_TELNYX])
    numbers.reconcile(db, multi_carrier(), signed, min_age=timedelta(0))
    ids = {e164: n["id"] for e164, n in shown(client, partner).items()}

    # Another worker: its MultiCarrier never saw the search that found them.
    client = TestClient(create_app(signed, db, multi_carrier()))
    accounts.seen.clear()
    for e164 in (AT_TELNYX, AT_TWILIO):
        client.patch(
            f"/telephony/numbers/{ids[e164]}", json={"cnam": "ACME"}, headers=partner.headers
        )
    cnam = {e164: n["cnam"] for e164, n in shown(client, partner).items()}
    assert cnam[AT_TELNYX]["status"] == "active"
    assert accounts.telnyx_cnam == {"1293384261075731499": "ACME"}
    assert cnam[AT_TWILIO]["status"] == "failed"
    assert cnam[AT_TWILIO]["reason"] == CNAM_REFUSAL  # Twilio's own refusal, not Telnyx's

    with db.session() as session:
        address = E911Address(
            id=new_id("e911"), account_id=partner.id, street="600 CONGRESS AVE", unit=None,
            city="AUSTIN", state="TX", postal_code="78701-3217", country="US",
            caller_name="ACME DENTAL", status="validated", carrier="multi", created_at=clock.now(),
            validated_at=clock.now(),
        )  # fmt: skip
        session.add(address)
    put = client.put(
        f"/telephony/numbers/{ids[AT_TWILIO]}/e911",
        json={"address_id": address.id},
        headers=partner.headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["data"]["e911_status"] == "provisioned"
    sid = accounts.twilio[AT_TWILIO][0]
    assert accounts.twilio_e911 == {sid: "AD11111111111111111111111111111111"}

    released = client.post(
        "/telephony/numbers/release", json={"number_id": ids[AT_TWILIO]}, headers=partner.headers
    )
    assert released.status_code == 200, released.text
    assert released.json()["data"]["status"] == "released"
    assert AT_TWILIO not in accounts.twilio and AT_TELNYX in accounts.telnyx

    # Nothing about Twilio's number was asked of Telnyx, nor the other way round.
    assert [s.url for s in accounts.seen if s.carrier == "telnyx" and s.mentions(AT_TWILIO)] == []
    assert [s.url for s in accounts.seen if s.carrier == "twilio" and s.mentions(AT_TELNYX)] == []
    assert balance(db, partner) == Decimal("96.00") and ledger_ok(db)


def test_numbers_recorded_as_multi_before_the_change_still_find_their_carrier(
    accounts: CarrierAccounts, settings: Settings, db: Database, partner: Acct
) -> None:
    """Rows written before numbers recorded their own carrier say ``multi``:
    reconcile asks every carrier about their order (and records who filled it),
    and a release asks the carriers who holds the number, as before."""
    now = clock.now()
    order_id = new_id("ord")
    accounts.twilio[AT_TWILIO] = ("PN" + "1" * 32, order_id)
    with db.session() as session:
        wallet = ledger.lock_wallet(session, partner.id, "USD")
        txn = ledger.transfer(
            session, kind="purchase", description="Purchase of 1 number(s)", debit=wallet.id,
            credit=ledger.ensure_platform_book(session, ledger.REVENUE, "USD"),
            amount=Decimal("2.00"), reference=order_id,
        )  # fmt: skip
        session.add(
            NumberOrder(
                id=order_id, account_id=partner.id, carrier="multi", status="pending",
                total=Decimal("2.00"), currency="USD", ledger_transaction_id=txn.id,
                created_at=now,
            )
        )  # fmt: skip
        session.flush()
        session.add(
            PhoneNumber(
                id=new_id("num"), e164=AT_TWILIO, country_code="US", phone_number_type="local",
                features=["voice"], status="provisioning", is_managed=True, carrier="multi",
                order_id=order_id, owner_id=partner.id, monthly_cost=Decimal("1.00"),
                upfront_cost=Decimal("1.00"), currency="USD", created_at=now,
            )
        )  # fmt: skip
    report = numbers.reconcile(db, multi_carrier(), settings, min_age=timedelta(0))
    assert report.activated == [AT_TWILIO]
    client = TestClient(create_app(settings, db, multi_carrier()))
    number = shown(client, partner)[AT_TWILIO]
    assert (number["status"], number["carrier"]) == ("active", "twilio")

    # An active row still saying "multi": release asks who holds it.
    with db.session() as session:
        session.get_one(PhoneNumber, number["id"]).carrier = "multi"
    released = client.post(
        "/telephony/numbers/release", json={"number_id": number["id"]}, headers=partner.headers
    )
    assert released.json()["data"]["status"] == "released", released.text
    assert AT_TWILIO not in accounts.twilio
    assert balance(db, partner) == Decimal("98.00") and ledger_ok(db)
