"""Searching by ZIP code: sent to the carriers that can (Twilio ``InPostalCode``,
Bandwidth ``zip``); a carrier that can't is not asked, and with none that can
the search answers 422 naming ``postal_code`` rather than ignoring the filter."""

from __future__ import annotations

import respx
from fastapi.testclient import TestClient

from carrier_fixtures import load_json, load_text
from conftest import Acct
from didhub.api.app import create_app
from didhub.carriers.bandwidth import BandwidthCarrier
from didhub.carriers.base import SearchQuery
from didhub.carriers.multi import MultiCarrier
from didhub.carriers.twilio import TwilioCarrier
from didhub.config import Settings
from didhub.db import Database

TWILIO = "https://api.twilio.test"
SID = "AC00000000000000000000000000000000"
BANDWIDTH = "https://dashboard.bandwidth.test"


def _twilio() -> TwilioCarrier:
    return TwilioCarrier(SID, "token", TWILIO, max_attempts=1, sleep=lambda s: None)


def _bandwidth() -> BandwidthCarrier:
    return BandwidthCarrier("9900001", "u", "p", "1234", BANDWIDTH, max_attempts=1)


def test_the_sandbox_refuses_a_zip_search(client: TestClient, partner: Acct) -> None:
    r = client.post(
        "/telephony/numbers/search", json={"postal_code": "78701"}, headers=partner.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "postal_code"
    bad = client.post(
        "/telephony/numbers/search", json={"postal_code": "787"}, headers=partner.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "postal_code"


@respx.mock
def test_twilio_and_bandwidth_are_asked_by_zip() -> None:
    query = SearchQuery("US", "local", postal_code="27606")
    twilio = respx.get(f"{TWILIO}/2010-04-01/Accounts/{SID}/AvailablePhoneNumbers/US/Local.json")
    twilio.respond(json=load_json("twilio", "available_local.json"))
    list(_twilio().search(query, frozenset()))
    assert twilio.calls.last.request.url.params["InPostalCode"] == "27606"

    bandwidth = respx.get(f"{BANDWIDTH}/api/accounts/9900001/availableNumbers")
    bandwidth.respond(
        content=load_text("bandwidth", "available_numbers.xml"),
        headers={"Content-Type": "application/xml"},
    )
    list(_bandwidth().search(query, frozenset()))
    sent = bandwidth.calls.last.request.url.params
    assert sent["zip"] == "27606" and "areaCode" not in sent


@respx.mock
def test_multi_asks_only_the_carriers_that_search_by_zip(
    settings: Settings, db: Database, partner: Acct
) -> None:
    from didhub.carriers.telnyx import TelnyxCarrier

    telnyx_route = respx.get("https://api.telnyx.test/v2/available_phone_numbers")
    twilio = respx.get(f"{TWILIO}/2010-04-01/Accounts/{SID}/AvailablePhoneNumbers/US/Local.json")
    twilio.respond(json=load_json("twilio", "available_local.json"))
    telnyx = TelnyxCarrier("KEY", "https://api.telnyx.test", max_attempts=1, sleep=lambda s: None)
    client = TestClient(create_app(settings, db, MultiCarrier([telnyx, _twilio()])))
    r = client.post(
        "/telephony/numbers/search", json={"postal_code": "94105"}, headers=partner.headers
    )
    assert r.status_code == 200, r.text
    assert twilio.called and not telnyx_route.called
