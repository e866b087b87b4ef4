"""Reading is cheap: a GET never queues behind a writer (SQLite's write lock)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import Acct, buy, search_numbers
from didhub import clock
from didhub.accounts import service as accounts
from didhub.db import Database
from test_web import PASSWORD, sign_in

ON_SQLITE = not os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql")


@contextmanager
def writer_holding_the_lock(db: Database) -> Iterator[None]:
    """Another request in the middle of a write transaction (on SQLite: it holds
    the database's one write lock until it ends)."""
    with db.session() as session:
        session.connection()  # BEGIN IMMEDIATE happens here
        yield


def answered_beside_a_writer(db: Database, request: Callable[[], httpx.Response]) -> int:
    """The status of ``request`` made while a writer holds the lock; fails if it
    had to wait for the writer (it answers only once the writer ends)."""
    answer: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: answer.append(request()), daemon=True)
    with writer_holding_the_lock(db):
        worker.start()
        worker.join(timeout=5)
        waited = worker.is_alive()
    worker.join(timeout=70)
    assert not waited, "the read waited for the writer's lock"
    return answer[0].status_code


def _setup_account(client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]) -> str:
    tenant = make_tenant("Clinic", partner.id)
    found = search_numbers(client, partner, area_code="512", page_size=2)
    bought = buy(client, partner, *[f["phone_number"] for f in found])["data"]
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Desk"}, headers=partner.headers
    ).json()["data"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": bought[0]["id"], "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assigned.status_code == 200, assigned.text
    number_id: str = bought[0]["id"]
    return number_id


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite's write lock; PostgreSQL reads never wait")
def test_api_reads_do_not_wait_for_a_writer(
    client: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    number_id = _setup_account(client, partner, make_tenant)
    month = clock.now().strftime("%Y-%m")
    paths = [
        "/telephony/numbers",
        f"/telephony/numbers/{number_id}",
        f"/telephony/numbers/{number_id}/e911",
        "/billing/wallet",
        "/billing/card",
        "/billing/events",
        "/billing/transactions",
        "/billing/invoices",
        f"/billing/invoices/{month}",
        "/billing/retail-prices",
        "/billing/margin",
        "/tenants",
        "/agents",
        "/settings",
        "/webhooks",
        "/events",
        "/e911/addresses",
        "/e911/locations",
        "/compliance/e911",
    ]
    for path in paths:
        status = answered_beside_a_writer(
            db, lambda path=path: client.get(path, headers=partner.headers)
        )
        assert status == (404 if path == "/billing/card" else 200), path
    # A revoked key is refused just as quickly.
    with db.session() as session:
        key = accounts.find_key(session, partner.key)
        accounts.revoke_api_key(session, key.id)
    assert (
        answered_beside_a_writer(db, lambda: client.get("/billing/wallet", headers=partner.headers))
        == 401
    )


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite's write lock; PostgreSQL reads never wait")
def test_dashboard_pages_do_not_wait_for_a_writer(
    client: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    number_id = _setup_account(client, partner, make_tenant)
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", PASSWORD)
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    for path in (
        "/dashboard/numbers/inventory",
        "/dashboard/dids",
        "/dashboard/tenants",
        "/dashboard/agents",
        "/dashboard/billing",
        "/dashboard/settings",
        f"/dashboard/numbers/{number_id}/assign",
        f"/dashboard/numbers/{number_id}/release",
        f"/dashboard/numbers/{number_id}/route",
        f"/dashboard/numbers/{number_id}/edit",
    ):
        status = answered_beside_a_writer(db, lambda path=path: client.get(path))
        assert status == 200, path


def test_a_write_in_a_read_session_is_refused_before_it_reaches_the_database(
    db: Database, partner: Acct
) -> None:
    """So no read path can quietly start needing the write lock again."""
    with pytest.raises(RuntimeError, match="read-only session"), db.read_session() as session:
        session.execute(text("UPDATE accounts SET name = 'x'"))
    with db.session() as session:
        assert accounts.find_key(session, partner.key).account_id == partner.id
