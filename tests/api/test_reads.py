"""Reading is cheap: a GET never queues behind a writer (SQLite's write lock),
and a page of numbers costs the same few SQL statements however many tenants,
agents, caller names and E911 addresses it shows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import Acct, buy, search_numbers, sent_statements, transaction_ends
from dashboard import PASSWORD, sign_in
from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts.models import AccountSettings
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.e911.models import NumberE911
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.numbers import views as numbers_views
from didhub.tenancy import PARTNER, Scope

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


def test_a_read_that_answers_an_error_commits_and_a_database_error_rolls_back(
    client: TestClient, db: Database, partner: Acct
) -> None:
    """psycopg forgets every statement it prepared on a connection at each
    ROLLBACK: a read answering 404, or 401 for an unknown key, commits what
    it read (it wrote nothing); only a database error rolls back."""
    with transaction_ends(db.engine) as ended:
        missing = client.get("/telephony/numbers/num_missing", headers=partner.headers)
        assert missing.status_code == 404, missing.text
        unknown = client.get("/telephony/numbers", headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 401, unknown.text
        assert "rollback" not in ended and "commit" in ended, ended
        ended.clear()
        with pytest.raises(DBAPIError), db.read_session() as session:
            session.execute(text("SELECT * FROM no_such_table"))
        assert ended == ["rollback"]


# ------------------------------------------------------------------ statements per page


def counted(db: Database) -> AbstractContextManager[list[str]]:
    # SQLite's BEGIN, sent by db.py, is not counted; PostgreSQL's goes unseen.
    return sent_statements(db, lambda statement: statement != "BEGIN")


def _fifty_numbers_serving_fifty_tenants(
    client: TestClient, db: Database, partner: Acct
) -> list[str]:
    found = search_numbers(client, partner, area_code="720", page_size=50)
    assert len(found) == 50
    bought = buy(client, partner, *[f["phone_number"] for f in found])["data"]
    address = client.post(
        "/e911/addresses",
        json={
            "street": "123 North Main Street",
            "city": "Little Rock",
            "state": "AR",
            "postal_code": "72201",
            "caller_name": "Acme",
        },
        headers=partner.headers,
    )
    assert address.status_code == 201, address.text
    scope = Scope(partner.id, PARTNER)
    with db.session() as session:
        for i, number in enumerate(bought):
            tenant = accounts.create_tenant(session, f"Tenant {i}", "USD", partner.id)
            if i % 2:  # half inherit their tenant's caller name, half the partner's
                session.add(
                    AccountSettings(
                        account_id=tenant.id, default_cnam=f"TENANT {i}", updated_at=clock.now()
                    )
                )
            numbers.set_tenant(session, scope, number["id"], tenant.id)
            agent = accounts.create_agent(session, scope, tenant.id, f"Agent {i}", None)
            numbers.assign_agent(session, scope, number["id"], agent.id, "inbound")
            numbers.assign_agent(session, scope, number["id"], agent.id, "outbound")
            if i % 3 == 0:
                cnam.set_own_name(session, scope, number["id"], f"OWN {i}")
            session.add(
                NumberE911(
                    number_id=number["id"],
                    address_id=address.json()["data"]["id"],
                    status="provisioned",
                    updated_at=clock.now(),
                )
            )
        session.add(
            AccountSettings(account_id=partner.id, default_cnam="ACME", updated_at=clock.now())
        )
    return [n["id"] for n in bought]


def test_a_page_of_numbers_costs_the_same_few_statements_at_any_size(
    client: TestClient, db: Database, partner: Acct
) -> None:
    ids = _fifty_numbers_serving_fifty_tenants(client, db, partner)
    # The key seen once: its scope is kept (api/deps.py), read from memory after
    # (its cache polling rarely: a poll is its thread's work in `didhub serve`,
    # not the page's).
    client.app.state.ctx.scopes.poll_seconds = 60  # type: ignore[attr-defined]
    assert client.get("/telephony/numbers", headers=partner.headers).status_code == 200
    costs = {}
    for limit in (10, 50):
        with counted(db) as statements:
            page = client.get(
                "/telephony/numbers", params={"limit": limit}, headers=partner.headers
            )
        assert page.status_code == 200
        data = page.json()["data"]
        assert len(data) == limit
        costs[limit] = len(statements)
        # What the page shows is each number's own: its tenant, agents, name, address.
        for shown in data:
            assert shown["tenant_name"].startswith("Tenant ")
            assert shown["assignments"]["inbound"]["agent_name"].startswith("Agent ")
            assert shown["e911"]["status"] == "provisioned"
            i = int(shown["tenant_name"].split()[1])
            expected = f"OWN {i}" if i % 3 == 0 else f"TENANT {i}" if i % 2 else "ACME"
            assert shown["cnam"]["name"] == expected
    # The page; its assignments, tenants, agents, caller-name listings, inherited
    # names (accounts, their settings) and E911 states (the key's scope: from memory).
    assert costs[10] == costs[50] <= 8, costs
    assert sorted(
        n["id"]
        for n in client.get(
            "/telephony/numbers", params={"limit": 50}, headers=partner.headers
        ).json()["data"]
    ) == sorted(ids)


def test_the_dashboard_inventory_costs_the_same_few_statements_at_any_size(
    settings: Settings,
    db: Database,
    carrier: SandboxCarrier,
    partner: Acct,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing kept across requests (the directory's answers, the inherited
    # caller names): what is counted is what a page reads when nothing is.
    cold = settings.model_copy(update={"routing_cache_seconds": 0})
    client = TestClient(create_app(cold, db, carrier))
    _fifty_numbers_serving_fifty_tenants(client, db, partner)
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", PASSWORD)
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    costs = {}
    for limit in (10, 50):
        monkeypatch.setattr(numbers_views, "INVENTORY_PAGE", limit)
        with counted(db) as statements:
            page = client.get("/dashboard/numbers/inventory")
        assert page.status_code == 200
        assert page.text.count("Tenant ") >= limit
        costs[limit] = len(statements)
    # As the API's page, with the viewer and the tenant picker.
    # 15: the session is checked open on the server, and the scope reads its
    # accessible accounts once (then no query asks the accounts table again).
    assert costs[10] == costs[50] <= 15, costs
