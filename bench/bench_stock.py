"""Filtered search over a 10M-number platform stock, through the HTTP API.

Target (issue 6): filtered search p99 <= 20 ms through the HTTP API, on SQLite and
PostgreSQL.

Seeds ``--numbers`` stock numbers with set-based SQL (1,000 exchanges of 10,000
lines: 50 area codes in 25 states, 20 NXXs each, 200 rate centers, 100 cities), starts
``didhub serve`` with ``DIDHUB_CARRIER=stock`` on that database, and times
``POST /telephony/numbers/search`` one request at a time, cycling through filters a
Buy DIDs page sends: state, area code, area code + NXX, state + rate center, state +
city, a vanity-style pattern. Destructive: a PostgreSQL database's public schema is
emptied first (default: its own database, didhub_bench).

    .venv/bin/python bench/bench_stock.py                                   # PostgreSQL
    .venv/bin/python bench/bench_stock.py --database-url sqlite:////tmp/stock.db
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_api import DIDHUB, percentile  # noqa: E402
from bench_renewals import DEFAULT_URL, reset  # noqa: E402

from didhub.carriers.stock import StockCarrier  # noqa: E402
from didhub.db import Database  # noqa: E402
from didhub.numbers.schemas import SearchRequest  # noqa: E402
from sip_edge import didhub_server  # noqa: E402

# (area code, state): real NPAs of those states.
NPAS = [
    ("201", "NJ"), ("202", "DC"), ("205", "AL"), ("206", "WA"), ("207", "ME"),
    ("208", "ID"), ("212", "NY"), ("213", "CA"), ("214", "TX"), ("215", "PA"),
    ("216", "OH"), ("217", "IL"), ("218", "MN"), ("219", "IN"), ("224", "IL"),
    ("225", "LA"), ("228", "MS"), ("229", "GA"), ("231", "MI"), ("234", "OH"),
    ("239", "FL"), ("240", "MD"), ("248", "MI"), ("251", "AL"), ("252", "NC"),
    ("253", "WA"), ("254", "TX"), ("256", "AL"), ("260", "IN"), ("262", "WI"),
    ("267", "PA"), ("269", "MI"), ("270", "KY"), ("272", "PA"), ("276", "VA"),
    ("281", "TX"), ("301", "MD"), ("302", "DE"), ("303", "CO"), ("304", "WV"),
    ("305", "FL"), ("307", "WY"), ("308", "NE"), ("309", "IL"), ("310", "CA"),
    ("312", "IL"), ("313", "MI"), ("314", "MO"), ("315", "NY"), ("316", "KS"),
]  # fmt: skip

SEARCHES: list[dict[str, Any]] = [
    {"administrative_area": "TX"},
    {"area_code": "312"},
    {"area_code": "212", "nxx": "201"},
    {"administrative_area": "GA", "rate_center": "RC 17"},
    {"administrative_area": "MN", "locality": "CITY 12"},
    {"pattern": "303-201-XXXX"},
    {"administrative_area": "FL", "page_size": 50},
]


def seed(url: str, numbers: int) -> float:
    db = reset(url)
    sqlite = db.is_sqlite
    values = ", ".join(f"({i}, '{npa}', '{state}')" for i, (npa, state) in enumerate(NPAS))
    if sqlite:
        series = f"g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {numbers - 1})"
        line = "printf('%04d', g.i % 10000)"
        nxx = "CAST(200 + (g.i / 10000) / 50 AS TEXT)"
        ex = "(g.i / 10000)"
        head = f"WITH RECURSIVE {series}, n(idx, npa, state) AS (VALUES {values}) "
        source = "FROM g JOIN n ON n.idx = (g.i / 10000) % 50"
    else:
        line = "lpad((g.i % 10000)::text, 4, '0')"
        nxx = "(200 + (g.i / 10000) / 50)::text"
        ex = "(g.i / 10000)"
        head = f"WITH n(idx, npa, state) AS (VALUES {values}) "
        source = (
            f"FROM generate_series(0, {numbers - 1}) AS g(i) JOIN n ON n.idx = (g.i / 10000) % 50"
        )
    statement = (
        head + "INSERT INTO stock_numbers (e164, country, number_type, npa, nxx, rate_center, "
        "city, state, cost, status, order_id, imported_at, sold_at) "
        f"SELECT '+1' || n.npa || {nxx} || {line}, 'US', 'local', n.npa, {nxx}, "
        f"'RC ' || ({ex} % 200), 'CITY ' || ({ex} % 100), n.state, 5000, 'available', "
        f"NULL, :at, NULL {source}"
    )
    if sqlite:  # SQLite wants the WITH inside the INSERT's SELECT
        statement = (
            "INSERT INTO stock_numbers (e164, country, number_type, npa, nxx, rate_center, "
            "city, state, cost, status, order_id, imported_at, sold_at) "
            + head
            + f"SELECT '+1' || n.npa || {nxx} || {line}, 'US', 'local', n.npa, {nxx}, "
            f"'RC ' || ({ex} % 200), 'CITY ' || ({ex} % 100), n.state, 5000, 'available', "
            f"NULL, :at, NULL {source}"
        )
    start = time.perf_counter()
    with db.engine.begin() as conn:
        at = "2026-11-23 00:00:00.000000" if sqlite else "2026-11-23 00:00:00+00:00"
        conn.execute(text(statement), {"at": at})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    db.dispose()
    return round(time.perf_counter() - start, 1)


def raw_query_ms(url: str, body: dict[str, Any], times: int) -> list[float]:
    """The SQL the stock carrier sends for ``body``'s first page, timed on its
    own: through the database driver's cursor (no SQLAlchemy, no ORM), rows
    fetched. The floor the API's figure is compared with."""
    db = Database(url)
    try:
        query = SearchRequest.model_validate(body).to_query()
        page_size = body.get("page_size", 20)
        statement = StockCarrier(db).first_batch(replace(query, wanted=page_size + 1))
        assert statement is not None
        dialect = db.engine.dialect
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params: dict[str, Any] = {}
        for name, value in compiled.params.items():
            bind = compiled.binds.get(name)  # an IN list's expanded values are text
            process = bind.type.bind_processor(dialect) if bind is not None else None
            params[name] = process(value) if process else value
        sql = str(compiled)
        args: Any = [params[n] for n in compiled.positiontup or []] if db.is_sqlite else params
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, args)
            assert cursor.fetchall(), body  # the same rows exist
            taken = []
            for _ in range(times):
                t0 = time.perf_counter()
                cursor.execute(sql, args)
                cursor.fetchall()
                taken.append((time.perf_counter() - t0) * 1000)
            connection.rollback()
            return taken
        finally:
            connection.close()
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="emptied first!")
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--searches", type=int, default=700)
    parser.add_argument("--reuse", action="store_true", help="keep the stock a run seeded")
    args = parser.parse_args()
    url: str = args.database_url
    seconds = None if args.reuse else seed(url, args.numbers)
    print(f"seeded {args.numbers:,} stock numbers in {seconds} s", file=sys.stderr)
    env = {"DIDHUB_CARRIER": "stock"}
    made = subprocess.run(
        [DIDHUB, "partner", "create", "Bench", "--balance", "100.00", "--json"],
        env={**os.environ, "DIDHUB_DATABASE_URL": url},
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(made.stdout)["api_key"]
    results: list[dict[str, Any]] = []
    with didhub_server(url, Path(tempfile.mkdtemp(prefix="didhub-bench-")), **env) as server:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for body in SEARCHES:  # warm-up, and every search must find numbers
                found = client.post("/telephony/numbers/search", json=body)
                found.raise_for_status()
                assert found.json()["data"], body
            # The HTTP floor: the same client's round trip to an answer that
            # reads nothing (GET /health), beside the raw query's floor.
            health = []
            for _ in range(200):
                t0 = time.perf_counter()
                client.get("/health").raise_for_status()
                health.append((time.perf_counter() - t0) * 1000)
            per_search: dict[str, list[float]] = {json.dumps(b): [] for b in SEARCHES}
            for i in range(args.searches):
                body = SEARCHES[i % len(SEARCHES)]
                t0 = time.perf_counter()
                r = client.post("/telephony/numbers/search", json=body)
                per_search[json.dumps(body)].append(time.perf_counter() - t0)
                r.raise_for_status()
    every = [x for xs in per_search.values() for x in xs]
    for name, xs in per_search.items():
        ms = [x * 1000 for x in xs]
        raw = raw_query_ms(url, json.loads(name), max(len(xs), 50))
        results.append(
            {
                "search": json.loads(name),
                "p50_ms": round(statistics.median(ms), 2),
                "p99_ms": round(percentile(ms, 0.99), 2),
                "raw_sql_p50_ms": round(statistics.median(raw), 3),
                "ratio_to_raw": round(statistics.median(ms) / statistics.median(raw), 1),
            }
        )
    ms = [x * 1000 for x in every]
    print(
        json.dumps(
            {
                "database": "sqlite" if url.startswith("sqlite") else "postgresql",
                "stock_numbers": args.numbers,
                "seed_seconds": seconds,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "all_searches": {
                    "requests": len(ms),
                    "p50_ms": round(statistics.median(ms), 2),
                    "p99_ms": round(percentile(ms, 0.99), 2),
                    "max_ms": round(max(ms), 2),
                },
                "by_search": results,
                "worst_ratio_to_raw": max(r["ratio_to_raw"] for r in results),
                "http_floor_p50_ms": round(statistics.median(health), 3),
                "target": "filtered search p99 <= 20 ms, p50 <= 3 x the raw query's",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
