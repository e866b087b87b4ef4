"""Rate centers as people write them (issue 17, item 7): shown by their full
name, found by the full name or the LERG abbreviation whatever the case and
spacing; an unknown state is a 422 naming ``administrative_area``; a pattern
without a type searches the type it implies. The sandbox and the stock
carrier, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, search_numbers
from dashboard import sign_in
from didhub.api.app import create_app
from didhub.carriers.stock import StockCarrier, import_csv
from didhub.config import Settings
from didhub.db import Database

SPELLINGS = [
    "LITTLE ROCK",
    "little rock",
    "LITTLEROCK",
    "LITTLE ROC",
    "littleroc",
    " Little  Rock ",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_sandbox_finds_little_rock_however_written(
    client: TestClient, partner: Acct, spelling: str
) -> None:
    found = search_numbers(
        client, partner, administrative_area="AR", rate_center=spelling, page_size=5
    )
    assert len(found) == 5
    assert {(n["locality"], n["rate_center"]) for n in found} == {("Little Rock", "LITTLE ROCK")}


def test_results_show_the_full_rate_center_name(client: TestClient, partner: Acct) -> None:
    found = search_numbers(client, partner, administrative_area="AR", locality="Little Rock")
    assert found and {n["rate_center"] for n in found} == {"LITTLE ROCK"}


def test_an_unknown_state_names_administrative_area(client: TestClient, partner: Acct) -> None:
    for body in (
        {"administrative_area": "ZZ"},
        {"country_code": "CA", "administrative_area": "AR"},
    ):
        answer = client.post("/telephony/numbers/search", json=body, headers=partner.headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "administrative_area"
    known = client.post(
        "/telephony/numbers/search",
        json={"country_code": "CA", "administrative_area": "on"},
        headers=partner.headers,
    )
    assert known.status_code == 200 and known.json()["data"]


def test_a_pattern_without_a_type_searches_the_type_it_implies(
    client: TestClient, partner: Acct
) -> None:
    toll_free = search_numbers(client, partner, pattern="877-XXX-XXXX", page_size=5)
    assert len(toll_free) == 5
    assert all(
        n["phone_number_type"] == "toll-free" and n["phone_number"].startswith("+1877")
        for n in toll_free
    )
    local = search_numbers(client, partner, pattern="501-XXX-XXXX", page_size=5)
    assert local and all(n["phone_number_type"] == "local" for n in local)
    # A type given explicitly still wins: no local number starts with 877.
    assert search_numbers(client, partner, pattern="877", phone_number_type="local") == []


@pytest.mark.parametrize("stored", ["LITTLE ROCK", "LITTLE ROC"])
def test_stock_finds_its_rate_center_by_either_name(
    settings: Settings, db: Database, make_partner: Callable[..., Acct], stored: str
) -> None:
    csv = (
        "number,rate_center,city,state,cost\n"
        f"+15013720101,{stored},Little Rock,AR,0.50\n"
        "+14792290102,FAYETTEVL,Fayetteville,AR,0.50\n"
    )
    import_csv(db, csv)
    client = TestClient(create_app(settings, db, StockCarrier(db)))
    partner = make_partner()
    for spelling in SPELLINGS:
        found = search_numbers(client, partner, administrative_area="AR", rate_center=spelling)
        assert [n["phone_number"] for n in found] == ["+15013720101"], spelling


def test_the_dashboard_example_finds_what_it_shows(client: TestClient, partner: Acct) -> None:
    browser = TestClient(client.app)
    sign_in(browser, api_key=partner.key)
    page = browser.get("/dashboard/numbers/buy")
    example = re.search(r'id="rate_center"[^>]*placeholder="([^"]+)"', page.text)
    assert example and example.group(1) == "LITTLE ROCK"
    results = browser.get(
        "/dashboard/numbers/buy/results",
        params={"state": "AR", "rate_center": example.group(1), "search": "1"},
    )
    assert results.status_code == 200, results.text
    assert results.text.count("LITTLE ROCK") >= 5 and "LITTLE ROC<" not in results.text
