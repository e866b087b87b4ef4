"""Contract tests for the Telnyx adapter against recorded v2 payloads."""

from __future__ import annotations

import json
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
from didhub.carriers.telnyx import TelnyxCarrier

BASE = "https://api.telnyx.test"
KEY = "KEYsecret0123456789"
NUMBERS = [f"+1312555010{i}" for i in range(1, 6)]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def telnyx(sleeps: list[float]) -> TelnyxCarrier:
    return TelnyxCarrier(KEY, BASE, max_attempts=3, order_wait_seconds=3, sleep=sleeps.append)


@respx.mock
def test_search_sends_the_filters_and_drops_best_effort_misses(telnyx: TelnyxCarrier) -> None:
    route = respx.get(f"{BASE}/v2/available_phone_numbers").respond(
        json=load_json("telnyx", "available_phone_numbers.json")
    )
    query = SearchQuery(
        "US",
        "local",
        area_code="312",
        administrative_area="IL",
        locality="Chicago",
        rate_center="CHICAGO",
        pattern="312555XXXX",
    )
    found = list(telnyx.search(query, frozenset({"+13125550102"})))
    request = route.calls.last.request
    assert dict(request.url.params) == {
        "filter[country_code]": "US",
        "filter[phone_number_type]": "local",
        "filter[limit]": "100",
        "filter[national_destination_code]": "312",
        "filter[phone_number][starts_with]": "555",
        "filter[administrative_area]": "IL",
        "filter[locality]": "Chicago",
        "filter[rate_center]": "CHICAGO",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    # +13125550102 is excluded (held), +13129990000 is a best-effort miss.
    assert [n.phone_number for n in found] == ["+13125550101"]
    assert found[0].rate_center == "CHICAGO"
    assert found[0].administrative_area == "IL"
    assert found[0].features == ("sms", "voice")


@respx.mock
def test_toll_free_vanity_pattern_uses_contains(telnyx: TelnyxCarrier) -> None:
    route = respx.get(f"{BASE}/v2/available_phone_numbers").respond(json={"data": []})
    list(telnyx.search(SearchQuery("US", "toll-free", pattern="XXX3569377"), frozenset()))
    params = dict(route.calls.last.request.url.params)
    assert params["filter[phone_number_type]"] == "toll_free"
    assert params["filter[phone_number][contains]"] == "3569377"
    assert "filter[national_destination_code]" not in params


@respx.mock
def test_order_pending_then_success(telnyx: TelnyxCarrier, sleeps: list[float]) -> None:
    pending = load_json("telnyx", "number_order_pending.json")
    done = load_json("telnyx", "number_order_success_one.json")
    pending["data"]["phone_numbers"] = pending["data"]["phone_numbers"][:1]
    create = respx.post(f"{BASE}/v2/number_orders").respond(json=pending)
    order_id = done["data"]["id"]
    poll = respx.get(f"{BASE}/v2/number_orders/{order_id}").mock(
        side_effect=[httpx.Response(200, json=pending), httpx.Response(200, json=done)]
    )
    results = telnyx.order("ord_TEST", NUMBERS[:1])
    assert json.loads(create.calls.last.request.content) == {
        "phone_numbers": [{"phone_number": NUMBERS[0]}],
        "customer_reference": "ord_TEST",
    }
    assert poll.call_count == 2
    assert [(r.phone_number, r.status) for r in results] == [(NUMBERS[0], "active")]
    assert sleeps == [1.0, 1.0]


@respx.mock
def test_partial_order_three_of_five(telnyx: TelnyxCarrier) -> None:
    respx.post(f"{BASE}/v2/number_orders").respond(
        json=load_json("telnyx", "number_order_pending.json")
    )
    respx.get(url__regex=rf"{BASE}/v2/number_orders/.+").respond(
        json=load_json("telnyx", "number_order_partial.json")
    )
    results = telnyx.order("ord_TEST", NUMBERS)
    assert [r.status for r in results] == ["active"] * 3 + ["failed"] * 2


@respx.mock
def test_order_still_pending_is_unknown(telnyx: TelnyxCarrier) -> None:
    pending = load_json("telnyx", "number_order_pending.json")
    respx.post(f"{BASE}/v2/number_orders").respond(json=pending)
    respx.get(url__regex=rf"{BASE}/v2/number_orders/.+").respond(json=pending)
    with pytest.raises(CarrierOutcomeUnknown, match="still pending"):
        telnyx.order("ord_TEST", NUMBERS)


@respx.mock
def test_422_keeps_telnyx_detail_and_hides_the_key(
    telnyx: TelnyxCarrier, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(f"{BASE}/v2/number_orders").respond(422, json=load_json("telnyx", "error_422.json"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CarrierFailure) as info:
        telnyx.order("ord_TEST", NUMBERS[:1])
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert "is not available for purchase" in str(info.value)
    assert "10015" in str(info.value)
    assert KEY not in str(info.value)
    assert KEY not in caplog.text


@respx.mock
def test_timeout_mid_order_is_unknown_and_not_retried(telnyx: TelnyxCarrier) -> None:
    route = respx.post(f"{BASE}/v2/number_orders").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CarrierOutcomeUnknown):
        telnyx.order("ord_TEST", NUMBERS[:1])
    assert route.call_count == 1


@respx.mock
def test_429_with_retry_after_then_success(telnyx: TelnyxCarrier, sleeps: list[float]) -> None:
    route = respx.get(f"{BASE}/v2/available_phone_numbers").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"errors": []}),
            httpx.Response(200, json=load_json("telnyx", "available_phone_numbers.json")),
        ]
    )
    found = list(telnyx.search(SearchQuery("US", "local", area_code="312"), frozenset()))
    assert route.call_count == 2
    assert sleeps == [2.0]
    assert len(found) == 3


