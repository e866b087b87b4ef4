"""Purchase and search cost against the size of the stock, and start-up.

Issue 20: at each ``--sizes`` (stock numbers, seeded set-based by
bench_stock.seed, then ANALYZE), starts ``didhub serve`` with the stock carrier
and measures: seconds from the process's start to its first healthy answer,
its RSS then, the first search's and the first purchase's latency, then
``--searches`` searches and ``--purchases`` purchases one at a time (p50, p99,
server CPU ms each, from ``/proc/<pid>/stat``), the peak RSS, and the
database's size on disk. The same searches at every size (the exchanges every
size has: NPA 201, NJ), so a cost that grew with the inventory would show.

Loopback only, bounded by counts. Destructive: the PostgreSQL database's public
schema is emptied at each size (default: its own database, didhub_bench_inventory),
the SQLite file made anew.

    .venv/bin/python bench/bench_inventory.py --sizes 10000,1000000
    .venv/bin/python bench/bench_inventory.py --sizes 10000000 --skip-sqlite
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import percentile  # noqa: E402
from bench_purchase import buyers, cpu_ms, machine, served, status_kb, stock_e164  # noqa: E402
from bench_stock import seed  # noqa: E402

from didhub.db import Database  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench_inventory"
SEARCHES: list[dict[str, Any]] = [
    {"area_code": "201"},
    {"administrative_area": "NJ"},
    {"area_code": "201", "nxx": "200"},
    {"pattern": "201-200-XXXX"},
    {"administrative_area": "NJ", "rate_center": "RC 0"},
    {"administrative_area": "NJ", "locality": "CITY 0"},
]


def disk_mb(url: str) -> float:
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        total = sum(Path(path + s).stat().st_size for s in ("", "-wal") if Path(path + s).exists())
        return round(total / 2**20, 1)
    db = Database(url)
    with db.engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    db.dispose()
    return round(int(size) / 2**20, 1)


def ms_stats(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(percentile(ms, 0.99), 2)}


def one_size(url: str, size: int, searches: int, purchases: int) -> dict[str, Any]:
    name = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(f"[{name}] seeding {size:,}", file=sys.stderr, flush=True)
    seeded = time.perf_counter()
    seed(url, size)
    seed_seconds = round(time.perf_counter() - seeded, 1)
    ((_, key),) = buyers(url, 1)
    headers = {"Authorization": f"Bearer {key}"}
    row: dict[str, Any] = {"database": name, "stock_numbers": size, "seed_seconds": seed_seconds}
    with (
        served(url) as (base, pid, startup),
        httpx.Client(base_url=base, headers=headers, timeout=120) as client,
    ):
        row["startup_seconds"] = round(startup, 2)
        row["startup_rss_mb"] = round(status_kb(pid, "VmRSS") / 1024, 1)
        t0 = time.perf_counter()
        client.post("/telephony/numbers/search", json=SEARCHES[0]).raise_for_status()
        row["first_search_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        bought = 0
        t0 = time.perf_counter()
        client.post(
            "/telephony/numbers/purchase", json={"phone_number": stock_e164(size - 1)}
        ).raise_for_status()
        row["first_purchase_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        bought += 1
        for body in SEARCHES:  # every search finds numbers at every size
            found = client.post("/telephony/numbers/search", json=body)
            found.raise_for_status()
            assert found.json()["data"], body
        times: list[float] = []
        cpu0 = cpu_ms(pid)
        for i in range(searches):
            t0 = time.perf_counter()
            client.post(
                "/telephony/numbers/search", json=SEARCHES[i % len(SEARCHES)]
            ).raise_for_status()
            times.append(time.perf_counter() - t0)
        row["search"] = {
            **ms_stats(times),
            "server_cpu_ms": round((cpu_ms(pid) - cpu0) / searches, 2),
        }
        times = []
        cpu0 = cpu_ms(pid)
        for _ in range(purchases):
            e164 = stock_e164(size - 1 - bought)
            bought += 1
            t0 = time.perf_counter()
            client.post(
                "/telephony/numbers/purchase", json={"phone_number": e164}
            ).raise_for_status()
            times.append(time.perf_counter() - t0)
        row["purchase"] = {
            **ms_stats(times),
            "server_cpu_ms": round((cpu_ms(pid) - cpu0) / purchases, 2),
        }
        row["peak_rss_mb"] = round(status_kb(pid, "VmHWM") / 1024, 1)
    row["disk_mb"] = disk_mb(url)
    print(f"[{name}] {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_PG, help="emptied first!")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    started = machine()
    rows = []
    for size in sizes:
        if not args.skip_postgresql:
            rows.append(one_size(args.database_url, size, args.searches, args.purchases))
        if not args.skip_sqlite:
            path = Path(tempfile.mkdtemp(prefix="didhub-bench-")) / "inventory.db"
            url = f"sqlite:///{path}"
            rows.append(one_size(url, size, args.searches, args.purchases))
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    print(json.dumps({"machine": started, "sizes": rows}, indent=2))


if __name__ == "__main__":
    main()
