"""Platform stock: the all-or-nothing CSV import and the StockCarrier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from conftest import Acct
from didhub.api.app import create_app
from didhub.carriers.base import CarrierFailure, SearchQuery
from didhub.carriers.models import StockNumber
from didhub.carriers.multi import MultiCarrier
from didhub.carriers.registry import make_carrier
from didhub.carriers.stock import StockCarrier, import_csv
from didhub.cli import app
from didhub.config import Settings, get_settings
from didhub.db import Database
from didhub.errors import ValidationFailed

HEADER = "number,rate_center,city,state,cost\n"
GOOD = (
    HEADER
    + "+13125550101,CHICAGO,Chicago,IL,0.50\n"
    + "(312) 555-0102,CHICAGO,Chicago,IL,0.50\n"
    + "3125560103,CHICAGO,Chicago,IL,0.50\n"
    + "+14155550104,SAN FRANCISCO,San Francisco,CA,0.75\n"
    + "+14155550105,SAN FRANCISCO,San  Francisco,ca,0.75\n"
    + "+18773569377,TOLL FREE,Raleigh,NC,1.25\n"
    + "+18005550107,TOLL FREE,Raleigh,NC,1.25\n"
)


def count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(StockNumber)) or 0)


def numbers(found: object) -> list[str]:
    return [n.phone_number for n in found]  # type: ignore[attr-defined]


@pytest.fixture
def stock(db: Database) -> StockCarrier:
    assert import_csv(db, GOOD).imported == 7
    return StockCarrier(db, page_size=2)  # small pages: the keyset paging is exercised


# -- import --------------------------------------------------------------------------


def test_import_normalizes_every_row(db: Database, stock: StockCarrier) -> None:
    with db.session() as session:
        row = session.get_one(StockNumber, "+13125550102")
        assert (row.npa, row.nxx, row.state, row.city, row.rate_center) == (
            "312",
            "555",
            "IL",
            "CHICAGO",
            "CHICAGO",
        )
        assert row.status == "available" and row.number_type == "local"
        assert str(row.cost) == "0.5000"
        assert session.get_one(StockNumber, "+14155550105").city == "SAN FRANCISCO"
        assert session.get_one(StockNumber, "+18773569377").number_type == "toll-free"


def test_bad_rows_are_named_by_line_and_column_and_nothing_is_imported(db: Database) -> None:
    body = (
        HEADER
        + "+13125550101,CHICAGO,Chicago,IL,0.50\n"
        + "+1312555,CHICAGO,Chicago,IL,0.50\n"
        + "+13125550103,CHICAGO,Chicago,XX,0.50\n"
        + "+13125550104,,Chicago,IL,abc\n"
        + "+13125550101,CHICAGO,Chicago,IL,0.50\n"
        + "+13125550106,CHICAGO,Chicago,IL,0.12345\n"
        + "+13125550107,CHICAGO,Chicago,IL,0.50,extra\n"
        + "+442079460000,LONDON,London,GB,0.50\n"
    )
    with pytest.raises(ValidationFailed) as info:
        import_csv(db, body)
    message = info.value.message
    assert message.startswith("nothing imported: ")
    assert "line 3, column number: '+1312555' is not a valid US or Canadian number" in message
    assert "line 4, column state: 'XX' is not a two-letter state code" in message
    assert "line 5, column rate_center: is required" in message
    assert "line 5, column cost: 'abc' is not an amount" in message
    assert "line 6, column number: +13125550101 is also on line 2" in message
    assert "line 7, column cost: '0.12345' has more than 4 decimal places" in message
    assert "line 8: more columns than the header's 5" in message
    assert "line 9, column number" in message
    assert info.value.field == "file"
    assert count(db) == 0


def test_a_number_already_in_stock_refuses_the_file(db: Database, stock: StockCarrier) -> None:
    body = HEADER + "+13125550199,CHICAGO,Chicago,IL,0.50\n+13125550101,CHICAGO,Chicago,IL,0.50\n"
    with pytest.raises(ValidationFailed, match="line 3, column number: .* already in stock"):
        import_csv(db, body)
    assert count(db) == 7


def test_a_missing_column_is_named(db: Database) -> None:
    with pytest.raises(ValidationFailed, match=r"line 1: .*missing: cost"):
        import_csv(db, "number,rate_center,city,state\n+13125550101,CHICAGO,Chicago,IL\n")


def test_many_bad_rows_are_summarized(db: Database) -> None:
    body = HEADER + "".join(f"bad{i},CHICAGO,Chicago,IL,0.50\n" for i in range(30))
    with pytest.raises(ValidationFailed, match="and 10 more problems"):
        import_csv(db, body)


# -- search ----------------------------------------------------------------------------


def test_search_filters(stock: StockCarrier) -> None:
    none = frozenset[str]()
    assert numbers(stock.search(SearchQuery("US", "local", area_code="312"), none)) == [
        "+13125550101",
        "+13125550102",
        "+13125560103",
    ]
    assert numbers(stock.search(SearchQuery("US", "local", area_code="312", nxx="556"), none)) == [
        "+13125560103"
    ]
    assert numbers(stock.search(SearchQuery("US", "local", administrative_area="ca"), none)) == [
        "+14155550104",
        "+14155550105",
    ]
    by_city = SearchQuery("US", "local", locality="san francisco")
    assert len(numbers(stock.search(by_city, none))) == 2
    by_rate_center = SearchQuery("US", "local", rate_center="Chicago")
    assert len(numbers(stock.search(by_rate_center, frozenset({"+13125550102"})))) == 2
    pattern = SearchQuery("US", "local", pattern="312555XXXX")
    assert numbers(stock.search(pattern, none)) == ["+13125550101", "+13125550102"]
    assert numbers(stock.search(SearchQuery("US", "mobile"), none)) == []
    assert numbers(stock.search(SearchQuery("GB", "local"), none)) == []


def test_toll_free_vanity_pattern(stock: StockCarrier) -> None:
    none = frozenset[str]()
    vanity = SearchQuery("US", "toll-free", pattern="XXX3569377")
    assert numbers(stock.search(vanity, none)) == ["+18773569377"]
    prefix = SearchQuery("US", "toll-free", pattern="800XXXXXXX")
    assert numbers(stock.search(prefix, none)) == ["+18005550107"]
    assert len(numbers(stock.search(SearchQuery("US", "toll-free"), none))) == 2
    found = stock.lookup("+18773569377")
    assert found is not None and found.phone_number_type == "toll-free"
    assert found.locality == "Raleigh" and found.features == ("voice",)


def test_filtered_searches_read_a_page_from_an_index(db: Database, stock: StockCarrier) -> None:
    if not db.is_sqlite:
        pytest.skip("the plan check reads SQLite's EXPLAIN QUERY PLAN")
    page = (
        "SELECT e164 FROM stock_numbers WHERE status = 'available' AND {where} "
        "ORDER BY npa, nxx, e164 LIMIT 50"
    )
    for where, index in (
        ("state = 'IL'", "ix_stock_numbers_state_npa_nxx"),
        ("npa = '312' AND nxx = '555'", "ix_stock_numbers_npa_nxx"),
        ("rate_center = 'CHICAGO'", "ix_stock_numbers_rate_center"),
        ("city = 'CHICAGO'", "ix_stock_numbers_city"),
    ):
        with db.engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(text("EXPLAIN QUERY PLAN " + page.format(where=where)))
            )
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of the matches


# -- order, release ----------------------------------------------------------------------


def test_order_marks_sold_and_release_returns_to_stock(stock: StockCarrier) -> None:
    results = stock.order("ord_1", ["+13125550101", "+13125550102"])
    assert [(r.phone_number, r.status) for r in results] == [
        ("+13125550101", "active"),
        ("+13125550102", "active"),
    ]
    assert stock.lookup("+13125550101") is None
    assert stock.holds("+13125550101")
    found = numbers(stock.search(SearchQuery("US", "local", area_code="312"), frozenset()))
    assert found == ["+13125560103"]
    assert sorted(r.phone_number for r in stock.order_status("ord_1")) == [
        "+13125550101",
        "+13125550102",
    ]
    # A retried order with the same id is answered as it was.
    again = stock.order("ord_1", ["+13125550101"])
    assert again[0].status == "active"
    # Another buyer can't have it.
    partial = stock.order("ord_2", ["+13125550101", "+13125560103", "+19999999999"])
    assert [(r.status, r.reason) for r in partial] == [
        ("failed", "no longer in stock"),
        ("active", None),
        ("failed", "not in stock"),
    ]
    with pytest.raises(CarrierFailure, match="nothing could be ordered"):
        stock.order("ord_3", ["+13125550101"])
    stock.release("+13125550101")
    assert not stock.holds("+13125550101")
    # Back in stock, but aging first (tests/carriers/test_number_aging.py).
    assert stock.lookup("+13125550101") is None
    assert StockCarrier(stock.db, aging_days=0).lookup("+13125550101") is not None
    assert stock.order_status("ord_1")[0].phone_number == "+13125550102"
    stock.release("+13125550101")  # released twice: still fine
    stock.release("+19999999999")  # not the platform's: counted as released


def test_cnam_and_e911_are_refused_with_a_reason(stock: StockCarrier) -> None:
    with pytest.raises(CarrierFailure, match="not supported"):
        stock.set_cnam("+13125550101", "ACME")


def test_purchase_through_the_api(settings: Settings, db: Database, partner: Acct) -> None:
    import_csv(db, GOOD)
    client = TestClient(create_app(settings, db, StockCarrier(db)))
    found = client.post(
        "/telephony/numbers/search",
        json={"country_code": "US", "area_code": "415"},
        headers=partner.headers,
    )
    assert found.status_code == 200, found.text
    offered = [n["phone_number"] for n in found.json()["data"]]
    assert offered == ["+14155550104", "+14155550105"]
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": ["+14155550104"]},
        headers=partner.headers,
    )
    assert bought.status_code == 200, bought.text
    assert StockCarrier(db).holds("+14155550104")


# -- registry and CLI ----------------------------------------------------------------------


def test_registry_and_multi(db: Database) -> None:
    settings = Settings(_env_file=None, carrier="stock")  # type: ignore[call-arg]
    assert isinstance(make_carrier(settings, db), StockCarrier)
    multi = make_carrier(
        settings.model_copy(update={"carrier": "multi", "carriers": ["stock", "sandbox"]}), db
    )
    assert isinstance(multi, MultiCarrier)
    assert [c.name for c in multi.enabled_for(SearchQuery("US", "local"))] == ["stock", "sandbox"]
    assert [c.name for c in multi.enabled_for(SearchQuery("GB", "local"))] == ["sandbox"]


def test_cli_import(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIDHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        bad = tmp_path / "bad.csv"
        bad.write_text(HEADER + "+13125550101,CHICAGO,Chicago,IL,0.50\nnope,X,Y,IL,1\n")
        result = runner.invoke(app, ["stock", "import", str(bad)])
        assert result.exit_code == 1
        assert "line 3, column number" in result.output
        assert count(db) == 0
        good = tmp_path / "good.csv"
        good.write_text(GOOD)
        result = runner.invoke(app, ["stock", "import", str(good), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"imported": 7}
    finally:
        get_settings.cache_clear()
