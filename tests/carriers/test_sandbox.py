from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import geocoder

from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    CarrierOutcomeUnknown,
    SearchQuery,
)
from didhub.carriers.models import SandboxAllocation
from didhub.carriers.sandbox import SandboxCarrier
from didhub.db import Base, Database
from didhub.numbering import Exchange, exchanges


@pytest.fixture
def sdb(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/t.db")
    Base.metadata.create_all(database.engine, tables=[SandboxAllocation.__table__])
    yield database
    database.dispose()


@pytest.fixture
def sandbox(sdb: Database) -> SandboxCarrier:
    return SandboxCarrier(sdb, seed="unit")


def first(carrier: SandboxCarrier, n: int = 20, **filters: str) -> list[AvailableNumber]:
    query = SearchQuery(**filters)  # type: ignore[arg-type]
    return list(itertools.islice(carrier.search(query, frozenset()), n))


def nsn(e164: str) -> str:
    return str(phonenumbers.parse(e164).national_number)


def test_search_by_state(sandbox: SandboxCarrier) -> None:
    found = first(sandbox, administrative_area="AR")
    assert len(found) == 20
    assert len({n.phone_number for n in found}) == 20
    for n in found:
        assert n.administrative_area == "AR"
        assert n.country_code == "US"
        assert phonenumbers.region_code_for_number(phonenumbers.parse(n.phone_number)) == "US"
        assert phonenumbers.is_valid_number(phonenumbers.parse(n.phone_number))


def test_search_by_area_code_nxx_locality_rate_center(sandbox: SandboxCarrier) -> None:
    by_area = first(sandbox, area_code="415")
    assert by_area and all(nsn(n.phone_number).startswith("415") for n in by_area)
    by_nxx = first(sandbox, area_code="501", nxx="202")
    assert by_nxx and all(nsn(n.phone_number).startswith("501202") for n in by_nxx)
    by_locality = first(sandbox, locality="little rock", administrative_area="ar")
    assert by_locality and all(n.locality == "Little Rock" for n in by_locality)
    by_rc = first(sandbox, rate_center="little roc")
    assert by_rc and all(n.rate_center == "LITTLE ROCK" for n in by_rc)
    canada = first(sandbox, country_code="CA", administrative_area="ON", locality="Toronto")
    assert canada and all(n.country_code == "CA" and n.locality == "Toronto" for n in canada)


def test_lines_are_scrambled(sandbox: SandboxCarrier) -> None:
    lines = [nsn(n.phone_number)[6:] for n in first(sandbox, area_code="501", nxx="202")]
    assert lines != sorted(lines)
    assert "0000" not in lines[:3]


def test_vanity_pattern(sandbox: SandboxCarrier) -> None:
    found = first(sandbox, phone_number_type="toll-free", pattern="877555XXXX")
    assert len(found) == 20
    for n in found:
        assert n.phone_number.startswith("+1877555")
        assert n.phone_number_type == "toll-free"
        assert n.locality is None and n.rate_center is None
    flowers = list(
        sandbox.search(
            SearchQuery(phone_number_type="toll-free", pattern="8003569377"), frozenset()
        )
    )
    assert [n.phone_number for n in flowers] in ([], ["+18003569377"])
    tail = first(sandbox, 5, area_code="415", pattern="XXXXXX12XX")
    assert tail and all(nsn(n.phone_number)[6:8] == "12" for n in tail)


def test_filters_that_match_nothing_answer_empty(sandbox: SandboxCarrier) -> None:
    assert first(sandbox, phone_number_type="toll-free", administrative_area="AR") == []
    assert first(sandbox, phone_number_type="mobile") == []
    assert first(sandbox, administrative_area="ZZ") == []
    assert first(sandbox, area_code="501", locality="Toronto") == []
    assert first(sandbox, area_code="415", pattern="212") == []
    assert first(sandbox, area_code="999") == []


def test_first_page_is_full(sandbox: SandboxCarrier) -> None:
    """Speed is measured in bench/, not here; every common search fills a page."""
    for filters in (
        {"administrative_area": "TX"},
        {"locality": "Little Rock"},
        {"area_code": "212"},
        {"phone_number_type": "toll-free", "pattern": "888XXX"},
    ):
        assert len(first(sandbox, **filters)) == 20, filters


@pytest.fixture(scope="module")
def sample_exchanges() -> list[Exchange]:
    return exchanges("US")[::97] + exchanges("CA")[::53]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_result_matches_every_filter(
    sandbox: SandboxCarrier, sample_exchanges: list[Exchange], data: st.DataObject
) -> None:
    ex = data.draw(st.sampled_from(sample_exchanges))
    filters: dict[str, str] = {"country_code": ex.country_code}
    if data.draw(st.booleans()):
        filters["administrative_area"] = ex.administrative_area.lower()
    if data.draw(st.booleans()):
        filters["locality"] = ex.locality.upper()
    if data.draw(st.booleans()):
        filters["rate_center"] = ex.rate_center
    if data.draw(st.booleans()):
        filters["area_code"] = ex.npa
    if data.draw(st.booleans()):
        filters["nxx"] = ex.nxx
    if data.draw(st.booleans()):
        digits = ex.npa + ex.nxx + data.draw(st.text("0123456789", min_size=4, max_size=4))
        mask = data.draw(st.lists(st.booleans(), min_size=10, max_size=10))
        size = data.draw(st.integers(3, 10))
        filters["pattern"] = "".join("X" if m else d for d, m in zip(digits, mask, strict=True))[
            :size
        ]
    found = first(sandbox, 10, **filters)
    for n in found:
        national = nsn(n.phone_number)
        assert n.country_code == ex.country_code
        assert phonenumbers.is_valid_number(phonenumbers.parse(n.phone_number))
        if "administrative_area" in filters:
            assert n.administrative_area == ex.administrative_area
        if "locality" in filters:
            assert n.locality is not None and n.locality.upper() == ex.locality.upper()
        if "rate_center" in filters:
            assert n.rate_center == ex.rate_center
        if "area_code" in filters:
            assert national[:3] == ex.npa
        if "nxx" in filters:
            assert national[3:6] == ex.nxx
        if "pattern" in filters:
            assert all(p in ("X", d) for p, d in zip(filters["pattern"], national, strict=False))
    if "pattern" not in filters:
        assert found  # a real exchange's own filters always find stock


def test_lookup(sandbox: SandboxCarrier) -> None:
    number = first(sandbox, 1, area_code="501", nxx="202")[0]
    assert sandbox.lookup(number.phone_number) == number
    # Out-of-stock lines of the same exchange are not sellable.
    missing = [
        e164
        for e164 in (f"+1501202{line:04d}" for line in range(200))
        if not sandbox.in_stock(e164)
    ]
    assert missing and sandbox.lookup(missing[0]) is None
    assert sandbox.lookup("+15555550100") is None
    assert sandbox.lookup("garbage") is None


def test_sold_number_not_offered_and_released_offered_again(sandbox: SandboxCarrier) -> None:
    page = first(sandbox, 5, area_code="501", nxx="202")
    sold = page[0].phone_number
    results = sandbox.order("ord_1", [sold])
    assert [(r.phone_number, r.status) for r in results] == [(sold, "active")]
    assert sold not in {n.phone_number for n in first(sandbox, 50, area_code="501", nxx="202")}
    assert sandbox.lookup(sold) is None
    with pytest.raises(CarrierFailure):
        sandbox.order("ord_2", [sold])
    sandbox.release(sold)
    sandbox.release(sold)  # idempotent
    # Released, it ages first (tests/carriers/test_number_aging.py); without aging:
    assert sandbox.lookup(sold) is None
    sandbox = SandboxCarrier(sandbox.db, seed="unit", aging_days=0)
    assert sandbox.lookup(sold) is not None
    assert sold in {n.phone_number for n in first(sandbox, 50, area_code="501", nxx="202")}
    assert sandbox.order("ord_3", [sold])[0].status == "active"
    assert [r.status for r in sandbox.order_status("ord_3")] == ["active"]
    with pytest.raises(CarrierFailure):
        sandbox.release("+15012020000" if sold != "+15012020000" else "+15012020001")


def test_exclude_respected(sandbox: SandboxCarrier) -> None:
    page = first(sandbox, 10, administrative_area="AR")
    excluded = frozenset(n.phone_number for n in page[:5])
    again = list(
        itertools.islice(sandbox.search(SearchQuery(administrative_area="AR"), excluded), 10)
    )
    assert not excluded & {n.phone_number for n in again}
    assert [n.phone_number for n in again[:5]] == [n.phone_number for n in page[5:]]


def test_order_partial(sandbox: SandboxCarrier) -> None:
    a, b, c = (n.phone_number for n in first(sandbox, 3, area_code="212"))
    sandbox.inject_fault("partial", numbers=[b])
    results = sandbox.order("ord_p", [a, b, c])
    assert [r.status for r in results] == ["active", "failed", "active"]
    assert results[1].reason
    assert {r.phone_number for r in sandbox.order_status("ord_p")} == {a, c}
    assert sandbox.lookup(b) is not None
    # Fault consumed: the next order succeeds.
    assert sandbox.order("ord_p2", [b])[0].status == "active"


def test_order_unavailable_number_fails(sandbox: SandboxCarrier) -> None:
    good = first(sandbox, 1, area_code="212")[0].phone_number
    results = sandbox.order("ord_m", [good, "+15555550100"])
    assert [r.status for r in results] == ["active", "failed"]
    assert results[1].reason == "number not available"
    with pytest.raises(CarrierFailure):
        sandbox.order("ord_n", ["+15555550100"])
    assert sandbox.order_status("ord_n") == []


def test_order_fail_and_timeout_allocate_nothing(sandbox: SandboxCarrier) -> None:
    number = first(sandbox, 1, area_code="212")[0].phone_number
    sandbox.inject_fault("fail")
    with pytest.raises(CarrierFailure):
        sandbox.order("ord_f", [number])
    sandbox.inject_fault("timeout", times=2)
    for _ in range(2):
        with pytest.raises(CarrierOutcomeUnknown):
            sandbox.order("ord_t", [number])
    assert sandbox.order_status("ord_f") == []
    assert sandbox.order_status("ord_t") == []
    assert sandbox.lookup(number) is not None
    assert sandbox.order("ord_ok", [number])[0].status == "active"


def test_order_unknown_allocates(sandbox: SandboxCarrier) -> None:
    numbers = [n.phone_number for n in first(sandbox, 2, area_code="212")]
    sandbox.inject_fault("unknown")
    with pytest.raises(CarrierOutcomeUnknown):
        sandbox.order("ord_u", numbers)
    status = sandbox.order_status("ord_u")
    assert sorted(r.phone_number for r in status) == sorted(numbers)
    assert all(r.status == "active" for r in status)
    assert all(sandbox.lookup(n) is None for n in numbers)


def test_release_faults_and_clear(sandbox: SandboxCarrier) -> None:
    number = first(sandbox, 1, area_code="212")[0].phone_number
    sandbox.order("ord_r", [number])
    sandbox.inject_fault("timeout")
    with pytest.raises(CarrierOutcomeUnknown):
        sandbox.release(number)
    assert sandbox.lookup(number) is None  # not released
    sandbox.inject_fault("fail", times=5)
    sandbox.clear_faults()
    sandbox.release(number)
    assert not sandbox.holds(number)
    assert sandbox.order_status("ord_r")[0].status == "failed"
    with pytest.raises(ValueError):
        sandbox.inject_fault("explode")


def test_env_fault(sdb: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIDHUB_SANDBOX_FAULT", "unknown:2")
    carrier = SandboxCarrier(sdb, seed="unit")
    numbers = [n.phone_number for n in first(carrier, 3, area_code="212")]
    for i in range(2):
        with pytest.raises(CarrierOutcomeUnknown):
            carrier.order(f"ord_e{i}", [numbers[i]])
    assert carrier.order("ord_e2", [numbers[2]])[0].status == "active"
    monkeypatch.setenv("DIDHUB_SANDBOX_FAULT", "timeout")
    with pytest.raises(CarrierOutcomeUnknown):
        SandboxCarrier(sdb).order("ord_e3", [numbers[2]])


def test_concurrent_orders_sell_once(sandbox: SandboxCarrier, sdb: Database) -> None:
    number = first(sandbox, 1, area_code="212")[0].phone_number
    wins: list[str] = []
    losses: list[str] = []
    barrier = threading.Barrier(8)

    def buy(i: int) -> None:
        # No aging: the race is over a released number sold again at once.
        carrier = SandboxCarrier(sdb, seed="unit", aging_days=0)
        barrier.wait()
        try:
            carrier.order(f"ord_c{i}", [number])
            wins.append(f"ord_c{i}")
        except CarrierFailure:
            losses.append(f"ord_c{i}")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    # Same race on re-activation of a released number.
    sandbox.release(number)
    wins.clear()
    losses.clear()
    barrier.reset()
    threads = [threading.Thread(target=buy, args=(i + 10,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


@pytest.mark.parametrize(
    ("filters", "accepted"),
    [
        (
            {"country_code": "GB"},
            {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            },
        ),
        (
            {"country_code": "GB", "locality": "London"},
            {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            },
        ),
        (
            {"country_code": "GB", "area_code": "0113"},
            {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            },
        ),
        (
            {"country_code": "GB", "phone_number_type": "mobile"},
            {phonenumbers.PhoneNumberType.MOBILE},
        ),
        (
            {"country_code": "AU"},
            {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            },
        ),
        (
            {"country_code": "AU", "administrative_area": "NSW", "locality": "Sydney"},
            {
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            },
        ),
        (
            {"country_code": "AU", "phone_number_type": "mobile"},
            {phonenumbers.PhoneNumberType.MOBILE},
        ),
    ],
)
def test_gb_au_numbers_are_valid(
    sandbox: SandboxCarrier, filters: dict[str, str], accepted: set[int]
) -> None:
    found = first(sandbox, **filters)
    assert len(found) == 20
    region = filters["country_code"]
    for n in found:
        parsed = phonenumbers.parse(n.phone_number)
        assert phonenumbers.is_valid_number(parsed)
        assert phonenumbers.region_code_for_number(parsed) == region
        assert phonenumbers.number_type(parsed) in accepted
        if "locality" in filters:
            assert n.locality == filters["locality"]
            assert geocoder.description_for_number(parsed, "en").startswith(filters["locality"])
        if "area_code" in filters:
            assert phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.NATIONAL
            ).startswith("0113")
        assert sandbox.lookup(n.phone_number) == n


def test_reproducible(sdb: Database, tmp_path: Path) -> None:
    other_db = Database(f"sqlite:///{tmp_path}/other.db")
    Base.metadata.create_all(other_db.engine, tables=[SandboxAllocation.__table__])
    for filters in ({"administrative_area": "AR"}, {"country_code": "GB"}):
        a = first(SandboxCarrier(sdb, seed="s1"), **filters)
        b = first(SandboxCarrier(other_db, seed="s1"), **filters)
        c = first(SandboxCarrier(sdb, seed="s2"), **filters)
        assert a == b
        assert a != c
    other_db.dispose()