@respx.mock
def test_search_down_is_retried_then_failure(telnyx: TelnyxCarrier) -> None:
    route = respx.get(f"{BASE}/v2/available_phone_numbers").mock(
        side_effect=httpx.ConnectError("refused")
    )
    with pytest.raises(CarrierFailure):
        list(telnyx.search(SearchQuery("US", "local"), frozenset()))
    assert route.call_count == 3


@respx.mock
def test_order_status_by_customer_reference(telnyx: TelnyxCarrier) -> None:
    route = respx.get(f"{BASE}/v2/number_orders").respond(
        json=load_json("telnyx", "number_orders_by_reference.json")
    )
    results = telnyx.order_status("ord_TEST")
    assert route.calls.last.request.url.params["filter[customer_reference]"] == "ord_TEST"
    assert [(r.phone_number, r.status) for r in results] == [
        (NUMBERS[0], "active"),
        (NUMBERS[1], "unknown"),
    ]


@respx.mock
def test_release_looks_the_number_up_then_deletes(telnyx: TelnyxCarrier) -> None:
    lookup = respx.get(f"{BASE}/v2/phone_numbers").respond(
        json=load_json("telnyx", "phone_numbers_lookup.json")
    )
    delete = respx.delete(f"{BASE}/v2/phone_numbers/1293384261075731499").respond(json={})
    telnyx.release(NUMBERS[0])
    assert lookup.calls.last.request.url.params["filter[phone_number]"] == NUMBERS[0]
    assert delete.called


@respx.mock
def test_release_of_a_number_already_gone_is_done(telnyx: TelnyxCarrier) -> None:
    respx.get(f"{BASE}/v2/phone_numbers").respond(
        json=load_json("telnyx", "phone_numbers_empty.json")
    )
    telnyx.release(NUMBERS[0])  # no DELETE route: respx would fail on one


@respx.mock
def test_reserve_sends_a_number_reservation(telnyx: TelnyxCarrier) -> None:
    route = respx.post(f"{BASE}/v2/number_reservations").respond(
        json=load_json("telnyx", "number_reservation.json")
    )
    telnyx.reserve(NUMBERS[:1], "quo_TEST", 10)
    assert json.loads(route.calls.last.request.content) == {
        "phone_numbers": [{"phone_number": NUMBERS[0]}],
        "customer_reference": "quo_TEST",
    }


# -- CNAM and E911 ---------------------------------------------------------------

NUMBER_ID = "1293384261075731499"
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
    return respx.get(f"{BASE}/v2/phone_numbers").respond(
        json=load_json("telnyx", "phone_numbers_lookup.json")
    )


