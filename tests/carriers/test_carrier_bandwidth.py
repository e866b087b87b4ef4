"""Contract tests for the Bandwidth adapter against recorded Dashboard API XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
import respx

from carrier_fixtures import load_text
from didhub.carriers.bandwidth import BandwidthCarrier
from didhub.carriers.base import (
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    SearchQuery,
)

BASE = "https://dashboard.bandwidth.test"
ACCOUNT_ID = "9900001"
ACCOUNT = f"{BASE}/api/accounts/{ACCOUNT_ID}"
ORDER = "f30a31a1-1de4-4939-b094-4521bbe5c8df"
NUMBERS = [f"+1919439100{i}" for i in range(1, 6)]
XML = {"Content-Type": "application/xml"}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def bandwidth(sleeps: list[float]) -> BandwidthCarrier:
    return BandwidthCarrier(
        ACCOUNT_ID,
        "user",
        "pass-secret",
        "1234",
        BASE,
        max_attempts=3,
        order_wait_seconds=3,
        search_limit=50,
        sleep=sleeps.append,
    )


def xml(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=load_text("bandwidth", name), headers=XML)


@respx.mock
def test_search_by_npa_nxx_with_tn_detail(bandwidth: BandwidthCarrier) -> None:
    route = respx.get(f"{ACCOUNT}/availableNumbers").mock(return_value=xml("available_numbers.xml"))
    found = list(
        bandwidth.search(SearchQuery("US", "local", area_code="919", nxx="439"), frozenset())
    )
    assert dict(route.calls.last.request.url.params) == {
        "quantity": "50",
        "enableTNDetail": "true",
        "npaNxx": "919439",
    }
    # 9194601003 is outside the NXX asked for
    assert [n.phone_number for n in found] == ["+19194391001", "+19194391002"]
    assert found[0].locality == "Raleigh" and found[0].rate_center == "RALEIGH"


@respx.mock
def test_search_kinds(bandwidth: BandwidthCarrier) -> None:
    route = respx.get(f"{ACCOUNT}/availableNumbers").mock(
        return_value=httpx.Response(
            200, text="<SearchResult><ResultCount>0</ResultCount></SearchResult>"
        )
    )
    list(
        bandwidth.search(
            SearchQuery("US", "local", administrative_area="NC", rate_center="RALEIGH"), frozenset()
        )
    )
    assert route.calls.last.request.url.params["rateCenter"] == "RALEIGH"
    assert route.calls.last.request.url.params["state"] == "NC"
    list(bandwidth.search(SearchQuery("US", "toll-free", pattern="87XXXXXXXX"), frozenset()))
    assert route.calls.last.request.url.params["tollFreeWildCardPattern"] == "87*"
    # A vanity pattern (877-FLOWERS compiles to digits) is asked as tollFreeVanity.
    list(bandwidth.search(SearchQuery("US", "toll-free", pattern="8773569377"), frozenset()))
    sent = route.calls.last.request.url.params
    assert sent["tollFreeVanity"] == "3569377" and "tollFreeWildCardPattern" not in sent
    # Bandwidth sells no GB numbers here: nothing asked
    calls = route.call_count
    assert list(bandwidth.search(SearchQuery("GB", "local"), frozenset())) == []
    assert route.call_count == calls


@respx.mock
def test_order_received_then_partial_three_of_five(
    bandwidth: BandwidthCarrier, sleeps: list[float]
) -> None:
    create = respx.post(f"{ACCOUNT}/orders").mock(return_value=xml("order_received.xml", 201))
    poll = respx.get(f"{ACCOUNT}/orders/{ORDER}").mock(
        side_effect=[xml("order_received.xml"), xml("order_partial.xml")]
    )
    results = bandwidth.order("ord_TEST", NUMBERS)
    sent = ET.fromstring(create.calls.last.request.content)
    assert sent.findtext("CustomerOrderId") == "ord_TEST"
    assert sent.findtext("SiteId") == "1234"
    assert sent.findtext("PartialAllowed") == "true"
    assert [t.text for t in sent.iter("TelephoneNumber")] == [n[2:] for n in NUMBERS]
    assert poll.call_count == 2 and sleeps == [1.0, 1.0]
    assert [r.status for r in results] == ["active"] * 3 + ["failed"] * 2
    assert results[3].reason == "The telephone number is unavailable for ordering"


@respx.mock
def test_order_still_received_is_unknown(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/orders").mock(return_value=xml("order_received.xml", 201))
    respx.get(f"{ACCOUNT}/orders/{ORDER}").mock(return_value=xml("order_received.xml"))
    with pytest.raises(CarrierOutcomeUnknown, match="RECEIVED"):
        bandwidth.order("ord_TEST", NUMBERS)


@respx.mock
def test_error_keeps_the_description(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/orders").mock(return_value=xml("error_order.xml", 400))
    with pytest.raises(CarrierFailure, match="Site 1234 does not exist on account") as info:
        bandwidth.order("ord_TEST", NUMBERS)
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert ACCOUNT_ID not in str(info.value) and "pass-secret" not in str(info.value)


@respx.mock
def test_timeout_mid_order_is_unknown(bandwidth: BandwidthCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/orders").mock(side_effect=httpx.ReadTimeout("lost"))
    with pytest.raises(CarrierOutcomeUnknown):
        bandwidth.order("ord_TEST", NUMBERS)
    assert route.call_count == 1


@respx.mock
def test_503_on_search_retried_then_success(
    bandwidth: BandwidthCarrier, sleeps: list[float]
) -> None:
    respx.get(f"{ACCOUNT}/availableNumbers").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3"}),
            xml("available_numbers.xml"),
        ]
    )
    assert (
        len(list(bandwidth.search(SearchQuery("US", "local", area_code="919"), frozenset()))) == 3
    )
    assert sleeps == [3.0]


@respx.mock
def test_order_status_by_customer_order_id(bandwidth: BandwidthCarrier) -> None:
    listing = respx.get(f"{ACCOUNT}/orders").mock(
        return_value=xml("orders_by_customer_order_id.xml")
    )
    respx.get(f"{ACCOUNT}/orders/{ORDER}").mock(return_value=xml("order_partial.xml"))
    results = bandwidth.order_status("ord_TEST")
    assert listing.calls.last.request.url.params["customerOrderId"] == "ord_TEST"
    assert sorted((r.phone_number, r.status) for r in results) == sorted(
        [(n, "active") for n in NUMBERS[:3]] + [(n, "failed") for n in NUMBERS[3:]]
    )


@respx.mock
def test_release_posts_a_disconnect(bandwidth: BandwidthCarrier) -> None:
    respx.get(f"{ACCOUNT}/inserviceNumbers/9194391001").respond(200)
    route = respx.post(f"{ACCOUNT}/disconnects").mock(
        return_value=xml("disconnect_received.xml", 201)
    )
    bandwidth.release(NUMBERS[0])
    sent = ET.fromstring(route.calls.last.request.content)
    assert [t.text for t in sent.iter("TelephoneNumber")] == ["9194391001"]


@respx.mock
def test_release_of_a_number_not_in_service_is_done(bandwidth: BandwidthCarrier) -> None:
    respx.get(f"{ACCOUNT}/inserviceNumbers/9194391001").respond(404)
    bandwidth.release(NUMBERS[0])


# -- CNAM (LIDB) and E911 ----------------------------------------------------------

E911_ORDER = "1d863522-c9bf-430c-8e79-cc63cad04a1d"
LIDB_ORDER = "255bda29-fc57-44e8-a6c2-59b45388c6d0"
ADDRESS = E911AddressData(
    street="901 E MAIN CAMPUS DR",
    unit="STE 200",
    city="RALEIGH",
    state="NC",
    postal_code="27606-5244",
    country="US",
    caller_name="ACME DENTAL",
)


def _children(element: ET.Element | None) -> dict[str, str]:
    assert element is not None
    return {child.tag: (child.text or "") for child in element}


@respx.mock
def test_set_cnam_sends_a_lidb_order_and_waits_for_it(
    bandwidth: BandwidthCarrier, sleeps: list[float]
) -> None:
    create = respx.post(f"{ACCOUNT}/lidbs").mock(return_value=xml("lidb_order_received.xml", 201))
    poll = respx.get(f"{ACCOUNT}/lidbs/{LIDB_ORDER}").mock(
        return_value=xml("lidb_order_complete.xml")
    )
    bandwidth.set_cnam(NUMBERS[0], "ACME DENTAL")
    root = ET.fromstring(create.calls.last.request.content)
    assert root.tag == "LidbOrder"
    group = root.find("LidbTnGroups/LidbTnGroup")
    assert group is not None
    assert [n.text for n in group.iter("TelephoneNumber")] == ["9194391001"]
    assert group.findtext("SubscriberInformation") == "ACME DENTAL"
    assert group.findtext("UseType") == "BUSINESS"
    assert group.findtext("Visibility") == "PUBLIC"
    assert poll.call_count == 1
    assert sleeps == [1.0]


@respx.mock
def test_set_cnam_failed_order_keeps_bandwidth_words(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/lidbs").mock(return_value=xml("lidb_order_received.xml", 201))
    respx.get(f"{ACCOUNT}/lidbs/{LIDB_ORDER}").mock(return_value=xml("lidb_order_failed.xml"))
    with pytest.raises(CarrierFailure, match="Number does not belong to this account") as info:
        bandwidth.set_cnam(NUMBERS[0], "ACME DENTAL")
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert "11014" in str(info.value)


@respx.mock
def test_set_cnam_still_received_is_unknown(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/lidbs").mock(return_value=xml("lidb_order_received.xml", 201))
    respx.get(f"{ACCOUNT}/lidbs/{LIDB_ORDER}").mock(return_value=xml("lidb_order_received.xml"))
    with pytest.raises(CarrierOutcomeUnknown, match="RECEIVED"):
        bandwidth.set_cnam(NUMBERS[0], "ACME DENTAL")


@respx.mock
def test_set_cnam_timeout_is_unknown_and_sent_once(bandwidth: BandwidthCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/lidbs").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CarrierOutcomeUnknown):
        bandwidth.set_cnam(NUMBERS[0], "ACME DENTAL")
    assert route.call_count == 1


def test_removing_a_lidb_name_is_refused_with_the_reason(bandwidth: BandwidthCarrier) -> None:
    with pytest.raises(CarrierFailure, match="replaced but not removed"):
        bandwidth.set_cnam(NUMBERS[0], None)


def test_validate_accepts_the_normalized_form(bandwidth: BandwidthCarrier) -> None:
    answer = bandwidth.validate_e911_address(ADDRESS)
    assert answer.valid and answer.suggestion is None


@respx.mock
def test_provision_sends_an_e911_order_with_the_address_split(
    bandwidth: BandwidthCarrier,
) -> None:
    create = respx.post(f"{ACCOUNT}/e911s").mock(return_value=xml("e911_order_received.xml", 201))
    respx.get(f"{ACCOUNT}/e911s/{E911_ORDER}").mock(return_value=xml("e911_order_complete.xml"))
    bandwidth.provision_e911(NUMBERS[0], ADDRESS)
    root = ET.fromstring(create.calls.last.request.content)
    assert root.tag == "E911Order"
    assert [n.text for n in root.iter("TelephoneNumber")] == ["9194391001"]
    assert root.findtext("CallerName") == "ACME DENTAL"
    assert _children(root.find("Address")) == {
        "HouseNumber": "901",
        "PreDirectional": "E",
        "StreetName": "MAIN CAMPUS",
        "StreetSuffix": "DR",
        "AddressLine2": "STE 200",
        "City": "RALEIGH",
        "StateCode": "NC",
        "Zip": "27606",
        "PlusFour": "5244",
        "Country": "United States",
    }
    assert root.find("DeleteTNSpecificE911Address") is None


@respx.mock
def test_provision_failed_order_keeps_bandwidth_words(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/e911s").mock(return_value=xml("e911_order_received.xml", 201))
    respx.get(f"{ACCOUNT}/e911s/{E911_ORDER}").mock(return_value=xml("e911_order_failed.xml"))
    with pytest.raises(CarrierFailure, match="Master Street Address Guide") as info:
        bandwidth.provision_e911(NUMBERS[0], ADDRESS)
    assert not isinstance(info.value, CarrierOutcomeUnknown)


@respx.mock
def test_provision_400_keeps_bandwidth_words(bandwidth: BandwidthCarrier) -> None:
    respx.post(f"{ACCOUNT}/e911s").mock(return_value=xml("e911_order_error_400.xml", 400))
    with pytest.raises(CarrierFailure, match="provisioned to another account") as info:
        bandwidth.provision_e911(NUMBERS[0], ADDRESS)
    assert not isinstance(info.value, CarrierOutcomeUnknown)
    assert ACCOUNT_ID not in str(info.value)


@respx.mock
def test_provision_timeout_mid_write_is_unknown(bandwidth: BandwidthCarrier) -> None:
    route = respx.post(f"{ACCOUNT}/e911s").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CarrierOutcomeUnknown):
        bandwidth.provision_e911(NUMBERS[0], ADDRESS)
    assert route.call_count == 1


@respx.mock
def test_remove_sends_a_delete_e911_order(bandwidth: BandwidthCarrier) -> None:
    create = respx.post(f"{ACCOUNT}/e911s").mock(return_value=xml("e911_order_received.xml", 201))
    respx.get(f"{ACCOUNT}/e911s/{E911_ORDER}").mock(return_value=xml("e911_order_complete.xml"))
    bandwidth.remove_e911(NUMBERS[0])
    root = ET.fromstring(create.calls.last.request.content)
    assert [n.text for n in root.iter("TelephoneNumber")] == ["9194391001"]
    assert root.findtext("DeleteTNSpecificE911Address") == "true"
    assert root.find("Address") is None and root.find("CallerName") is None
