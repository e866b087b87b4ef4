"""Concurrent purchases through the HTTP API, beside the database's own floor.

Issue 19: 1, 8 and 64 concurrent buyers against one ``didhub serve`` (the stock
carrier), on PostgreSQL and on SQLite, and in the same run the floor: a bare
driver transaction doing the minimal writes of a purchase (lock the wallet, one
ledger transaction with two entries, the cached balance, an order row, a number
row) from as many threads. Prints, per database and concurrency: purchases/s,
p50, p99, errors, the server's CPU ms per purchase (``/proc/<pid>/stat``), the
database's (PostgreSQL's processes on this machine, from the same), the server's
peak RSS (``VmHWM``), statements and transactions per purchase (counted on the
engine, in this process, for one purchase through the same app), the API key
and directory caches' hit ratios (``/metrics``), the floor's commits/s and the
ratio. Then ``didhub ledger check`` on the database. Before the first level
every buyer makes one purchase, not measured, as a server that has run a while
has seen its buyers.

Loopback only; every level stops after ``--purchases`` purchases or ``--seconds``
seconds, whichever comes first. Destructive: the PostgreSQL database's public
schema is emptied first (default: its own database, didhub_bench_purchase), and
the SQLite file is made anew.

    .venv/bin/python bench/bench_purchase.py
    .venv/bin/python bench/bench_purchase.py --levels 1,8 --seconds 10 --skip-sqlite
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import event, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_api import DIDHUB, free_port, percentile, wait_healthy  # noqa: E402
from bench_stock import NPAS, seed  # noqa: E402

from didhub.accounts import service as accounts  # noqa: E402
from didhub.db import Database, autocommits  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench_purchase"
TICK = os.sysconf("SC_CLK_TCK")
PRICE = Decimal("2.00")  # the default local price: 1.00 a month + 1.00 setup


def stock_e164(i: int) -> str:
    """The ``i``-th number bench_stock.seed inserts."""
    npa, _ = NPAS[(i // 10_000) % 50]
    return f"+1{npa}{200 + (i // 10_000) // 50}{i % 10_000:04d}"


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve --workers``: the API workers, the jobs)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found.extend(tree(int(child)))
    return found


def stat_cpu_ms(stat: str) -> float:
    """User and system CPU time in a ``/proc/<pid>/stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK  # utime + stime


def cpu_ms(pid: int) -> float:
    """CPU time used by ``pid`` and its descendants."""
    return sum(stat_cpu_ms(Path(f"/proc/{each}/stat").read_text()) for each in tree(pid))


def postgres_cpu_ms() -> dict[int, float]:
    """CPU time used so far by each PostgreSQL process on this machine (its
    backends, writers and WAL), by pid; empty when none is visible (a database
    elsewhere)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        if stat.partition(" (")[2].rpartition(")")[0] == "postgres":
            found[int(entry.name)] = stat_cpu_ms(stat)
    return found


def postgres_cpu_used(before: dict[int, float], after: dict[int, float]) -> float | None:
    """PostgreSQL's CPU between two :func:`postgres_cpu_ms` readings (a process
    that ended in between is left out), or None when none was visible."""
    if not before or not after:
        return None
    return sum(ms - before.get(pid, 0.0) for pid, ms in after.items())


def status_kb(pid: int, name: str) -> int:
    """``name`` (e.g. VmHWM) from /proc status, summed over ``pid``'s tree."""
    total = 0
    for each in tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                total += int(line.split()[1])
    return total


