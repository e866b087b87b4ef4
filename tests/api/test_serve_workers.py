"""``didhub serve --workers N`` (api/workers.py): several API processes on one
port whose in-memory caches see each other's changes at once, the periodic
jobs run in one process of their own, and /metrics adding up every process.

The route cache's poll is set to 30 s here, so only the shared commit counts
(epochs.py) can explain a change seen at once by another worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Acct
from didhub.db import Database
from didhub.epochs import SharedEpochs, create_shared
from sip_edge import Didhub, didhub_server, wait_for

EDGE_TOKEN = "edge-token-for-the-workers-test-0123456789"
EDGE = {"Authorization": f"Bearer {EDGE_TOKEN}"}


@pytest.fixture
def served(db: Database, database_url: str, tmp_path: Path) -> Iterator[Didhub]:
    with didhub_server(
        database_url,
        tmp_path,
        ("--workers", "2", "--no-access-log"),
        DIDHUB_ROUTING_CACHE_SECONDS="30",
        DIDHUB_WEBHOOK_SECONDS="0.2",
        DIDHUB_EDGE_TOKEN=EDGE_TOKEN,
    ) as server:
        yield server


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        found.update(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


def _socket_owner(pids: set[int], server_port: int, client_port: int) -> int:
    """The process holding the server end of the loopback connection from
    ``client_port`` (from /proc/net/tcp and each process's open files)."""
    wanted = (f":{server_port:04X}", f":{client_port:04X}")
    inode = next(
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())
        and fields[1].endswith(wanted[0])
        and fields[2].endswith(wanted[1])
    )
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:
                continue
    raise AssertionError(f"no worker holds socket {inode}")


def _one_per_worker(server: Didhub, headers: dict[str, str]) -> tuple[Any, ...]:
    """Two keep-alive clients whose connections two different workers took."""
    workers = _children(server.process.pid)
    port = int(server.url.rsplit(":", 1)[1])
    by_worker: dict[int, httpx.Client] = {}
    for _ in range(200):  # which worker accepts is the kernel's choice
        client = httpx.Client(base_url=server.url, headers=headers, timeout=10)
        answer = client.get("/health")
        _, client_port = answer.extensions["network_stream"].get_extra_info("client_addr")
        owner = _socket_owner(workers, port, client_port)
        if owner in by_worker:
            client.close()
            continue
        by_worker[owner] = client
        if len(by_worker) == 2:
            return tuple(by_worker.values())
    raise AssertionError(f"200 connections all went to {list(by_worker)}")


def test_a_change_through_one_worker_is_seen_by_another_at_once(
    served: Didhub, partner: Acct
) -> None:
    first, second = _one_per_worker(served, partner.headers)
    try:
        # Both workers keep the key's scope (the partner, no tenants yet).
        for client in (first, second):
            assert client.get("/tenants").json()["data"] == []
        tenant = first.post("/tenants", json={"name": "Clinic"}).json()["data"]
        # The scope grew through the first worker: the second answers at once.
        assert second.get(f"/tenants/{tenant['id']}/settings").status_code == 200

        number = first.post(
            "/telephony/numbers/search", json={"area_code": "501", "page_size": 1}
        ).json()["data"][0]["phone_number"]
        bought = first.post("/telephony/numbers/purchase", json={"phone_numbers": [number]})
        number_id = bought.json()["data"][0]["id"]
        route = second.get(f"/routing/inbound/{number}", headers=EDGE).json()["data"]
        assert route["action"] != "agent"  # kept by the second worker
        agent = first.post(
            "/agents",
            json={"tenant_id": tenant["id"], "name": "Desk", "sip_uri": "sip:desk@192.0.2.10"},
        ).json()["data"]
        assigned = first.post(
            "/telephony/numbers/assign",
            json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        )
        assert assigned.status_code == 200, assigned.text
        route = second.get(f"/routing/inbound/{number}", headers=EDGE).json()["data"]
        assert (route["action"], route["sip_uri"]) == ("agent", "sip:desk@192.0.2.10")
    finally:
        first.close()
        second.close()


def test_the_jobs_run_in_one_process_and_metrics_add_up_every_process(
    served: Didhub, partner: Acct
) -> None:
    processes = _children(served.process.pid)
    assert len(processes) >= 3  # two API workers and the jobs (and spawn's tracker)

    def job_runs() -> float:
        text = httpx.get(f"{served.url}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('didhub_job_runs_total{job="webhooks.deliver"}')
        )

    # The workers run no jobs: the count any worker shows is the jobs process's.
    wait_for(lambda: job_runs() >= 3, 20, "the webhook job's runs in /metrics")
    requests = []
    for _ in range(6):
        text = httpx.get(f"{served.url}/metrics", timeout=5).text
        requests.append(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("didhub_http_requests_total{")
            )
        )
    # Each scrape counts the ones before it, whichever worker answered them.
    assert requests == sorted(requests) and requests[-1] >= requests[0] + 5


def test_stopping_serve_stops_every_process(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    run = tmp_path / "tmp"  # where serve keeps its shared counts and metrics
    run.mkdir()
    with didhub_server(database_url, tmp_path, ("--workers", "2"), TMPDIR=str(run)) as server:
        assert [d.name.startswith("didhub-serve-") for d in run.iterdir()] == [True]
        processes = _children(server.process.pid)
        assert processes
        server.stop()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in processes):
        time.sleep(0.1)
    alive = [p for p in processes if Path(f"/proc/{p}").exists()]
    assert alive == [], Path(tmp_path / "didhub.log").read_text()
    assert list(run.iterdir()) == []  # removed


def test_shared_counts_add_up_every_process_and_a_dead_ones_slot_is_reused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "epochs"
    create_shared(path, 2)
    here = SharedEpochs(path)
    counted = subprocess.run(
        [sys.executable, "-c", _COUNT_ELSEWHERE, str(path)], capture_output=True, text=True
    )
    assert counted.returncode == 0, counted.stderr
    here.add("routing")
    # The ended process's counts stay.
    assert (here.count("routing"), here.count("money")) == (3 + 1, 5)
    # Its slot is free again; a third live process finds none left.
    again = SharedEpochs(path)
    again.add("money")
    assert (here.count("routing"), here.count("money")) == (4, 6)
    with pytest.raises(RuntimeError, match="no free slot"):
        SharedEpochs(path)


_COUNT_ELSEWHERE = """
import sys
from pathlib import Path
from didhub.epochs import SharedEpochs
e = SharedEpochs(Path(sys.argv[1]))
for _ in range(3): e.add("routing")
for _ in range(5): e.add("money")
"""


def test_processes_starting_at_once_read_one_generated_secret(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from didhub import keyfile;"
        "print(keyfile.read_or_create(Path(sys.argv[1]), 'a secret', 'DIDHUB_X'))"
    )
    target = tmp_path / "secret.key"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    secrets = {process.communicate(timeout=30)[0].strip() for process in started}
    assert secrets == {target.read_text().strip()}
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # nothing left aside
