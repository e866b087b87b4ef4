"""The multi-carrier: concurrent search with a deadline, merge and de-dup,
partial answers (meta.partial), and orders/releases routed to the right carrier."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from carrier_fixtures import load_json
from conftest import Acct
from didhub.api.app import create_app
from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    E911Validation,
    NumberOrderResult,
    SearchQuery,
    WithoutCnamAndE911,
)
from didhub.carriers.multi import CarrierScope, MultiCarrier
from didhub.carriers.sandbox import SandboxCarrier
from didhub.carriers.telnyx import TelnyxCarrier
from didhub.carriers.twilio import TwilioCarrier
from didhub.config import Settings
from didhub.db import Database

TELNYX = "https://api.telnyx.test"
TWILIO = "https://api.twilio.test"
SID = "AC00000000000000000000000000000000"


def _number(e164: str) -> AvailableNumber:
    return AvailableNumber(e164, "US", "local", "Chicago", "IL", "CHICAGO")


class FakeCarrier:
    """A scripted carrier: offers ``numbers``, holds what it sold."""

    def __init__(self, name: str, numbers: Sequence[str] = (), delay: float = 0.0) -> None:
        self.name = name
        self.numbers = list(numbers)
        self.delay = delay
        self.down = False
        self.unknown = False
        self.orders: list[tuple[str, list[str]]] = []
        self.released: list[str] = []
        self.sold: set[str] = set()
        self.calls: list[tuple[str, str, str | None]] = []

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            raise CarrierFailure(f"{self.name}: 503 Service Unavailable")
        return iter([_number(n) for n in self.numbers if n not in exclude])

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        return _number(phone_number) if phone_number in self.numbers else None

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        return None

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        self.orders.append((order_id, list(phone_numbers)))
        if self.unknown:
            raise CarrierOutcomeUnknown(f"{self.name}: timeout")
        self.sold.update(phone_numbers)
        return [NumberOrderResult(n, "active") for n in phone_numbers]

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        if self.down:
            raise CarrierFailure(f"{self.name}: down")
        return [
            NumberOrderResult(n, "active") for o, ns in self.orders if o == order_id for n in ns
        ]

    def holds(self, phone_number: str) -> bool:
        return phone_number in self.sold

    def release(self, phone_number: str) -> None:
        self.released.append(phone_number)
        self.sold.discard(phone_number)

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        self.calls.append(("set_cnam", phone_number, name))

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        self.calls.append(("validate", address.street, None))
        if self.down:
            raise CarrierFailure(f"{self.name}: down")
        return E911Validation(valid=True, reference=f"{self.name}-ref")

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        self.calls.append(("provision", phone_number, address.street))

    def remove_e911(self, phone_number: str) -> None:
        self.calls.append(("remove", phone_number, None))


class NoE911Carrier(WithoutCnamAndE911, FakeCarrier):
    """A carrier adapter that refuses CNAM and E911 as a whole."""


@respx.mock
def test_search_merges_real_adapters_and_dedupes_by_e164() -> None:
    respx.get(f"{TELNYX}/v2/available_phone_numbers").respond(
        json=load_json("telnyx", "available_phone_numbers.json")
    )
    respx.get(f"{TWILIO}/2010-04-01/Accounts/{SID}/AvailablePhoneNumbers/US/Local.json").respond(
        json=load_json("twilio", "available_local.json")
    )
    telnyx = TelnyxCarrier("key", TELNYX, sleep=lambda _: None)
    twilio = TwilioCarrier(SID, "token", TWILIO, sleep=lambda _: None)
    multi = MultiCarrier([telnyx, twilio])
    results = multi.search(SearchQuery("US", "local", area_code="312"), frozenset())
    numbers = [n.phone_number for n in results]
    assert numbers == sorted(set(numbers))
    assert numbers == ["+13124440000", "+13125550101", "+13125550102", "+13129990000"]
    assert results.failed == {}
    # the first carrier in preference order wins a number both offer
    assert multi.carrier_of("+13125550101") == "telnyx"
    assert multi.carrier_of("+13124440000") == "twilio"


@respx.mock
def test_a_carrier_down_still_answers_with_the_others() -> None:
    respx.get(f"{TELNYX}/v2/available_phone_numbers").respond(
        json=load_json("telnyx", "available_phone_numbers.json")
    )
    respx.get(url__startswith=f"{TWILIO}/").mock(side_effect=httpx.ConnectError("refused"))
    telnyx = TelnyxCarrier("key", TELNYX, sleep=lambda _: None)
    twilio = TwilioCarrier(SID, "token", TWILIO, max_attempts=2, sleep=lambda _: None)
    results = MultiCarrier([telnyx, twilio]).search(SearchQuery("US", "local"), frozenset())
    assert len(list(results)) == 3
    assert list(results.failed) == ["twilio"]
    assert "no answer after 2 attempts" in results.failed["twilio"]


def test_a_slow_carrier_is_left_out_at_the_deadline() -> None:
    fast = FakeCarrier("fast", ["+13125550101"])
    slow = FakeCarrier("slow", ["+13125550199"], delay=2.0)
    started = time.monotonic()
    results = MultiCarrier([fast, slow], deadline=0.2).search(SearchQuery(), frozenset())
    assert time.monotonic() - started < 1.5
    assert [n.phone_number for n in results] == ["+13125550101"]
    assert results.failed == {"slow": "no answer within 0.2s"}


def test_every_carrier_down_is_a_failure_not_an_empty_page() -> None:
    a, b = FakeCarrier("a"), FakeCarrier("b")
    a.down = b.down = True
    with pytest.raises(CarrierFailure, match="no carrier answered"):
        MultiCarrier([a, b]).search(SearchQuery(), frozenset())


def test_carriers_are_asked_only_where_enabled() -> None:
    us_only = FakeCarrier("us", ["+13125550101"])
    everywhere = FakeCarrier("all", ["+442079460000"])
    multi = MultiCarrier(
        [us_only, everywhere], {"us": CarrierScope(frozenset({"US"}), frozenset({"local"}))}
    )
    assert [c.name for c in multi.enabled_for(SearchQuery("GB", "local"))] == ["all"]
    assert [c.name for c in multi.enabled_for(SearchQuery("US", "toll-free"))] == ["all"]
    assert [c.name for c in multi.enabled_for(SearchQuery("US", "local"))] == ["us", "all"]


def test_orders_and_releases_go_to_the_carrier_that_offered_the_number() -> None:
    a = FakeCarrier("a", ["+13125550101", "+13125550102"])
    b = FakeCarrier("b", ["+13125550103"])
    multi = MultiCarrier([a, b])
    list(multi.search(SearchQuery(), frozenset()))
    results = multi.order("ord_1", ["+13125550103", "+13125550101"])
    assert [r.status for r in results] == ["active", "active"]
    assert a.orders == [("ord_1", ["+13125550101"])]
    assert b.orders == [("ord_1", ["+13125550103"])]
    assert sorted(r.phone_number for r in multi.order_status("ord_1")) == [
        "+13125550101",
        "+13125550103",
    ]
    # a fresh process knows nothing: release asks who holds the number
    MultiCarrier([a, b]).release("+13125550103")
    assert b.released == ["+13125550103"] and a.released == []


def test_an_unknown_outcome_at_one_carrier_makes_the_order_unknown() -> None:
    a = FakeCarrier("a", ["+13125550101"])
    b = FakeCarrier("b", ["+13125550103"])
    b.unknown = True
    multi = MultiCarrier([a, b])
    with pytest.raises(CarrierOutcomeUnknown):
        multi.order("ord_2", ["+13125550101", "+13125550103"])
    b.down = True  # reconcile can't ask b: still unknown, never "failed"
    with pytest.raises(CarrierOutcomeUnknown):
        multi.order_status("ord_2")


def test_search_api_says_partial(settings: Settings, db: Database, partner: Acct) -> None:
    broken = FakeCarrier("broken")
    broken.down = True
    multi = MultiCarrier([SandboxCarrier(db, seed="test"), broken])
    client = TestClient(create_app(settings, db, multi))
    response = client.post(
        "/telephony/numbers/search", json={"area_code": "501"}, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    meta = response.json()["meta"]
    assert meta["partial"] is True
    assert meta["failed_carriers"] == ["broken"]
    assert meta["carrier"] == "multi"
    assert response.json()["data"]


def test_search_api_with_every_carrier_down_is_502(
    settings: Settings, db: Database, partner: Acct
) -> None:
    broken = FakeCarrier("broken")
    broken.down = True
    client = TestClient(create_app(settings, db, MultiCarrier([broken])))
    response = client.post("/telephony/numbers/search", json={}, headers=partner.headers)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "carrier_error"


def test_purchase_through_multi_routes_to_the_offering_carrier(
    settings: Settings, db: Database, partner: Acct
) -> None:
    a = FakeCarrier("a", ["+13125550101"])
    b = FakeCarrier("b", ["+13125550103"])
    client = TestClient(create_app(settings, db, MultiCarrier([a, b])))
    response = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": ["+13125550103"]},
        headers=partner.headers,
    )
    assert response.status_code == 200, response.text
    assert b.orders and not a.orders
    assert response.json()["data"][0]["status"] == "active"


def test_search_threads_do_not_pile_up() -> None:
    before = threading.active_count()
    multi = MultiCarrier([FakeCarrier("a", ["+13125550101"]), FakeCarrier("b")])
    for _ in range(20):
        list(multi.search(SearchQuery(), frozenset()))
    time.sleep(0.1)
    assert threading.active_count() <= before + 2


def test_registry_builds_each_carrier_from_settings(db: Database) -> None:
    from didhub.carriers.registry import make_carrier

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        carrier="multi",
        carriers="telnyx,twilio,bandwidth",
        telnyx_api_key="KEYsecret",
        twilio_account_sid=SID,
        twilio_auth_token="tokensecret",
        bandwidth_account_id="9900001",
        bandwidth_username="user",
        bandwidth_password="pass-secret",
        bandwidth_site_id="1234",
    )
    assert "KEYsecret" not in repr(settings) and "pass-secret" not in repr(settings)
    multi = make_carrier(settings, db)
    assert isinstance(multi, MultiCarrier)
    assert [c.name for c in multi.carriers] == ["telnyx", "twilio", "bandwidth"]
    assert [c.name for c in multi.enabled_for(SearchQuery("GB", "mobile"))] == ["telnyx", "twilio"]
    single = make_carrier(settings.model_copy(update={"carrier": "twilio"}), db)
    assert single.name == "twilio"
    with pytest.raises(ValueError, match="DIDHUB_TELNYX_API_KEY"):
        make_carrier(settings.model_copy(update={"carrier": "telnyx", "telnyx_api_key": None}), db)
    with pytest.raises(ValueError, match="unknown carrier"):
        make_carrier(settings.model_copy(update={"carrier": "acme"}), db)


def test_a_carrier_that_cannot_be_asked_at_quote_is_502_not_unavailable(
    settings: Settings, db: Database, partner: Acct
) -> None:
    broken = FakeCarrier("broken")
    broken.lookup = lambda _e164: (_ for _ in ()).throw(CarrierFailure("broken: 503"))  # type: ignore[method-assign]
    client = TestClient(create_app(settings, db, MultiCarrier([broken])))
    response = client.post(
        "/telephony/numbers/quote",
        json={"phone_numbers": ["+13125550101"]},
        headers=partner.headers,
    )
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "carrier_error"


ADDRESS = E911AddressData("901 E MAIN CAMPUS DR", None, "RALEIGH", "NC", "27606", "US", "ACME")


def test_cnam_and_e911_go_to_the_carrier_that_holds_the_number() -> None:
    a, b = FakeCarrier("a"), FakeCarrier("b")
    b.sold.add("+13125550103")
    multi = MultiCarrier([a, b])  # a fresh process: nothing remembered from a search
    multi.set_cnam("+13125550103", "ACME")
    multi.provision_e911("+13125550103", ADDRESS)
    multi.remove_e911("+13125550103")
    assert a.calls == []
    assert b.calls == [
        ("set_cnam", "+13125550103", "ACME"),
        ("provision", "+13125550103", "901 E MAIN CAMPUS DR"),
        ("remove", "+13125550103", None),
    ]


def test_cnam_of_a_number_no_carrier_holds_is_refused_and_removal_is_a_no_op() -> None:
    a, b = FakeCarrier("a"), FakeCarrier("b")
    multi = MultiCarrier([a, b])
    with pytest.raises(CarrierFailure, match="no carrier holds"):
        multi.set_cnam("+13125550109", "ACME")
    with pytest.raises(CarrierFailure, match="no carrier holds"):
        multi.provision_e911("+13125550109", ADDRESS)
    multi.remove_e911("+13125550109")
    assert a.calls == [] and b.calls == []


def test_a_carrier_that_cannot_say_it_holds_the_number_makes_cnam_unknown() -> None:
    class Unsure(FakeCarrier):
        def holds(self, phone_number: str) -> bool:
            raise CarrierFailure("unsure: 503")

    multi = MultiCarrier([Unsure("a"), FakeCarrier("b")])
    with pytest.raises(CarrierOutcomeUnknown, match="could not say"):
        multi.set_cnam("+13125550103", "ACME")


def test_validation_asks_the_first_enabled_carrier_that_validates() -> None:
    refuses = NoE911Carrier("refuses")
    abroad = FakeCarrier("abroad")
    down = FakeCarrier("down")
    down.down = True
    able = FakeCarrier("able")
    multi = MultiCarrier(
        [refuses, abroad, down, able],
        scopes={"abroad": CarrierScope(countries=frozenset({"GB"}))},
    )
    answer = multi.validate_e911_address(ADDRESS)
    assert answer.valid and answer.reference == "able-ref"
    assert abroad.calls == [] and refuses.calls == []
    assert [c[0] for c in down.calls] == ["validate"]


def test_validation_prefers_a_carrier_that_checks_the_address() -> None:
    accepts_as_given = FakeCarrier("accepts")
    accepts_as_given.checks_e911_addresses = False  # type: ignore[attr-defined]
    checks = FakeCarrier("checks")
    answer = MultiCarrier([accepts_as_given, checks]).validate_e911_address(ADDRESS)
    assert answer.reference == "checks-ref" and accepts_as_given.calls == []


def test_validation_with_no_carrier_able_is_a_failure() -> None:
    with pytest.raises(CarrierFailure, match="validates E911"):
        MultiCarrier([NoE911Carrier("x")]).validate_e911_address(ADDRESS)
