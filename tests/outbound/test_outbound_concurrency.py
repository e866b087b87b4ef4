"""Credential rotation beside outbound lookups on PostgreSQL (issue 15): once a
rotation has committed, no lookup that starts after it answers the old
password's HA1, and nothing fails while they race."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from conftest import Acct
from didhub.config import Settings
from didhub.db import Database
from didhub.outbound import service as outbound
from didhub.routing.cache import RouteCache
from didhub.tenancy import Scope
from outbound.test_outbound_api import agent_with_number, trunks  # noqa: F401

postgres_only = pytest.mark.skipif(
    not os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql"),
    reason="concurrent transactions: SQLite runs one writer at a time",
)


@postgres_only
def test_rotation_racing_lookups_never_answers_a_retired_ha1(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    trunks: None,  # noqa: F811
) -> None:
    tenant = make_tenant("Dental", partner_id=partner.id)
    agent, number, _ = agent_with_number(client, partner, tenant)
    scope = Scope(tenant.id, "tenant")
    with db.session() as session:
        username = outbound.issue_credential(session, settings, scope, agent["id"]).username
    cache: RouteCache[outbound.Snapshot] = RouteCache(db, 0.1)
    committed: list[str] = []  # each rotation's HA1, in commit order
    lock = threading.Lock()
    with db.read_session() as session:
        first = outbound.snapshot(session, username).caller
    assert first is not None
    committed.append(first.ha1)
    stop = threading.Event()
    failures: list[BaseException] = []
    stale: list[tuple[int, int]] = []

    def rotate() -> None:
        try:
            for _ in range(25):
                with db.session() as session:
                    issued = outbound.issue_credential(session, settings, scope, agent["id"])
                with lock:
                    committed.append(outbound.ha1(issued.username, issued.realm, issued.password))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            stop.set()

    def look() -> None:
        try:
            while not stop.is_set():
                with lock:
                    floor = len(committed) - 1  # the latest committed before we start
                decision = outbound.lookup(
                    db, settings, username, "+15015550123", number, kept=cache.get
                )
                assert decision.action == "route", decision
                with lock:
                    index = committed.index(decision.ha1) if decision.ha1 in committed else None
                if index is None:
                    # committed after we read it but not yet recorded: newer, fine
                    continue
                if index < floor:
                    stale.append((index, floor))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=rotate)] + [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert stale == [], f"retired HA1s answered after their rotation committed: {stale[:5]}"
    assert len(committed) == 26
    # And through the API, after the last rotation: the last HA1.
    answer = client.post(
        "/routing/outbound",
        json={"username": username, "destination": "+15015550123", "caller": number},
    )
    assert answer.status_code == 200 and answer.json()["data"]["ha1"] == committed[-1]