def buyers(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` funded partners: (account id, API key)."""
    db = Database(url)
    made = []
    with db.session() as session:
        for n in range(count):
            partner = accounts.create_partner(session, f"Buyer {n}", "USD")
            accounts.fund_wallet(session, partner.id, Decimal("1000000.00"), "USD", "bench")
            made.append((partner.id, accounts.create_api_key(session, partner.id).secret))
    db.dispose()
    return made


def statements_per_purchase(url: str, key: str, first: str, second: str) -> tuple[int, int]:
    """(transactions, statements) of one purchase through the app, counted on
    its engine in this process (tests/perf/test_purchase_costs.py counts the
    same): the second of two, as a server that has seen the buyer before
    makes it (the first ever opens the revenue book, and a key's first request
    reads it; the caches poll rarely, so no poll lands in the count)."""
    from fastapi.testclient import TestClient

    from didhub.api.app import create_app
    from didhub.carriers.stock import StockCarrier
    from didhub.config import Settings

    db = Database(url)
    settings = Settings(database_url=url, routing_cache_seconds=60, _env_file=None)  # type: ignore[call-arg]
    client = TestClient(create_app(settings, db, StockCarrier(db)))
    headers = {"Authorization": f"Bearer {key}"}
    client.post(
        "/telephony/numbers/purchase", json={"phone_number": first}, headers=headers
    ).raise_for_status()
    seen = {"transactions": 0, "statements": 0}

    def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        if not sql.lstrip().upper().startswith("BEGIN"):
            seen["statements"] += 1

    def begin(conn: Any) -> None:
        if not autocommits(conn):  # a statement on its own is in no transaction
            seen["transactions"] += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "begin", begin)
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": second}, headers=headers
    )
    response.raise_for_status()
    db.dispose()
    return seen["transactions"], seen["statements"]


def run_threads(
    threads: int, work: Callable[[int, int], None], limit: int, seconds: float
) -> tuple[list[float], int, float]:
    """Run ``work(thread, n)`` from ``threads`` threads until ``limit`` calls in
    all or ``seconds`` have passed: (latencies, errors, elapsed)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    taken = [0]
    deadline = time.monotonic() + seconds
    start = threading.Barrier(threads)

    def loop(t: int) -> None:
        start.wait()
        n = 0
        while time.monotonic() < deadline:
            with lock:
                if taken[0] >= limit:
                    return
                taken[0] += 1
            t0 = time.perf_counter()
            try:
                work(t, n)
            except Exception as exc:  # counted: a benchmark reports errors, it doesn't stop
                with lock:
                    errors[0] += 1
                    if errors[0] == 1:
                        print(f"first error: {exc!r}"[:300], file=sys.stderr, flush=True)
            else:
                with lock:
                    latencies.append(time.perf_counter() - t0)
            n += 1

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, errors[0], time.perf_counter() - began


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies] or [0.0]
    return {
        "done": len(latencies),
        "errors": errors,
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
    }


# ---------------------------------------------------------------- the floor

_FLOOR_SQL = [
    "SELECT balance FROM ledger_accounts WHERE id = {p} FOR UPDATE",
    "INSERT INTO ledger_transactions (id, kind, description, reference, created_at) "
    "VALUES ({p}, 'purchase', 'floor', {p}, {p})",
    "INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount) "
    "VALUES ({p}, {p}, {p}), ({p}, {p}, {p})",
    "UPDATE ledger_accounts SET balance = balance - {p} WHERE id = {p}",
    "INSERT INTO number_orders (id, account_id, carrier, status, total, currency, "
    "ledger_transaction_id, created_at, settled_at) "
    "VALUES ({p}, {p}, 'stock', 'settled', {p}, 'USD', {p}, {p}, {p})",
    "INSERT INTO phone_numbers (id, e164, country_code, phone_number_type, features, status, "
    "is_managed, carrier, order_id, owner_id, monthly_cost, upfront_cost, currency, "
    "created_at, purchased_at, billed_periods) VALUES ({p}, {p}, 'US', 'local', '[]', "
    "'active', {t}, 'stock', {p}, {p}, 10000, 10000, 'USD', {p}, {p}, 0)",
]


_FLOOR_IDS = itertools.count()


def floor(
    url: str, owners: list[tuple[str, str]], threads: int, limit: int, seconds: float
) -> dict[str, Any]:
    """The minimal writes of a purchase, one transaction each, on the driver."""
    sqlite = url.startswith("sqlite")
    p = "?" if sqlite else "%s"
    sql = [s.format(p=p, t="1" if sqlite else "true") for s in _FLOOR_SQL]
    amount = int(PRICE * 10_000)
    conns: list[Any] = []
    for _ in range(threads):
        if sqlite:
            conn = sqlite3.connect(
                make_url(url).database or "",
                timeout=60,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
        else:
            plain = make_url(url).set(drivername="postgresql").render_as_string(False)
            conn = psycopg.connect(plain)
        conns.append(conn)
    lock = threading.Lock()

    def one(t: int, _n: int) -> None:
        with lock:
            i = next(_FLOOR_IDS)
        owner, _ = owners[t % len(owners)]
        wallet, revenue = f"wallet_{owner}_USD", "platform_revenue_USD"
        now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
        txn, order = f"txn_floor{t}_{i}", f"ord_floor{t}_{i}"
        args = [
            (wallet,),
            (txn, order, now),
            (txn, revenue, amount, txn, wallet, -amount),
            (amount, wallet),
            (order, owner, amount, txn, now, now),
            (f"num_floor{t}_{i}", f"+1999{i:07d}", order, owner, now, now),
        ]
        conn = conns[t]
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
            for statement, values in zip(sql, args, strict=True):
                conn.execute(statement.replace(" FOR UPDATE", ""), values)
            conn.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cur:
                for statement, values in zip(sql, args, strict=True):
                    cur.execute(statement, values)

    try:
        return summary(*run_threads(threads, one, limit, seconds))
    finally:
        for conn in conns:
            conn.close()


# ---------------------------------------------------------------- the server


@contextmanager
def served(url: str, workers: int = 1, **env: str) -> Iterator[tuple[str, int, float]]:
    """``didhub serve`` with the stock carrier, periodic jobs off: (url, pid,
    seconds from the start of the process to its first healthy answer)."""
    workdir = Path(tempfile.mkdtemp(prefix="didhub-bench-"))
    port = free_port()
    log = open(workdir / "didhub.log", "wb")  # noqa: SIM115
    began = time.perf_counter()
    process = subprocess.Popen(
        [DIDHUB, "serve", "--port", str(port), "--workers", str(workers)],
        env={
            **os.environ,
            "DIDHUB_DATABASE_URL": url,
            "DIDHUB_CARRIER": "stock",
            "DIDHUB_SERVE_JOBS": "false",
            "DIDHUB_SWEEP_SECONDS": "0",
            "DIDHUB_WEBHOOK_SECONDS": "0",
            **env,
        },
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base, process.pid, time.perf_counter() - began
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def bench_database(
    url: str, levels: list[int], limit: int, seconds: float, stock: int, workers: int = 1
) -> dict[str, Any]:
    name = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(f"[{name}] seeding {stock:,} stock numbers", file=sys.stderr, flush=True)
    seed(url, stock)
    owners = buyers(url, max(levels))
    transactions, statements = statements_per_purchase(
        url, owners[0][1], stock_e164(stock - 1), stock_e164(stock - 2)
    )
    results: list[dict[str, Any]] = []
    next_number = [0]
    lock = threading.Lock()
    with served(url, workers) as (base, pid, _):
        clients = [
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
            for _, key in owners
        ]

        def buy(t: int, _n: int) -> None:
            with lock:
                i = next_number[0]
                next_number[0] += 1
            r = clients[t].post("/telephony/numbers/purchase", json={"phone_number": stock_e164(i)})
            r.raise_for_status()

        try:
            # Warm-up, not measured: every buyer's first purchase, as a server
            # that has run a while has seen its buyers (their keys, webhook
            # subscribers and caller names kept), one at a time.
            for t in range(len(clients)):
                buy(t, 0)
            for threads in levels:
                cpu0, seen0, pg0 = cpu_ms(pid), cache_lookups(base), postgres_cpu_ms()
                done = summary(*run_threads(threads, buy, limit, seconds))
                used, seen = cpu_ms(pid) - cpu0, cache_lookups(base)
                pg_used = postgres_cpu_used(pg0, postgres_cpu_ms())
                print(f"[{name}] {threads} buyers: {done}", file=sys.stderr, flush=True)
                results.append(
                    {
                        "buyers": threads,
                        **done,
                        "server_cpu_ms_per_purchase": round(used / max(done["done"], 1), 1),
                        # PostgreSQL's processes on this machine (None: SQLite,
                        # or a database elsewhere).
                        "database_cpu_ms_per_purchase": (
                            round(pg_used / max(done["done"], 1), 1)
                            if name == "postgresql" and pg_used is not None
                            else None
                        ),
                        "server_peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
                        "cache_hit_ratio": hit_ratios(seen0, seen),
                    }
                )
        finally:
            for client in clients:
                client.close()
    for row in results:
        row["floor"] = floor(url, owners, row["buyers"], limit * 3, seconds)
        row["ratio_to_floor"] = round(row["per_second"] / max(row["floor"]["per_second"], 0.1), 3)
        print(f"[{name}] floor {row['buyers']}: {row['floor']}", file=sys.stderr, flush=True)
    check = subprocess.run(
        [DIDHUB, "ledger", "check"],
        env={**os.environ, "DIDHUB_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    return {
        "database": name,
        "serve_workers": workers,
        "stock_numbers": stock,
        "transactions_per_purchase": transactions,
        "statements_per_purchase": statements,
        "levels": results,
        "ledger_check": {"exit": check.returncode, "output": check.stdout.strip()[-300:]},
    }


_CACHES = ("didhub_api_key_cache_lookups", "didhub_directory_cache_lookups")


def cache_lookups(base: str) -> dict[tuple[str, str], float]:
    """The API key and directory caches' hits and misses so far, from
    ``/metrics`` (every worker's, summed)."""
    found: dict[tuple[str, str], float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        for name in _CACHES:
            for result in ("hit", "miss"):
                if line.startswith(f'{name}_total{{result="{result}"}}'):
                    found[name, result] = float(line.rsplit(" ", 1)[1])
    return found


def hit_ratios(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[str, float | None]:
    """Each cache's hits / lookups between two readings (None: no lookup)."""
    ratios: dict[str, float | None] = {}
    for name in _CACHES:
        hits, misses = (after.get((name, r), 0) - before.get((name, r), 0) for r in ("hit", "miss"))
        label = name.removeprefix("didhub_").removesuffix("_cache_lookups")
        ratios[label] = round(hits / (hits + misses), 3) if hits + misses else None
    return ratios


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} at the start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_PG, help="emptied first!")
    parser.add_argument("--sqlite-path", default=None, help="default: a new temporary file")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--levels", default="1,8,64", help="concurrent buyers per level")
    parser.add_argument("--purchases", type=int, default=400, help="at most, per level")
    parser.add_argument("--seconds", type=float, default=20, help="at most, per level")
    parser.add_argument("--stock", type=int, default=20_000, help="stock numbers seeded")
    parser.add_argument(
        "--workers", type=int, default=1, help="didhub serve --workers (CPU and memory summed)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if args.stock < len(levels) * args.purchases + max(levels) + 10:
        raise SystemExit("--stock must exceed the purchases of every level")
    started = machine()
    runs = []
    if not args.skip_postgresql:
        runs.append(
            bench_database(
                args.database_url, levels, args.purchases, args.seconds, args.stock, args.workers
            )
        )
    if not args.skip_sqlite:
        path = args.sqlite_path or str(Path(tempfile.mkdtemp(prefix="didhub-bench-")) / "b.db")
        runs.append(
            bench_database(
                f"sqlite:///{path}", levels, args.purchases, args.seconds, args.stock, args.workers
            )
        )
    print(json.dumps({"machine": started, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
