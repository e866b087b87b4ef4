"""Usage-rating throughput through the HTTP API: ``POST /billing/usage``.

Seeds ``--numbers`` active numbers over ``--accounts`` funded partners with the
renewal benchmark's set-based seeding (destructive: see bench_renewals.py), starts
``didhub serve`` on that database, then posts call records the way the SIP edge
and a CDR import do:

- ``batched``: ``--batch`` records per request (a CDR import, an edge that buffers);
- ``per_call``: one record per request (an edge reporting each call as it ends).

Every record is a new call id on a random seeded number, so each is rated,
stored and posted to its wallet. After the runs it re-posts one batch (all
duplicates: nothing more may be charged) and runs ``ledger check``.

    .venv/bin/python bench/bench_usage.py                                  # PostgreSQL
    .venv/bin/python bench/bench_usage.py --database-url sqlite:////tmp/usage.db
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import DIDHUB, free_port, summarise, wait_healthy  # noqa: E402
from bench_renewals import DEFAULT_URL, FIRST_E164, machine, reset, seed  # noqa: E402

from didhub.billing.service import books


def records(numbers: int, count: int, start: int, rng: random.Random) -> list[dict[str, Any]]:
    begin = datetime.now(UTC) - timedelta(hours=1)
    return [
        {
            "phone_number": f"+{FIRST_E164 + rng.randrange(numbers)}",
            "direction": rng.choice(("inbound", "outbound")),
            "started_at": (begin + timedelta(seconds=i % 3000)).isoformat(),
            "duration_seconds": rng.randrange(1, 900),
            "call_id": f"bench-call-{start + i}",
        }
        for i in range(count)
    ]


EDGE_TOKEN = "bench-edge-token-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="emptied first!")
    parser.add_argument("--numbers", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--batched", type=int, default=50_000, help="records sent in batches")
    parser.add_argument("--batch", type=int, default=500, help="records per batched request")
    parser.add_argument("--per-call", type=int, default=2_000, help="records sent one by one")
    args = parser.parse_args()

    url: str = args.database_url
    db = reset(url)
    rng = random.Random(7)
    report: dict[str, Any] = {"benchmark": "usage rating", "machine": machine(db)}
    # Numbers bought ten days ago (due in twenty): calls in the last hour are theirs.
    seed(db, args.numbers, args.accounts, date.today() + timedelta(days=20))
    workdir = Path(tempfile.mkdtemp(prefix="didhub-bench-"))
    env = {
        **os.environ,
        "DIDHUB_DATABASE_URL": url,
        "DIDHUB_SWEEP_SECONDS": "0",
        "DIDHUB_EDGE_TOKEN": EDGE_TOKEN,
    }
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
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {EDGE_TOKEN}"},
            timeout=120,
        ) as client:
            wait_healthy(str(client.base_url).rstrip("/"))
            sent = 0
            latencies: list[float] = []
            start = time.perf_counter()
            while sent < args.batched:
                body = {"records": records(args.numbers, args.batch, sent, rng)}
                t0 = time.perf_counter()
                r = client.post("/billing/usage", json=body)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                assert r.json()["data"]["accepted"] == args.batch, r.text
                sent += args.batch
            elapsed = time.perf_counter() - start
            batched = summarise(f"batched ({args.batch} per request)", latencies, elapsed)
            batched["records_per_second"] = round(sent / elapsed, 1)
            results.append(batched)

            latencies = []
            start = time.perf_counter()
            for i in range(args.per_call):
                body = {"records": records(args.numbers, 1, sent + i, rng)}
                t0 = time.perf_counter()
                r = client.post("/billing/usage", json=body)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
            elapsed = time.perf_counter() - start
            per_call = summarise("per call (1 per request)", latencies, elapsed)
            per_call["records_per_second"] = round(args.per_call / elapsed, 1)
            results.append(per_call)

            again = client.post(
                "/billing/usage", json={"records": records(args.numbers, args.batch, 0, rng)}
            ).json()["data"]
            report["resent_batch"] = {
                "duplicates": again["duplicates"],
                "charged": again["charged"],
            }
            assert again["duplicates"] == args.batch and Decimal(again["charged"]) == 0, again
    finally:
        server.terminate()
        server.wait(timeout=30)
    with db.session() as session:
        problems = books.check(session)
    report["ledger_check_clean"] = not problems
    report["results"] = results
    print(json.dumps(report, indent=2))
    db.dispose()
    assert not problems, problems[:5]


if __name__ == "__main__":
    main()
