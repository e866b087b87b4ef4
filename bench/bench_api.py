"""Search and purchase benchmarks through the HTTP API.

Starts ``didhub serve`` on a fresh database, creates a funded partner, then
measures sequential requests from one client (latency percentiles and
throughput). Run by hand, never as a unit test:

    .venv/bin/python bench/bench_api.py                       # SQLite
    .venv/bin/python bench/bench_api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench

PostgreSQL runs empty the database's public schema first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
DIDHUB = str(Path(sys.executable).parent / "didhub")

SEARCHES: list[dict[str, Any]] = [
    {"administrative_area": "AR", "locality": "Little Rock"},
    {"area_code": "212"},
    {"administrative_area": "CA", "page_size": 50},
    {"area_code": "415", "nxx": "555"},
    {"phone_number_type": "toll-free", "pattern": "877-555-XXXX"},
    {"phone_number_type": "toll-free"},
    {"country_code": "GB"},
    {"administrative_area": "TX", "rate_center": "HOUSTON"},
]


def wait_healthy(url: str, seconds: float = 120) -> None:
    """Until ``didhub serve`` at ``url`` answers ``/health`` (a loaded machine
    starts slowly); exits naming it if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarise(name: str, latencies: list[float], elapsed: float) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies]
    return {
        "benchmark": name,
        "requests": len(ms),
        "per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def fresh_database(database_url: str | None) -> tuple[Path, str]:
    """A new working folder, and ``database_url`` with its schema emptied, or,
    without one, a new SQLite file in that folder."""
    workdir = Path(tempfile.mkdtemp(prefix="didhub-bench-"))
    url = database_url or f"sqlite:///{workdir / 'bench.db'}"
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    return workdir, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--purchases", type=int, default=200)
    args = parser.parse_args()

    workdir, url = fresh_database(args.database_url)
    env = {**os.environ, "DIDHUB_DATABASE_URL": url}
    subprocess.run([DIDHUB, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [DIDHUB, "partner", "create", "Bench", "--balance", "1000000.00", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(created.stdout)["api_key"]
    port = free_port()
    server = subprocess.Popen(
        [DIDHUB, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: list[dict[str, Any]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            wait_healthy(str(client.base_url).rstrip("/"))
            for body in SEARCHES:  # warm-up: builds the geography index
                client.post("/telephony/numbers/search", json=body).raise_for_status()

            latencies: list[float] = []
            start = time.perf_counter()
            for i in range(args.searches):
                t0 = time.perf_counter()
                r = client.post("/telephony/numbers/search", json=SEARCHES[i % len(SEARCHES)])
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
            results.append(summarise("search", latencies, time.perf_counter() - start))

            candidates: list[str] = []
            page = 1
            while len(candidates) < args.purchases:
                page_data = client.post(
                    "/telephony/numbers/search",
                    json={"administrative_area": "NY", "page_size": 50, "page": page},
                ).json()["data"]
                candidates += [d["phone_number"] for d in page_data]
                page += 1
            latencies = []
            start = time.perf_counter()
            for number in candidates[: args.purchases]:
                t0 = time.perf_counter()
                r = client.post("/telephony/numbers/purchase", json={"phone_number": number})
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
            results.append(summarise("purchase", latencies, time.perf_counter() - start))
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = {
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
