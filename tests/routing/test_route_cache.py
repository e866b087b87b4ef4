"""The route cache behind ``GET /routing/inbound/{e164}`` (routing/cache.py):
a repeated lookup reads no database, and no change to a route is missed,
whether it is made through this server, committed by another process, or
committed while an answer was being worked out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update

from conftest import Acct, buy, search_numbers, transaction_ends
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers.models import PhoneNumber
from didhub.routing.cache import Generations, RouteCache
from didhub.routing.models import RoutingGeneration

DIDHUB = shutil.which("didhub", path=str(Path(sys.executable).parent)) or "didhub"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL sent while the block runs, the cache's own generation polls left
    out (their SELECT, and on SQLite the BEGIN of their read transaction: a
    lookup worked out again shows its SELECTs anyway)."""
    sent: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "routing_generation" not in statement and statement.strip().upper() != "BEGIN":
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def generation(db: Database) -> int:
    with db.session() as session:
        value = session.scalar(
            select(RoutingGeneration.generation).where(RoutingGeneration.id == 1)
        )
    assert value is not None
    return value


@pytest.fixture
def tenant_number(client: TestClient, partner: Acct) -> tuple[str, str, str]:
    """A tenant of ``partner`` and a number of the partner's given to it."""
    tenant = client.post("/tenants", json={"name": "Clinic"}, headers=partner.headers)
    tenant_id = tenant.json()["data"]["id"]
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    given = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": tenant_id}, headers=partner.headers
    )
    assert given.status_code == 200, given.text
    return tenant_id, number_id, number


def test_a_repeated_lookup_is_answered_from_memory(
    client: TestClient, db: Database, tenant_number: tuple[str, str, str]
) -> None:
    number = tenant_number[2]
    first = client.get(f"/routing/inbound/{number}")
    assert first.status_code == 200 and first.json()["data"]["action"] == "announcement"
    with statements(db) as sent:
        again = client.get(f"/routing/inbound/{number}")
    assert sent == []
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"

    # A number we don't hold: the same 404 from memory.
    unknown = client.get("/routing/inbound/+14155550123")
    with statements(db) as sent:
        unknown_again = client.get("/routing/inbound/+14155550123")
    assert sent == []
    assert unknown_again.status_code == unknown.status_code == 404
    assert unknown_again.json() == unknown.json()
    assert unknown.json()["error"]["field"] == "phone_number"

    # A malformed number is refused every time, and never kept.
    for _ in range(2):
        malformed = client.get("/routing/inbound/12")
        assert malformed.status_code == 422
        assert malformed.json()["error"]["field"] == "phone_number"


def test_every_kind_of_route_change_through_the_api_is_routed_at_once(
    client: TestClient, partner: Acct, tenant_number: tuple[str, str, str]
) -> None:
    tenant_id, number_id, number = tenant_number

    def route() -> dict[str, Any]:
        answer = client.get(f"/routing/inbound/{number}")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    assert route()["action"] == "announcement"
    # The partner's settings, then the tenant's own (nearer) settings.
    partner_reject = client.patch(
        "/settings", json={"unassigned": {"action": "reject"}}, headers=partner.headers
    )
    assert partner_reject.status_code == 200, partner_reject.text
    assert (route()["action"], route()["source"]) == ("reject", "partner")
    tenant_forward = client.patch(
        f"/tenants/{tenant_id}/settings",
        json={"unassigned": {"action": "forward", "destination": "sip:desk@pbx.example.com"}},
        headers=partner.headers,
    )
    assert tenant_forward.status_code == 200, tenant_forward.text
    assert (route()["action"], route()["sip_uri"]) == ("forward", "sip:desk@pbx.example.com")

    # An agent, then its SIP URI moving.
    agent = client.post(
        "/agents",
        json={"tenant_id": tenant_id, "name": "Desk", "sip_uri": "sip:desk@192.0.2.10"},
        headers=partner.headers,
    ).json()["data"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert (route()["action"], route()["sip_uri"]) == ("agent", "sip:desk@192.0.2.10")
    moved = client.patch(
        f"/agents/{agent['id']}", json={"sip_uri": "sip:queue@192.0.2.11"}, headers=partner.headers
    )
    assert moved.status_code == 200, moved.text
    assert route()["sip_uri"] == "sip:queue@192.0.2.11"

    # Released: no longer ours.
    released = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
    )
    assert released.status_code == 200, released.text
    assert client.get(f"/routing/inbound/{number}").status_code == 404


def test_a_number_that_was_not_ours_is_routed_once_bought(
    client: TestClient, partner: Acct
) -> None:
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    assert client.get(f"/routing/inbound/{number}").status_code == 404
    assert client.get(f"/routing/inbound/{number}").status_code == 404  # kept
    buy(client, partner, number)
    bought = client.get(f"/routing/inbound/{number}")
    assert bought.status_code == 200 and bought.json()["data"]["action"] == "announcement"


