"""API keys' scopes kept in memory (api/deps.py): a key seen once is answered
without the database, and a revocation or a change to the accounts it sees
ends that at once in this process and within DIDHUB_ROUTING_CACHE_SECONDS in
any other (the CLI, another server), here a second Database on the same
database standing in for one."""

from __future__ import annotations

from contextlib import AbstractContextManager

from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, search_numbers, sent_statements, until
from didhub.accounts import service as accounts
from didhub.db import Database
from didhub.routing.models import RoutingGeneration


def statements(db: Database) -> AbstractContextManager[list[str]]:
    return sent_statements(db)


def test_a_key_seen_once_reads_no_key_until_this_server_revokes_it(
    client: TestClient, db: Database, partner: Acct
) -> None:
    assert client.get("/tenants", headers=partner.headers).status_code == 200
    with statements(db) as seen:
        assert client.get("/tenants", headers=partner.headers).status_code == 200
    assert not [s for s in seen if "api_keys" in s], seen
    with db.session() as session:
        accounts.revoke_api_key(session, accounts.find_key(session, partner.key).id)
    # Revoked through this process: refused at the very next request.
    assert client.get("/tenants", headers=partner.headers).status_code == 401


def test_another_process_revoking_a_key_or_adding_a_tenant_is_seen_within_the_poll(
    client: TestClient, db: Database, partner: Acct, database_url: str
) -> None:
    elsewhere = Database(database_url)
    try:
        assert client.get("/tenants", headers=partner.headers).json()["data"] == []
        # Another process adds a tenant under the partner: its scope grows.
        with elsewhere.session() as session:
            tenant = accounts.create_tenant(session, "Elsewhere Inc", "USD", partner.id)
        assert until(
            lambda: (
                client.get(f"/tenants/{tenant.id}/settings", headers=partner.headers).status_code
                == 200
            )
        )
        # Another process revokes the key: refused within the poll.
        with elsewhere.session() as session:
            accounts.revoke_api_key(session, accounts.find_key(session, partner.key).id)
        assert until(lambda: client.get("/tenants", headers=partner.headers).status_code == 401)
    finally:
        elsewhere.engine.dispose()


def test_an_unknown_key_is_never_kept(client: TestClient, db: Database) -> None:
    for _ in range(2):
        with statements(db) as seen:
            answer = client.get("/tenants", headers={"Authorization": "Bearer dh_nope"})
        assert answer.status_code == 401
        assert [s for s in seen if "api_keys" in s]  # asked of the database each time


def test_a_purchase_or_an_assignment_keeps_the_keys(
    client: TestClient, db: Database, partner: Acct
) -> None:
    # Kept keys watch the directory tables (db.DIRECTORY_TABLES), not the
    # routing tables every purchase writes: a stream of purchases by one key
    # reads the key once, not once per purchase.
    numbers = search_numbers(client, partner, area_code="501", page_size=2)
    buy(client, partner, numbers[0]["phone_number"])
    with statements(db) as seen:
        bought = buy(client, partner, numbers[1]["phone_number"])["data"][0]
        assert client.get("/telephony/numbers", headers=partner.headers).status_code == 200
    assert bought["status"] == "active"
    assert not [s for s in seen if "api_keys" in s], seen
    # A key's revocation moves the directory row (2) only, not the routing row (1).
    before = generations(db)
    with db.session() as session:
        accounts.revoke_api_key(session, accounts.find_key(session, partner.key).id)
    after = generations(db)
    assert (after[1], after[2]) == (before[1], before[2] + 1)
    assert client.get("/telephony/numbers", headers=partner.headers).status_code == 401


def generations(db: Database) -> dict[int, int]:
    with db.engine.connect() as connection:
        return {
            row: value
            for row, value in connection.execute(
                select(RoutingGeneration.id, RoutingGeneration.generation)
            )
        }
