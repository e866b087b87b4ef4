"""Contract tests for the Twilio adapter against recorded 2010-04-01 payloads."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from carrier_fixtures import load_json
from didhub.carriers.base import (
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    SearchQuery,
)
from didhub.carriers.twilio import TwilioCarrier

BASE = "https://api.twilio.test"
SID = "AC00000000000000000000000000000000"
TOKEN = "tokensecret0123456789"
ACCOUNT = f"{BASE}/2010-04-01/Accounts/{SID}"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def twilio(sleeps: list[float]) -> TwilioCarrier:
    return TwilioCarrier(SID, TOKEN, BASE, max_attempts=3, search_limit=20, sleep=sleeps.append)


@respx.mock
def test_search_sends_twilio_parameters(twilio: TwilioCarrier) -> None:
    route = respx.get(f"{ACCOUNT}/AvailablePhoneNumbers/US/Local.json").respond(
        json=load_json("twilio", "available_local.json")
    )
    query = SearchQuery(
        "US",
        "local",
        area_code="312",
        administrative_area="IL",
        locality="Chicago",
        pattern="312555XXXX",
    )
    found = list(twilio.search(query, frozenset({"+13125550102"})))
    request = route.calls.last.request
    assert dict(request.url.params) == {
        "PageSize": "20",
        "AreaCode": "312",
        "Contains": "312555****",
        "InRegion": "IL",
        "InLocality": "Chicago",
    }
    assert request.headers["Authorization"].startswith("Basic ")
    # excluded (held) and a number outside the pattern are dropped
    assert [n.phone_number for n in found] == ["+13125550101"]
    assert found[0].locality == "Chicago"
    assert found[0].features == ("voice", "sms")


@respx.mock
def test_toll_free_vanity_and_nxx(twilio: TwilioCarrier) -> None:
    tf = respx.get(f"{ACCOUNT}/AvailablePhoneNumbers/US/TollFree.json").respond(
        json={"available_phone_numbers": []}
    )
    list(twilio.search(SearchQuery("US", "toll-free", pattern="8XX3569377"), frozenset()))
    assert tf.calls.last.request.url.params["Contains"] == "8**3569377"
    local = respx.get(f"{ACCOUNT}/AvailablePhoneNumbers/CA/Local.json").respond(
        json={"available_phone_numbers": []}
    )
    list(twilio.search(SearchQuery("CA", "local", area_code="604", nxx="555"), frozenset()))
    assert local.calls.last.request.url.params["Contains"] == "604555****"


@respx.mock
def test_buy_is_synchronous_and_marks_the_order(twilio: TwilioCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").respond(
        201, json=load_json("twilio", "incoming_phone_number_created.json")
    )
    results = twilio.order("ord_TEST", ["+13125550101"])
    body = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert body == {"PhoneNumber": "+13125550101", "FriendlyName": "ord_TEST"}
    assert [(r.phone_number, r.status) for r in results] == [("+13125550101", "active")]


@respx.mock
def test_partial_order_keeps_twilio_message(twilio: TwilioCarrier) -> None:
    error = load_json("twilio", "error_400_not_available.json")
    created = load_json("twilio", "incoming_phone_number_created.json")
    respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").mock(
        side_effect=[
            httpx.Response(201, json=created),
            httpx.Response(201, json=created),
            httpx.Response(400, json=error),
            httpx.Response(201, json=created),
            httpx.Response(400, json=error),
        ]
    )
    numbers = [f"+1312555010{i}" for i in range(1, 6)]
    results = twilio.order("ord_TEST", numbers)
    assert [r.status for r in results] == ["active", "active", "failed", "active", "failed"]
    assert "PhoneNumber requested is not available (Twilio error 21422)" in str(results[2].reason)
    assert SID not in str(results[2].reason)


@respx.mock
def test_everything_refused_is_a_failure(
    twilio: TwilioCarrier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").respond(
        400, json=load_json("twilio", "error_400_not_available.json")
    )
    with pytest.raises(CarrierFailure, match="21422") as info:
        twilio.order("ord_TEST", ["+13125550101"])
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert TOKEN not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("didhub")]
    assert ours and not any(SID in line for line in ours)


@respx.mock
def test_timeout_mid_order_is_unknown_and_order_status_finds_the_numbers(
    twilio: TwilioCarrier,
) -> None:
    created = load_json("twilio", "incoming_phone_number_created.json")
    buy = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").mock(
        side_effect=[httpx.Response(201, json=created), httpx.ReadTimeout("lost")]
    )
    with pytest.raises(CarrierOutcomeUnknown):
        twilio.order("ord_TEST", ["+13125550101", "+13125550102", "+13125550103"])
    assert buy.call_count == 2  # not retried, and the third number never tried
    listing = respx.get(f"{ACCOUNT}/IncomingPhoneNumbers.json").mock(
        side_effect=[
            httpx.Response(200, json=load_json("twilio", "incoming_by_friendly_name_page0.json")),
            httpx.Response(200, json=load_json("twilio", "incoming_by_friendly_name_page1.json")),
        ]
    )
    results = twilio.order_status("ord_TEST")
    assert listing.calls[0].request.url.params["FriendlyName"] == "ord_TEST"
    assert listing.calls[1].request.url.params["PageToken"].startswith("PA")  # next_page_uri
    assert [(r.phone_number, r.status) for r in results] == [
        ("+13125550101", "active"),
        ("+13125550102", "active"),
    ]


@respx.mock
def test_429_with_retry_after_then_success(twilio: TwilioCarrier, sleeps: list[float]) -> None:
    route = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "1"}, json=load_json("twilio", "error_429.json")
            ),
            httpx.Response(201, json=load_json("twilio", "incoming_phone_number_created.json")),
        ]
    )
    assert twilio.order("ord_TEST", ["+13125550101"])[0].status == "active"
    assert route.call_count == 2
    assert sleeps == [1.0]


@respx.mock
def test_500_on_a_buy_is_unknown(twilio: TwilioCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers.json").respond(
        500, json={"message": "oops"}
    )
    with pytest.raises(CarrierOutcomeUnknown):
        twilio.order("ord_TEST", ["+13125550101"])
    assert route.call_count == 1


@respx.mock
def test_release_finds_the_sid_then_deletes(twilio: TwilioCarrier) -> None:
    lookup = respx.get(f"{ACCOUNT}/IncomingPhoneNumbers.json").respond(
        json=load_json("twilio", "incoming_by_phone_number.json")
    )
    delete = respx.delete(
        f"{ACCOUNT}/IncomingPhoneNumbers/PN11111111111111111111111111111111.json"
    ).respond(204)
    twilio.release("+13125550101")
    assert lookup.calls.last.request.url.params["PhoneNumber"] == "+13125550101"
    assert delete.called


def test_reserve_is_a_no_op(twilio: TwilioCarrier) -> None:
    with respx.mock:  # any request would fail: none is routed
        twilio.reserve(["+13125550101"], "quo_TEST", 10)


# -- CNAM and E911 ---------------------------------------------------------------

PN = "PN11111111111111111111111111111111"
AD = "AD11111111111111111111111111111111"
NUMBER = "+13125550101"
ADDRESS = E911AddressData(
    street="600 CONGRESS AVE",
    unit="FL 14",
    city="AUSTIN",
    state="TX",
    postal_code="78701",
    country="US",
    caller_name="ACME DENTAL",
)


def _lookup() -> respx.Route:
    return respx.get(f"{ACCOUNT}/IncomingPhoneNumbers.json").respond(
        json=load_json("twilio", "incoming_by_phone_number.json")
    )


def test_set_cnam_is_refused_with_the_reason(twilio: TwilioCarrier) -> None:
    with pytest.raises(CarrierFailure, match="Trust Hub") as info:
        twilio.set_cnam(NUMBER, "ACME DENTAL")
    assert not isinstance(info.value, CarrierOutcomeUnknown)


@respx.mock
def test_validate_creates_an_emergency_address_with_autocorrect(twilio: TwilioCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/Addresses.json").respond(
        201, json=load_json("twilio", "address_created.json")
    )
    answer = twilio.validate_e911_address(ADDRESS)
    form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert form == {
        "CustomerName": "ACME DENTAL",
        "Street": "600 CONGRESS AVE",
        "StreetSecondary": "FL 14",
        "City": "AUSTIN",
        "Region": "TX",
        "PostalCode": "78701",
        "IsoCountry": "US",
        "EmergencyEnabled": "true",
        "AutoCorrectAddress": "true",
        "FriendlyName": "didhub E911 ACME DENTAL",
    }
    assert answer.valid
    assert answer.reference == AD
    assert answer.suggestion is not None and answer.suggestion.postal_code == "78701-3217"
    assert answer.suggestion.street == "600 CONGRESS AVE"  # same street, Twilio's spelling


@respx.mock
def test_validate_not_found_is_invalid_with_twilio_words(twilio: TwilioCarrier) -> None:
    respx.post(f"{ACCOUNT}/Addresses.json").respond(
        400, json=load_json("twilio", "error_21628.json")
    )
    answer = twilio.validate_e911_address(ADDRESS)
    assert not answer.valid
    assert answer.reason is not None and "Address cannot be validated" in answer.reason


@respx.mock
def test_validate_timeout_is_unknown(twilio: TwilioCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/Addresses.json").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CarrierOutcomeUnknown):
        twilio.validate_e911_address(ADDRESS)
    assert route.call_count == 1


@respx.mock
def test_provision_reuses_a_matching_address_and_sets_it_on_the_number(
    twilio: TwilioCarrier,
) -> None:
    _lookup()
    listing = respx.get(f"{ACCOUNT}/Addresses.json").respond(
        json=load_json("twilio", "addresses_matching.json")
    )
    update = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").respond(
        json=load_json("twilio", "incoming_e911_registered.json")
    )
    twilio.provision_e911(NUMBER, ADDRESS)
    params = listing.calls.last.request.url.params
    assert params["CustomerName"] == "ACME DENTAL"
    assert params["EmergencyEnabled"] == "true"
    form = dict(httpx.QueryParams(update.calls.last.request.content.decode()))
    assert form == {"EmergencyAddressSid": AD, "EmergencyStatus": "Active"}


@respx.mock
def test_provision_creates_the_address_when_none_matches(twilio: TwilioCarrier) -> None:
    _lookup()
    respx.get(f"{ACCOUNT}/Addresses.json").respond(json=load_json("twilio", "addresses_empty.json"))
    create = respx.post(f"{ACCOUNT}/Addresses.json").respond(
        201, json=load_json("twilio", "address_created.json")
    )
    respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").respond(
        json=load_json("twilio", "incoming_e911_registered.json")
    )
    twilio.provision_e911(NUMBER, ADDRESS)
    assert create.call_count == 1


@respx.mock
def test_provision_refused_address_keeps_twilio_words(twilio: TwilioCarrier) -> None:
    _lookup()
    respx.get(f"{ACCOUNT}/Addresses.json").respond(json=load_json("twilio", "addresses_empty.json"))
    respx.post(f"{ACCOUNT}/Addresses.json").respond(
        400, json=load_json("twilio", "error_21628.json")
    )
    with pytest.raises(CarrierFailure, match="Address cannot be validated") as info:
        twilio.provision_e911(NUMBER, ADDRESS)
    assert "21628" in str(info.value)
    assert not isinstance(info.value, CarrierOutcomeUnknown)


@respx.mock
def test_provision_pending_registration_is_unknown(twilio: TwilioCarrier) -> None:
    _lookup()
    respx.get(f"{ACCOUNT}/Addresses.json").respond(
        json=load_json("twilio", "addresses_matching.json")
    )
    respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").respond(
        json=load_json("twilio", "incoming_e911_pending.json")
    )
    with pytest.raises(CarrierOutcomeUnknown, match="pending-registration"):
        twilio.provision_e911(NUMBER, ADDRESS)


@respx.mock
def test_provision_registration_failure_is_a_refusal(twilio: TwilioCarrier) -> None:
    _lookup()
    respx.get(f"{ACCOUNT}/Addresses.json").respond(
        json=load_json("twilio", "addresses_matching.json")
    )
    respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").respond(
        json=load_json("twilio", "incoming_e911_failure.json")
    )
    with pytest.raises(CarrierFailure, match="registration-failure") as info:
        twilio.provision_e911(NUMBER, ADDRESS)
    assert not isinstance(info.value, CarrierOutcomeUnknown)


@respx.mock
def test_provision_timeout_mid_write_is_unknown(twilio: TwilioCarrier) -> None:
    _lookup()
    respx.get(f"{ACCOUNT}/Addresses.json").respond(
        json=load_json("twilio", "addresses_matching.json")
    )
    update = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").mock(
        side_effect=httpx.ReadTimeout("slow")
    )
    with pytest.raises(CarrierOutcomeUnknown):
        twilio.provision_e911(NUMBER, ADDRESS)
    assert update.call_count == 1


@respx.mock
def test_remove_clears_the_emergency_address(twilio: TwilioCarrier) -> None:
    _lookup()
    update = respx.post(f"{ACCOUNT}/IncomingPhoneNumbers/{PN}.json").respond(
        json=load_json("twilio", "incoming_e911_removed.json")
    )
    twilio.remove_e911(NUMBER)
    form = dict(httpx.QueryParams(update.calls.last.request.content.decode()))
    assert form == {"EmergencyAddressSid": ""}