def test_a_change_committed_by_another_process_is_routed_within_the_poll(
    settings: Settings,
    db: Database,
    carrier: SandboxCarrier,
    partner: Acct,
    database_url: str,
) -> None:
    """``didhub serve`` as deployed (its lifespan polls in a thread), and the
    CLI changing the partner's settings from another process."""
    fast = settings.model_copy(update={"routing_cache_seconds": 0.2})
    with TestClient(create_app(fast, db, carrier)) as client:
        number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
        buy(client, partner, number)
        # A first answer is not kept if a poll moved the cache's generation
        # while it was worked out (the purchase's commits, seen late by the
        # poller under load); the next one is.
        for _ in range(2):
            answer = client.get(f"/routing/inbound/{number}")
            assert answer.json()["data"]["action"] == "announcement"
            time.sleep(0.5)
        with statements(db) as sent:  # several polls later: served from memory
            kept = client.get(f"/routing/inbound/{number}")
        assert sent == [] and kept.json()["data"]["action"] == "announcement"

        env = {**os.environ, "DIDHUB_DATABASE_URL": database_url}
        changed = subprocess.run(
            [DIDHUB, "settings", "set", "--account", partner.id, "--unassigned", "reject"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert changed.returncode == 0, changed.stderr + changed.stdout
        time.sleep(0.2)
        assert client.get(f"/routing/inbound/{number}").json()["data"]["action"] == "reject"


def test_an_answer_worked_out_across_a_change_is_not_kept(
    db: Database, partner: Acct, client: TestClient
) -> None:
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    buy(client, partner, number)
    cache: RouteCache[str] = RouteCache(db, poll_seconds=60)

    def changed_meanwhile() -> str:
        with db.session() as session:  # e.g. an assignment committed mid-lookup
            session.execute(
                update(PhoneNumber).where(PhoneNumber.e164 == number).values(locality="Elsewhere")
            )
        # Meanwhile another lookup (another thread) already sees the change.
        assert cache.get("+14155550123", lambda: "other") == "other"
        return "worked out before the change"

    assert cache.get(number, changed_meanwhile) == "worked out before the change"
    assert cache.get(number, lambda: "after") == "after"  # not kept: worked out again
    assert cache.get(number, lambda: "never asked") == "after"  # kept

    def unrelated_meanwhile() -> str:
        with db.session() as session:  # money moving changes no route
            accounts.fund_wallet(session, partner.id, Decimal("5"), "USD", "test")
        return "kept"

    assert cache.get("+15015550000", unrelated_meanwhile) == "kept"
    assert cache.get("+15015550000", lambda: "never asked") == "kept"


def test_only_committed_writes_to_routing_tables_move_the_generation(
    db: Database, client: TestClient, partner: Acct
) -> None:
    start = generation(db)
    made = client.post("/tenants", json={"name": "Clinic"}, headers=partner.headers)
    assert made.status_code == 201, made.text
    assert generation(db) == start + 1  # one transaction, one step
    with db.session() as session:
        accounts.fund_wallet(session, partner.id, Decimal("5"), "USD", "test")
    assert generation(db) == start + 1  # the ledger is not a routing table
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    buy(client, partner, number)
    bought = generation(db)
    assert bought > start + 1
    # A finished call, reported by the edge, moves money but no route: calls
    # ending don't empty the cache.
    call = {
        "phone_number": number,
        "direction": "inbound",
        "started_at": int(time.time()) - 120,
        "duration_seconds": 65,
        "call_id": "call-1",
    }
    rated = client.post("/billing/usage", json={"records": [call]})
    assert rated.status_code == 200, rated.text
    assert generation(db) == bought

    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(text("UPDATE accounts SET name = 'x' WHERE id = :id"), {"id": partner.id})
        raise RuntimeError("rolled back")
    assert generation(db) == bought


def test_the_edge_token_is_checked_on_an_answer_from_memory(
    settings: Settings, db: Database, carrier: SandboxCarrier
) -> None:
    guarded = settings.model_copy(
        update={"edge_token": "edge-secret-0123456789", "edge_trust_loopback": False}
    )
    client = TestClient(create_app(guarded, db, carrier))
    good = {"Authorization": "Bearer edge-secret-0123456789"}
    url = "/routing/inbound/+14155550123"
    assert client.get(url, headers=good).status_code == 404
    assert client.get(url, headers=good).status_code == 404  # now from memory
    wrong = client.get(url, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert client.get(url).status_code == 401


def test_with_the_cache_off_every_lookup_reads_the_database(
    settings: Settings, db: Database, carrier: SandboxCarrier
) -> None:
    off = settings.model_copy(update={"routing_cache_seconds": 0})
    client = TestClient(create_app(off, db, carrier))
    for _ in range(2):
        with statements(db) as sent:
            assert client.get("/routing/inbound/+14155550123").status_code == 404
        assert sent != []


def test_the_poll_keeps_answering_while_every_pooled_connection_is_busy(
    database_url: str, _migrated: Database
) -> None:
    """Under load every connection of a server's pool is held by a request.
    The caches' poll has connections of its own (``Database.poll_engine``):
    waiting its turn for a pooled one, it made every kept answer stale (half
    the directory lookups of 64 concurrent buyers missed)."""
    db = Database(database_url, pool_size=1, max_overflow=0)
    cache: RouteCache[str] = RouteCache(db, poll_seconds=0.5)
    try:
        with db.session() as session:  # the pool's one connection, held
            session.execute(text("SELECT 1"))
            polled = threading.Thread(target=cache.poll, daemon=True)
            polled.start()
            polled.join(timeout=5)
            assert not polled.is_alive(), "the poll waited for the request pool"
            assert cache.get("key", lambda: "kept") == "kept"
            assert cache.hit("key") == "kept"  # from memory, still holding the pool
    finally:
        db.dispose()


def test_the_poll_commits_and_never_rolls_back(database_url: str, _migrated: Database) -> None:
    """psycopg forgets every statement it prepared on a connection at each
    ROLLBACK (a DEALLOCATE ALL, and the statements parsed and planned afresh):
    the poll, ten a second, commits its read (docs/performance.md, "No
    rollback")."""
    db = Database(database_url)
    polls = Generations(db, poll_seconds=0)  # due at every call
    cache: RouteCache[str] = RouteCache(db, poll_seconds=0, generations=polls)
    try:
        with transaction_ends(db.poll_engine) as ended:
            for _ in range(3):
                cache.poll()
        assert ended == ["commit"] * 3
    finally:
        db.dispose()