@respx.mock
def test_set_cnam_patches_the_voice_settings(telnyx: TelnyxCarrier) -> None:
    _lookup()
    route = respx.patch(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/voice").respond(
        json=load_json("telnyx", "voice_settings_active.json")
    )
    telnyx.set_cnam(NUMBERS[0], "ACME DENTAL")
    assert json.loads(route.calls.last.request.content) == {
        "cnam_listing": {"cnam_listing_enabled": True, "cnam_listing_details": "ACME DENTAL"}
    }
    telnyx.set_cnam(NUMBERS[0], None)
    assert json.loads(route.calls.last.request.content) == {
        "cnam_listing": {"cnam_listing_enabled": False}
    }


@respx.mock
def test_set_cnam_refused_keeps_telnyx_words(telnyx: TelnyxCarrier) -> None:
    _lookup()
    respx.patch(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/voice").respond(
        422, json=load_json("telnyx", "error_cnam_422.json")
    )
    with pytest.raises(CarrierFailure) as info:
        telnyx.set_cnam(NUMBERS[0], "ACME DENTAL")
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert "must be alphanumeric characters or spaces" in str(info.value)


@respx.mock
def test_set_cnam_of_a_number_not_on_the_account_is_refused(telnyx: TelnyxCarrier) -> None:
    respx.get(f"{BASE}/v2/phone_numbers").respond(
        json=load_json("telnyx", "phone_numbers_empty.json")
    )
    with pytest.raises(CarrierFailure, match="not on the Telnyx account"):
        telnyx.set_cnam(NUMBERS[0], "ACME DENTAL")


@respx.mock
def test_set_cnam_timeout_is_unknown_and_sent_once(telnyx: TelnyxCarrier) -> None:
    _lookup()
    route = respx.patch(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/voice").mock(
        side_effect=httpx.ReadTimeout("slow")
    )
    with pytest.raises(CarrierOutcomeUnknown):
        telnyx.set_cnam(NUMBERS[0], "ACME DENTAL")
    assert route.call_count == 1


@respx.mock
def test_validate_sends_the_address_and_returns_the_suggestion(telnyx: TelnyxCarrier) -> None:
    route = respx.post(f"{BASE}/v2/addresses/actions/validate").respond(
        json=load_json("telnyx", "address_validate_valid.json")
    )
    answer = telnyx.validate_e911_address(ADDRESS)
    assert json.loads(route.calls.last.request.content) == {
        "street_address": "600 CONGRESS AVE",
        "extended_address": "FL 14",
        "locality": "AUSTIN",
        "administrative_area": "TX",
        "postal_code": "78701",
        "country_code": "US",
    }
    assert answer.valid
    # Telnyx spells it "600 Congress Avenue", "14th Floor": the same address in
    # didhub's form; only the ZIP+4 is a real correction.
    assert answer.suggestion == E911AddressData(
        "600 CONGRESS AVE", "FL 14", "AUSTIN", "TX", "78701-3217", "US", "ACME DENTAL"
    )


@respx.mock
def test_validate_the_same_address_has_no_suggestion(telnyx: TelnyxCarrier) -> None:
    body = load_json("telnyx", "address_validate_valid.json")
    body["data"]["suggested"]["postal_code"] = "78701"
    respx.post(f"{BASE}/v2/addresses/actions/validate").respond(json=body)
    answer = telnyx.validate_e911_address(ADDRESS)
    assert answer.valid and answer.suggestion is None


@respx.mock
def test_validate_invalid_keeps_telnyx_reason(telnyx: TelnyxCarrier) -> None:
    respx.post(f"{BASE}/v2/addresses/actions/validate").respond(
        json=load_json("telnyx", "address_validate_invalid.json")
    )
    answer = telnyx.validate_e911_address(ADDRESS)
    assert not answer.valid
    assert answer.reason is not None and "The street address provided is invalid." in answer.reason


