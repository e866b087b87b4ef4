"""Issue 20: costs that grow with the inventory and at start-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from conftest import Acct, buy, search_numbers
from didhub.carriers.base import SearchQuery
from didhub.carriers.stock import StockCarrier, import_csv
from didhub.config import Settings
from didhub.db import Database, is_sqlite
from didhub.numbering import geography
from didhub.numbers import service as numbers
from didhub.tenancy import Scope


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the engine sends while the block runs, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)


def _plan(db: Database, statement: str, params: Any) -> str:
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if is_sqlite(db.url):
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = "\n".join(str(row[-1]) for row in cur.fetchall())
        else:
            # Without a usable index PostgreSQL still seq-scans with this off; a
            # test table is small enough that it would seq-scan anyway otherwise.
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + statement, params)
            plan = "\n".join(str(row[0]) for row in cur.fetchall())
            cur.execute("RESET enable_seqscan")
        cur.close()
        return plan
    finally:
        raw.rollback()
        raw.close()


def _full_scans(db: Database, seen: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    bad = []
    for statement, params in seen:
        head = statement.lstrip().split(None, 1)[0].upper()
        if head not in {"SELECT", "UPDATE", "DELETE"} or "phone_numbers" not in statement:
            continue
        plan = _plan(db, statement, params)
        if "Seq Scan on phone_numbers" in plan or any(
            line.startswith("SCAN phone_numbers") for line in plan.splitlines()
        ):
            bad.append((statement, plan))
    return bad


def test_purchase_release_and_reconcile_use_indexes(
    client: Any, partner: Acct, db: Database, carrier: Any, settings: Settings
) -> None:
    number = search_numbers(client, partner, area_code="312")[0]["phone_number"]
    with captured(db) as purchase:
        bought = buy(client, partner, number)
    with captured(db) as release:
        response = client.post(
            "/telephony/numbers/release",
            json={"number_id": bought["data"]["numbers"][0]["id"]}
            if "numbers" in bought.get("data", {})
            else {"number_id": _number_id(db, number)},
            headers=partner.headers,
        )
        assert response.status_code in (200, 202), response.text
    with captured(db) as sweep:
        numbers.reconcile(db, carrier, settings, timedelta(0))
    touched = [s for s, _ in purchase + release + sweep if "phone_numbers" in s]
    assert any("order_id" in s for s, _ in purchase), "settle_order's look-up was not captured"
    assert touched
    assert _full_scans(db, purchase) == []
    assert _full_scans(db, release) == []
    assert _full_scans(db, sweep) == []


def _number_id(db: Database, e164: str) -> str:
    from sqlalchemy import select

    from didhub.numbers.models import PhoneNumber

    with db.read_session() as session:
        return session.scalars(select(PhoneNumber.id).where(PhoneNumber.e164 == e164)).one()


STOCK = "number,rate_center,city,state,cost\n" + "".join(
    f"+1312555{n:04d},CHICAGO,Chicago,IL,0.50\n" for n in range(300)
)


def test_stock_import_leaves_planner_statistics(db: Database) -> None:
    assert import_csv(db, STOCK).imported == 300
    with db.engine.connect() as conn:
        if is_sqlite(db.url):
            rows = conn.exec_driver_sql(
                "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'stock_numbers'"
            ).all()
            assert rows, "no sqlite_stat1 rows for stock_numbers"
            assert all(stat.split()[0] == "300" for _, stat in rows)
        else:
            reltuples = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'stock_numbers'"
            ).scalar_one()
            assert reltuples == 300
            stats = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stats WHERE tablename = 'stock_numbers'"
            ).scalar_one()
            assert stats > 0


def test_geography_index_built_once_under_concurrent_first_requests() -> None:
    geography._BUILT.pop("61", None)
    before = geography.BUILDS.get("61", 0)
    start = threading.Barrier(16)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(geography.country_index("AU"))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert geography.BUILDS["61"] == before + 1
    assert len(got) == 16 and all(index is got[0] for index in got)


def _limit_of(params: Any) -> list[Any]:
    return list(params.values()) if isinstance(params, dict) else list(params)


def test_stock_search_reads_the_page_plus_one(db: Database, partner: Acct) -> None:
    import_csv(db, STOCK)
    carrier = StockCarrier(db)
    scope = Scope(partner.id, "partner")
    for page_no, wanted in ((1, 21), (3, 61)):
        with captured(db) as seen:
            page = numbers.search(db, carrier, scope, SearchQuery(area_code="312"), page_no, 20)
        assert len(page.data) == 20 and page.has_more
        stock_reads = [(s, p) for s, p in seen if "FROM stock_numbers" in s]
        assert len(stock_reads) == 1, stock_reads
        statement, params = stock_reads[0]
        assert "LIMIT" in statement.upper()
        assert wanted in _limit_of(params) and 500 not in _limit_of(params), params
        assert page.data[0].phone_number == f"+1312555{(page_no - 1) * 20:04d}"
