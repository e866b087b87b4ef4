"""The sandbox carrier's porting state is the database's, not a process's:
a port submitted through one server is followed by another (and by the CLI,
a process of its own), ids never collide, and two processes looking at a
port at once move it once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Acct
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.base import PortOrderState
from didhub.carriers.models import SandboxAllocation
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from portflow import BELL, WIRELESS, documents_in_tmp, foc_date, ready_order  # noqa: F401


def _submit(client: TestClient, partner: Acct, tenant_id: str, numbers: list[str]) -> dict:  # type: ignore[type-arg]
    order = ready_order(client, partner, tenant_id, numbers)
    chosen = foc_date(client, partner, order["id"])
    answer = client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    assert answer.status_code == 200, answer.text
    data: dict = answer.json()["data"]  # type: ignore[type-arg]
    return data


def test_a_port_submitted_on_one_server_is_followed_on_another(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    # A second server: its own sandbox carrier object, the same database.
    other = TestClient(create_app(settings, db, SandboxCarrier(db, seed="test")))
    first = _submit(client, partner, tenant.id, [BELL])
    second = _submit(other, partner, tenant.id, [WIRELESS])
    ids = [c["carrier_order_id"] for o in (first, second) for c in o["carrier_orders"]]
    assert len(set(ids)) == 2  # no per-process counter: never the same id twice

    # Each server follows the other's port.
    for server, order in ((other, first), (client, second)):
        seen = server.post(f"/porting/orders/{order['id']}/refresh", headers=partner.headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["data"]["status"] == "foc_confirmed"

    # On the FOC date the number arrives, whichever server looks.
    day = date.fromisoformat(first["foc_date_requested"])
    clock.set_clock(lambda: datetime(day.year, day.month, day.day, 15, tzinfo=UTC))
    done = other.post(f"/porting/orders/{first['id']}/refresh", headers=partner.headers)
    assert done.json()["data"]["status"] == "ported"
    number = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    assert [n["phone_number"] for n in number] == [BELL]


def test_the_cli_follows_a_port_the_server_submitted(
    client: TestClient,
    database_url: str,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    tmp_path: Path,
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = _submit(client, partner, tenant.id, [BELL])
    env = {
        **os.environ,
        "DIDHUB_DATABASE_URL": database_url,
        "DIDHUB_SANDBOX_SEED": "test",
        "DIDHUB_SANDBOX_PORT_STEP_SECONDS": "0",
        "DIDHUB_DATA_DIR": str(tmp_path / "cli"),
    }
    env.pop("DIDHUB_API_KEY", None)
    didhub = Path(sys.executable).parent / "didhub"
    done = subprocess.run(
        [str(didhub), "port", "refresh", order["id"], "--key", partner.key, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "foc_confirmed"
    # And the server sees what the CLI's look recorded.
    again = client.get(f"/porting/orders/{order['id']}", headers=partner.headers)
    assert again.json()["data"]["status"] == "foc_confirmed"


def test_two_processes_looking_at_once_move_a_port_once(
    client: TestClient,
    db: Database,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = _submit(client, partner, tenant.id, [BELL])
    carrier_order = order["carrier_orders"][0]["carrier_order_id"]
    day = date.fromisoformat(order["foc_date_requested"])
    clock.set_clock(lambda: datetime(day.year, day.month, day.day, 15, tzinfo=UTC))
    sandboxes = [SandboxCarrier(db, seed="test").porting for _ in range(4)]
    barrier = threading.Barrier(len(sandboxes))
    seen: list[PortOrderState | BaseException] = []

    def look(i: int) -> None:
        barrier.wait()
        try:
            seen.append(sandboxes[i].port_status(carrier_order))
        except BaseException as exc:  # reported below
            seen.append(exc)

    threads = [threading.Thread(target=look, args=(i,)) for i in range(len(sandboxes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [s.status if isinstance(s, PortOrderState) else repr(s) for s in seen] == [
        "ported"
    ] * len(sandboxes)
    with db.read_session() as session:
        held = session.scalar(
            select(func.count())
            .select_from(SandboxAllocation)
            .where(SandboxAllocation.e164 == BELL, SandboxAllocation.status == "active")
        )
    assert held == 1
