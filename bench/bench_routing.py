"""Routing lookups per second: through the HTTP API and through Kamailio.

Starts ``didhub serve`` on a fresh database with ``--numbers`` numbers (half
routed to agents with SIP URIs, half unassigned), then measures:

- ``api``: ``GET /routing/inbound/{e164}`` for random numbers, sent by wrk
  over each of ``--connections`` counts of keep-alive connections (one run of
  ``--seconds`` each), with the server's access log off unless ``--access-log``;
- ``edge (cache miss)`` / ``edge (cache hit)``: SIP OPTIONS probes to the
  numbers through Kamailio (deploy/kamailio/kamailio.cfg), which answers each
  with the routing decision: the first round asks didhub for every number, the
  second is served from the edge's 5-second cache. ``--window`` probes are in
  flight at once;
- ``api, no cache``: the API again on a server started with
  ``DIDHUB_ROUTING_CACHE_SECONDS=0``, so that every lookup reads the database
  (as right after a route changes, until the numbers called are cached again).

Run by hand (needs wrk, and kamailio and sipp's host tools as for
tests/test_sip_edge.py: ``apt-get install -y wrk``):

    .venv/bin/python bench/bench_routing.py
    .venv/bin/python bench/bench_routing.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_api import DIDHUB, fresh_database, summarise  # noqa: E402

from didhub.routing.edge_check import options_request  # noqa: E402
from sip_edge import didhub_server, kamailio  # noqa: E402


def seed(url: str, numbers: int) -> list[str]:
    """A partner, a tenant, two agents, ``numbers`` numbers: half routed."""
    env = {**os.environ, "DIDHUB_DATABASE_URL": url}
    subprocess.run([DIDHUB, "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [DIDHUB, "partner", "create", "Bench", "--balance", "100000.00", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(made.stdout)["api_key"]
    with didhub_server(url, Path(tempfile.mkdtemp(prefix="didhub-seed-"))) as server:
        h = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
            tenant = c.post("/tenants", json={"name": "Bench tenant"}).json()["data"]["id"]
            agent = c.post(
                "/agents",
                json={"tenant_id": tenant, "name": "Desk", "sip_uri": "sip:desk@192.0.2.10"},
            ).json()["data"]["id"]
            bought: list[dict[str, Any]] = []
            page = 1
            while len(bought) < numbers:
                found = c.post(
                    "/telephony/numbers/search",
                    json={"administrative_area": "TX", "page_size": 50, "page": page},
                ).json()["data"]
                page += 1
                wanted = [f["phone_number"] for f in found][: numbers - len(bought)]
                r = c.post("/telephony/numbers/purchase", json={"phone_numbers": wanted})
                r.raise_for_status()
                bought += r.json()["data"]
            for n in bought[: numbers // 2]:
                c.post(
                    "/telephony/numbers/assign",
                    json={"number_id": n["id"], "agent_id": agent, "assignment_type": "inbound"},
                ).raise_for_status()
    return [n["phone_number"] for n in bought]


# ------------------------------------------------------------------ API


def edge_token(workdir: Path) -> str:
    """The token the didhub serve running in ``workdir`` generated for the edge."""
    return (workdir / "didhub-edge.token").read_text().strip()


# wrk (Debian's package) sends the lookups: a C client costs the 2-core machine
# a fraction of what a Python one would, so the figures are the server's. Each
# request asks for a random number of the seeded ones.
WRK_SCRIPT = """
numbers = {%s}
headers = {["Authorization"] = "Bearer %s"}
request = function()
  return wrk.format("GET", "/routing/inbound/" .. numbers[math.random(#numbers)], headers)
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency:percentile(99.9), latency.max, summary.errors.status))
end
"""


def bench_api(
    base: str,
    numbers: list[str],
    threads: int,
    connections: int,
    seconds: int,
    workdir: Path,
    name: str = "api",
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("bench_routing needs wrk: apt-get install -y wrk")
    script = workdir / "lookups.lua"
    script.write_text(WRK_SCRIPT % (", ".join(f'"{n}"' for n in numbers), edge_token(workdir)))
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-s{script}", base]
    subprocess.run([*args, "-d2s"], check=True, capture_output=True)  # warm-up
    out = subprocess.run(
        [*args, f"-d{int(seconds)}s"], check=True, capture_output=True, text=True
    ).stdout
    fields = [int(v) for v in out.split("RESULT ", 1)[1].split()]
    requests, duration_us, errors, p50, p95, p99, p999, most, bad_status = fields
    if errors or bad_status:
        raise SystemExit(f"{errors} lookups failed ({bad_status} not 200):\n{out}")
    return {
        "benchmark": f"{name}, {connections} connections",
        "requests": requests,
        "per_second": round(requests / (duration_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 2),
        "p95_ms": round(p95 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "p99.9_ms": round(p999 / 1000, 2),
        "max_ms": round(most / 1000, 2),
    }


# ------------------------------------------------------------------ edge


def bench_edge(address: str, numbers: list[str], window: int, name: str) -> Any:
    host, port = address.split(":")
    edge = (host, int(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    pending = list(numbers)
    codes: dict[str, int] = {}
    start = time.perf_counter()
    while pending or sent:
        while pending and len(sent) < window:
            tag = secrets.token_hex(6)
            sent[tag] = time.perf_counter()
            target = f"{pending.pop()}@{host}:{port}"
            sock.sendto(options_request(target, sock.getsockname(), tag), edge)
        data = sock.recv(65535).decode(errors="replace")
        code = data.split(" ", 2)[1]
        codes[code] = codes.get(code, 0) + 1
        tag = data.split("Call-ID: ", 1)[1].split("@", 1)[0]
        latencies.append(time.perf_counter() - sent.pop(tag))
    elapsed = time.perf_counter() - start
    sock.close()
    result = summarise(name, latencies, elapsed)
    result["answers"] = codes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL: its schema is emptied")
    parser.add_argument("--numbers", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument(
        "--connections",
        default="4,8,16,32",
        help="lookups in flight at once, one run each (an edge has a lookup in flight per worker)",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="serve with a log line per request"
    )
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()

    workdir, url = fresh_database(args.database_url)
    numbers = seed(url, args.numbers)
    results = []
    serve_args = () if args.access_log else ("--no-access-log",)
    with didhub_server(url, workdir, serve_args) as server:
        for connections in (int(c) for c in args.connections.split(",")):
            results.append(
                bench_api(server.url, numbers, args.threads, connections, args.seconds, workdir)
            )
        with kamailio(server.url, workdir) as edge:
            results.append(bench_edge(edge.address, numbers, args.window, "edge (cache miss)"))
            results.append(bench_edge(edge.address, numbers, args.window, "edge (cache hit)"))
    # Every lookup worked out afresh: what the API does right after a route
    # changes, until the numbers being called are cached again.
    with didhub_server(url, workdir, serve_args, DIDHUB_ROUTING_CACHE_SECONDS="0") as server:
        results.append(
            bench_api(server.url, numbers, args.threads, 8, args.seconds, workdir, "api, no cache")
        )
    print(
        json.dumps(
            {
                "database": "sqlite" if url.startswith("sqlite") else "postgresql",
                "numbers": len(numbers),
                "access_log": args.access_log,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
