"""Each carrier's list of the numbers we hold (what reconcile compares our
inventory with), against payloads written from the public API references,
following their pagination."""

from __future__ import annotations

import httpx
import pytest
import respx

from carrier_fixtures import load_text
from didhub.carriers.bandwidth import BandwidthCarrier
from didhub.carriers.base import CarrierFailure
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.carriers.twilio import TwilioCarrier


def _telnyx_page(numbers: list[str], page: int, total_pages: int) -> dict[str, object]:
    return {
        "data": [
            {"id": f"14{i}", "record_type": "phone_number", "phone_number": n, "status": "active"}
            for i, n in enumerate(numbers)
        ],
        "meta": {"total_pages": total_pages, "total_results": 3, "page_number": page},
    }


@respx.mock
def test_telnyx_lists_every_page() -> None:
    base = "https://api.telnyx.test"
    route = respx.get(f"{base}/v2/phone_numbers")
    route.side_effect = [
        httpx.Response(200, json=_telnyx_page(["+13125550101", "+13125550102"], 1, 2)),
        httpx.Response(200, json=_telnyx_page(["+13125550103"], 2, 2)),
    ]
    telnyx = TelnyxCarrier("KEYsecret", base, max_attempts=1, sleep=lambda s: None)
    assert list(telnyx.owned_numbers()) == ["+13125550101", "+13125550102", "+13125550103"]
    assert [c.request.url.params["page[number]"] for c in route.calls] == ["1", "2"]


@respx.mock
def test_twilio_follows_next_page_uri() -> None:
    base = "https://api.twilio.test"
    sid = "AC00000000000000000000000000000000"
    path = f"/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"
    second = f"{path}?PageSize=100&Page=1&PageToken=PAabc"
    respx.get(f"{base}{path}", params={"Page": "1"}).respond(
        json={"incoming_phone_numbers": [{"sid": "PN3", "phone_number": "+14155550103"}],
              "next_page_uri": None}
    )  # fmt: skip
    respx.get(f"{base}{path}").respond(
        json={
            "incoming_phone_numbers": [
                {"sid": "PN1", "phone_number": "+14155550101"},
                {"sid": "PN2", "phone_number": "+14155550102"},
            ],
            "next_page_uri": second,
        }
    )
    twilio = TwilioCarrier(sid, "token", base, max_attempts=1, sleep=lambda s: None)
    assert list(twilio.owned_numbers()) == ["+14155550101", "+14155550102", "+14155550103"]


@respx.mock
def test_bandwidth_follows_the_next_link() -> None:
    base = "https://dashboard.bandwidth.test"
    url = f"{base}/api/accounts/9900001/inserviceNumbers"
    respx.get(url, params={"page": "9194391003"}).respond(
        content=load_text("bandwidth", "inservice_numbers_page2.xml"),
        headers={"Content-Type": "application/xml"},
    )
    respx.get(url, params={"page": "1"}).respond(
        content=load_text("bandwidth", "inservice_numbers_page1.xml"),
        headers={"Content-Type": "application/xml"},
    )
    bandwidth = BandwidthCarrier(
        "9900001", "user", "pass", "1234", base, max_attempts=1, sleep=lambda s: None
    )
    assert list(bandwidth.owned_numbers()) == ["+19194391001", "+19194391002", "+19194391003"]


@respx.mock
def test_a_carrier_that_cannot_list_says_so() -> None:
    base = "https://api.telnyx.test"
    respx.get(f"{base}/v2/phone_numbers").respond(
        401, json={"errors": [{"code": "10009", "title": "Authentication failed"}]}
    )
    telnyx = TelnyxCarrier("KEYsecret", base, max_attempts=1, sleep=lambda s: None)
    with pytest.raises(CarrierFailure, match="Authentication failed"):
        list(telnyx.owned_numbers())
