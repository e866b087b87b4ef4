"""Outbound lookups per second through the HTTP API (issue 15).

Starts ``didhub serve`` on a fresh database with one agent, its outbound
number and SIP credential, its tenant's outbound guards (a daily limit, a
concurrent-call limit, an IP allow-list), and two trunks, then sends
``POST /routing/outbound``
for random US destinations from ``--threads`` threads, each over its own
keep-alive connection, ``--requests`` in all. The target is the inbound one
(docs/performance.md): at least 10,000 per second with p99 <= 2 ms.

    .venv/bin/python bench/bench_outbound.py
    .venv/bin/python bench/bench_outbound.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import DIDHUB, free_port, fresh_database, summarise, wait_healthy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--wrk",
        type=int,
        default=0,
        metavar="SECONDS",
        help="send the lookups with wrk for this long (8 connections) instead of Python",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="serve with a log line per request"
    )
    args = parser.parse_args()

    workdir, url = fresh_database(args.database_url)
    env = {**os.environ, "DIDHUB_DATABASE_URL": url, "DIDHUB_EDGE_TRUST_LOOPBACK": "true"}

    def didhub(*argv: str) -> Any:
        done = subprocess.run(
            [DIDHUB, *argv], env=env, check=True, capture_output=True, text=True, cwd=workdir
        )
        return json.loads(done.stdout) if "--json" in argv else done.stdout

    didhub("migrate")
    key = didhub("partner", "create", "Bench", "--balance", "100000.00", "--json")["api_key"]
    didhub(
        "outbound", "trunk-add", "a", "--host", "127.0.0.1:5091", "--prefix", "1", "--cost", "0.01"
    )
    didhub(
        "outbound", "trunk-add", "b", "--host", "127.0.0.1:5092", "--prefix", "1", "--cost", "0.02"
    )
    port = free_port()
    server = subprocess.Popen(
        [DIDHUB, "serve", "--port", str(port), *(() if args.access_log else ("--no-access-log",))],
        env=env,
        cwd=workdir,
        stdout=open(workdir / "didhub.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            wait_healthy(str(client.base_url).rstrip("/"))
            tenant = client.post("/tenants", json={"name": "T"}).json()["data"]["id"]
            agent = client.post("/agents", json={"tenant_id": tenant, "name": "A"}).json()["data"]
            found = client.post(
                "/telephony/numbers/search", json={"area_code": "501", "page_size": 1}
            ).json()["data"][0]["phone_number"]
            bought = client.post("/telephony/numbers/purchase", json={"phone_numbers": [found]})
            number_id = bought.json()["data"][0]["id"]
            client.post(
                "/telephony/numbers/assign",
                json={
                    "number_id": number_id,
                    "agent_id": agent["id"],
                    "assignment_type": "outbound",
                },
            ).raise_for_status()
            cred = client.post(f"/agents/{agent['id']}/sip-credential").json()["data"]
            # Every guard on, so each lookup checks them all (the money from the funds cache).
            client.patch(
                f"/tenants/{tenant}/outbound/settings",
                json={
                    "daily_spend_limit": "1000.00",
                    "max_concurrent_calls": 50,
                    "allowed_ips": ["127.0.0.0/8"],
                    "denied_number_types": ["premium"],
                },
            ).raise_for_status()

        if args.wrk:
            probe = {
                "username": cred["username"],
                "destination": "+15015550100",
                "caller": found,
                "source_ip": "127.0.0.1",
            }
            routed = httpx.post(f"{base}/routing/outbound", json=probe).json()["data"]
            assert routed["action"] == "route", routed
            result = _wrk(base, workdir, cred["username"], found, args.wrk)
            result["database"] = url.split(":")[0]
            result["access_log"] = args.access_log
            print(json.dumps(result, indent=2))
            return
        per_thread = args.requests // args.threads
        latencies: list[float] = []
        lock = threading.Lock()

        def run() -> None:
            mine: list[float] = []
            with httpx.Client(base_url=base, timeout=30) as edge:
                for _ in range(per_thread):
                    body = {
                        "username": cred["username"],
                        "destination": f"+1501555{random.randrange(10000):04d}",
                        "caller": found,
                        "source_ip": "127.0.0.1",
                    }
                    t0 = time.perf_counter()
                    answer = edge.post("/routing/outbound", json=body)
                    mine.append(time.perf_counter() - t0)
                    assert answer.json()["data"]["action"] == "route", answer.text
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=run) for _ in range(args.threads)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        result = summarise("outbound lookup (api)", latencies, elapsed)
        result["database"] = url.split(":")[0]
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait(10)


# As bench_routing.py's: a C client costs the 2-core machine a fraction of what a
# Python one would, so the figures are the server's.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format(
    '{"username":"%s","destination":"+1501555%%04d","caller":"%s","source_ip":"127.0.0.1"}',
    math.random(0, 9999))
  return wrk.format("POST", "/routing/outbound", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _wrk(base: str, workdir: Path, username: str, caller: str, seconds: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("--wrk needs wrk: apt-get install -y wrk")
    script = workdir / "outbound.lua"
    script.write_text(WRK_SCRIPT % (username, caller))
    args = [wrk, "-t1", "-c8", f"-s{script}", base]
    subprocess.run([*args, "-d2s"], check=True, capture_output=True)  # warm-up
    out = subprocess.run(
        [*args, f"-d{seconds}s"], check=True, capture_output=True, text=True
    ).stdout
    requests, duration_us, errors, p50, p95, p99, most = (
        int(v) for v in out.split("RESULT ", 1)[1].split()
    )
    if errors:
        raise SystemExit(f"{errors} lookups failed:\n{out}")
    return {
        "benchmark": "outbound lookup (api, wrk, 8 connections)",
        "requests": requests,
        "per_second": round(requests / (duration_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 2),
        "p95_ms": round(p95 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "max_ms": round(most / 1000, 2),
    }


if __name__ == "__main__":
    main()
