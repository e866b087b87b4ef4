"""Routing lookups per second: through the HTTP API and through Kamailio.

Starts ``didhub serve`` on a fresh database with ``--numbers`` numbers (half
routed to agents with SIP URIs, half unassigned), then measures:

- ``api``: ``GET /routing/inbound/{e164}`` from ``--connections`` concurrent
  keep-alive connections (an asyncio client in ``--processes`` processes),
  for ``--seconds`` seconds, random numbers;
- ``edge (cache miss)`` / ``edge (cache hit)``: SIP OPTIONS probes to the
  numbers through Kamailio (deploy/kamailio/kamailio.cfg), which answers each
  with the routing decision: the first round asks didhub for every number, the
  second is served from the edge's 5-second cache. ``--window`` probes are in
  flight at once.

Run by hand (needs kamailio and sipp's host tools as for tests/test_sip_edge.py):

    .venv/bin/python bench/bench_routing.py
    .venv/bin/python bench/bench_routing.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/didhub_bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import secrets
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
from bench_api import DIDHUB, summarise  # noqa: E402

from didhub.edge import options_request  # noqa: E402
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


async def _api_worker(
    base: str, numbers: list[str], connections: int, seconds: float
) -> list[float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            rng = random.Random()
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.get(f"/routing/inbound/{rng.choice(numbers)}")
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(loop() for _ in range(connections)))
    return latencies


def _api_process(args: tuple[str, list[str], int, float]) -> list[float]:
    return asyncio.run(_api_worker(*args))


def bench_api(base: str, numbers: list[str], processes: int, conns: int, secs: float) -> Any:
    _api_process((base, numbers, 2, 2.0))  # warm-up
    start = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        parts = pool.map(_api_process, [(base, numbers, conns, secs)] * processes)
    elapsed = time.perf_counter() - start
    return summarise("api", [x for p in parts for x in p], elapsed)


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
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16, help="per process")
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="didhub-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    if not url.startswith("sqlite"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    numbers = seed(url, args.numbers)
    results = []
    with didhub_server(url, workdir) as server:
        results.append(
            bench_api(server.url, numbers, args.processes, args.connections, args.seconds)
        )
        with kamailio(server.url, workdir) as edge:
            results.append(bench_edge(edge.address, numbers, args.window, "edge (cache miss)"))
            results.append(bench_edge(edge.address, numbers, args.window, "edge (cache hit)"))
    print(
        json.dumps(
            {
                "database": "sqlite" if url.startswith("sqlite") else "postgresql",
                "numbers": len(numbers),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
