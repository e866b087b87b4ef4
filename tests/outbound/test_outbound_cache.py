"""The outbound lookup answered from memory (issue 15): the static part (the
credential, the agent's numbers, the settings, the trunks) kept in a route
cache, the money read afresh, and every change seen by the next lookup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from conftest import Acct
from didhub.db import Database
from didhub.outbound import service as outbound
from didhub.wallet import ledger
from didhub.wallet import service as wallet_service
from outbound.test_outbound_api import (  # noqa: F401
    agent_with_number,
    ask,
    call_placed_events,
    placed,
    trunks,
)


@pytest.fixture
def tenant(make_tenant: Callable[..., Acct], partner: Acct) -> Acct:
    return make_tenant("Dental", partner_id=partner.id)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_kept_answers_read_only_the_money_and_see_every_change(
    client: TestClient,
    db: Database,
    settings: Any,
    partner: Acct,
    tenant: Acct,
    trunks: None,  # noqa: F811
) -> None:
    agent, number, number_id = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    username = cred["data"]["username"]
    first = ask(client, username, "+15015550123", number)
    assert first["action"] == "route"
    with statements(db) as seen:
        again = ask(client, username, "+15015550124", number)
    assert again["action"] == "route" and again["ha1"] == first["ha1"]
    # The static part came from memory: one statement (standing, balance, spend).
    lookups = [s for s in seen if "sip_credentials" in s or "outbound_trunks" in s]
    assert lookups == [], lookups
    assert len([s for s in seen if "billing_profiles" in s]) == 1

    # Rotated: the next lookup has the new HA1.
    client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers)
    rotated = ask(client, username, "+15015550123", number)
    assert rotated["ha1"] != first["ha1"]
    # Settings changed: seen at once.
    client.patch("/outbound/settings", json={"max_concurrent_calls": 4}, headers=tenant.headers)
    assert ask(client, username, "+15015550123", number)["max_concurrent_calls"] == 4
    # A trunk added: offered at once.
    with db.session() as session:
        outbound.add_trunk(session, "cheapest", "127.0.0.1:5099", prefix="1")
    assert ask(client, username, "+15015550123", number)["trunks"][0]["name"] == "cheapest"
    # Wallet emptied (a ledger write, no routing table): 402 on the next lookup.
    with db.session() as session:
        balance = ledger.wallet_balance(session, partner.id, settings.currency)
        ledger.transfer(
            session,
            kind="test",
            description="spent elsewhere",
            debit=ledger.wallet_id(partner.id, settings.currency),
            credit=ledger.ensure_platform_book(session, "revenue", settings.currency),
            amount=balance,
        )
    assert ask(client, username, "+15015550123", number)["status"] == 402
    with db.session() as session:
        ledger.transfer(
            session,
            kind="test",
            description="topped up",
            debit=ledger.ensure_platform_book(session, "revenue", settings.currency),
            credit=ledger.wallet_id(partner.id, settings.currency),
            amount=Decimal("10.00"),
        )
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    # Suspended: 403 on the next lookup.
    with db.session() as session:
        wallet_service.profile(session, partner.id).standing = "suspended"
    suspended = ask(client, username, "+15015550123", number)
    assert suspended["status"] == 403 and suspended["reason"] == "the account is suspended"
    with db.session() as session:
        wallet_service.profile(session, partner.id).standing = "good"
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    # The number unassigned: it can't be presented any more.
    gone = client.post(
        "/telephony/numbers/unassign",
        json={"number_id": number_id, "assignment_type": "outbound"},
        headers=partner.headers,
    )
    assert gone.status_code == 200, gone.text
    refused = ask(client, username, "+15015550123", number)
    assert refused["status"] == 403
    assert refused["reason"] == "no number is assigned outbound to this agent"


def test_each_911_call_placed_emits_its_event_even_when_kept(
    client: TestClient,
    partner: Acct,
    tenant: Acct,
    trunks: None,  # noqa: F811
) -> None:
    agent, number, _ = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    username = cred["data"]["username"]
    assert ask(client, username, "+15015550123", number)["action"] == "route"  # now kept
    for call in range(3):
        assert ask(client, username, "911", number)["emergency"] is True
        placed(client, username, "911", number, f"call-{call}")
    assert len(call_placed_events(client, tenant)) == 3


def test_bodies_the_fast_path_passes_on_get_the_endpoints_errors(client: TestClient) -> None:
    for body, field in [
        ({"username": "a", "destination": "+15015550123", "extra": 1}, "extra"),
        ({"username": "a", "destination": "not a number"}, "destination"),
        ({"username": "a\x00", "destination": "+15015550123"}, "username"),
        ({"destination": "+15015550123"}, "username"),
    ]:
        answer = client.post("/routing/outbound", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["field"] == field, (body, answer.text)
    broken = client.post(
        "/routing/outbound", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