@respx.mock
def test_provision_creates_the_address_then_enables_emergency(telnyx: TelnyxCarrier) -> None:
    _lookup()
    create = respx.post(f"{BASE}/v2/addresses").respond(
        json=load_json("telnyx", "address_created.json")
    )
    enable = respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").respond(
        json=load_json("telnyx", "voice_settings_active.json")
    )
    telnyx.provision_e911(NUMBERS[0], ADDRESS)
    body = json.loads(create.calls.last.request.content)
    assert body["street_address"] == "600 CONGRESS AVE"
    assert body["extended_address"] == "FL 14"
    assert body["business_name"] == "ACME DENTAL"
    assert body["country_code"] == "US"
    assert json.loads(enable.calls.last.request.content) == {
        "emergency_enabled": True,
        "emergency_address_id": "1315261609962112019",
    }


@respx.mock
def test_provision_polls_while_provisioning(telnyx: TelnyxCarrier, sleeps: list[float]) -> None:
    _lookup()
    respx.post(f"{BASE}/v2/addresses").respond(json=load_json("telnyx", "address_created.json"))
    respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").respond(
        json=load_json("telnyx", "voice_settings_provisioning.json")
    )
    poll = respx.get(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/voice").mock(
        side_effect=[
            httpx.Response(200, json=load_json("telnyx", "voice_settings_provisioning.json")),
            httpx.Response(200, json=load_json("telnyx", "voice_settings_active.json")),
        ]
    )
    telnyx.provision_e911(NUMBERS[0], ADDRESS)
    assert poll.call_count == 2
    assert sleeps == [1.0, 1.0]


@respx.mock
def test_provision_still_provisioning_is_unknown(telnyx: TelnyxCarrier) -> None:
    _lookup()
    respx.post(f"{BASE}/v2/addresses").respond(json=load_json("telnyx", "address_created.json"))
    respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").respond(
        json=load_json("telnyx", "voice_settings_provisioning.json")
    )
    respx.get(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/voice").respond(
        json=load_json("telnyx", "voice_settings_provisioning.json")
    )
    with pytest.raises(CarrierOutcomeUnknown, match="provisioning"):
        telnyx.provision_e911(NUMBERS[0], ADDRESS)


@respx.mock
def test_provision_failed_is_a_refusal(telnyx: TelnyxCarrier) -> None:
    _lookup()
    respx.post(f"{BASE}/v2/addresses").respond(json=load_json("telnyx", "address_created.json"))
    respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").respond(
        json=load_json("telnyx", "voice_settings_provisioning_failed.json")
    )
    with pytest.raises(CarrierFailure, match="provisioning-failed") as info:
        telnyx.provision_e911(NUMBERS[0], ADDRESS)
    assert not isinstance(info.value, CarrierOutcomeUnknown)


@respx.mock
def test_provision_address_refused_keeps_telnyx_words(telnyx: TelnyxCarrier) -> None:
    _lookup()
    respx.post(f"{BASE}/v2/addresses").respond(
        422, json=load_json("telnyx", "error_address_422.json")
    )
    with pytest.raises(CarrierFailure, match="could not be validated for emergency services"):
        telnyx.provision_e911(NUMBERS[0], ADDRESS)


@respx.mock
def test_provision_timeout_mid_write_is_unknown(telnyx: TelnyxCarrier) -> None:
    _lookup()
    respx.post(f"{BASE}/v2/addresses").respond(json=load_json("telnyx", "address_created.json"))
    enable = respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").mock(
        side_effect=httpx.ReadTimeout("slow")
    )
    with pytest.raises(CarrierOutcomeUnknown):
        telnyx.provision_e911(NUMBERS[0], ADDRESS)
    assert enable.call_count == 1


@respx.mock
def test_remove_disables_emergency(telnyx: TelnyxCarrier) -> None:
    _lookup()
    route = respx.post(f"{BASE}/v2/phone_numbers/{NUMBER_ID}/actions/enable_emergency").respond(
        json=load_json("telnyx", "voice_settings_emergency_disabled.json")
    )
    telnyx.remove_e911(NUMBERS[0])
    assert json.loads(route.calls.last.request.content) == {"emergency_enabled": False}


@respx.mock
def test_remove_of_a_number_gone_is_a_no_op(telnyx: TelnyxCarrier) -> None:
    respx.get(f"{BASE}/v2/phone_numbers").respond(
        json=load_json("telnyx", "phone_numbers_empty.json")
    )
    telnyx.remove_e911(NUMBERS[0])  # no POST route: respx would fail on one
