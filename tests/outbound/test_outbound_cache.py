"""The outbound lookup answered from memory (issue 15): the static part (the
credential, the agent's numbers, the settings, the trunks) kept in a route
cache, the money (standing, balance, spend today) in the funds cache, and
every change seen by the next lookup (through this process) or within the
poll (any other)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, sent_statements
from didhub import clock
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.db import Database
from didhub.outbound import service as outbound
from didhub.outbound.funds_cache import FundsCache
from didhub.wallet import ledger
from didhub.wallet import service as wallet_service
from outbound.test_outbound_api import (  # noqa: F401
    agent_with_number,
    ask,
    call_placed_events,
    placed,
    trunks,
)

DIDHUB = shutil.which("didhub", path=str(Path(sys.executable).parent)) or "didhub"


@pytest.fixture
def tenant(make_tenant: Callable[..., Acct], partner: Acct) -> Acct:
    return make_tenant("Dental", partner_id=partner.id)


def statements(db: Database) -> AbstractContextManager[list[str]]:
    """The SELECTs sent while the block runs."""
    return sent_statements(db, lambda statement: statement.lstrip().upper().startswith("SELECT"))


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
    # Both parts came from memory: neither the static part nor the money read
    # (at most the funds cache's poll of its marks, when it was due).
    lookups = [s for s in seen if "sip_credentials" in s or "outbound_trunks" in s]
    assert lookups == [], lookups
    assert [s for s in seen if "ledger_accounts" in s] == []

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


def _dialer(client: TestClient, partner: Acct, tenant: Acct) -> tuple[str, str]:
    agent, number, _ = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    return cred["data"]["username"], number


def _empty_wallet(db: Database, settings: Any, account_id: str) -> None:
    with db.session() as session:
        balance = ledger.wallet_balance(session, account_id, settings.currency)
        ledger.transfer(
            session,
            kind="test",
            description="spent elsewhere",
            debit=ledger.wallet_id(account_id, settings.currency),
            credit=ledger.ensure_platform_book(session, "revenue", settings.currency),
            amount=balance,
        )


def _set_standing(db: Database, account_id: str, standing: str) -> None:
    with db.session() as session:
        wallet_service.profile(session, account_id).standing = standing


def _money_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if "ledger_accounts" in s or "usage_records WHERE (" in s]


def test_money_changed_through_this_process_is_refused_at_the_next_lookup(
    settings: Any,
    db: Database,
    carrier: Any,
    partner: Acct,
    tenant: Acct,
    trunks: None,  # noqa: F811
) -> None:
    """A poll a minute apart: only this process's commits (the money epoch)
    can make the next lookup read afresh, and a repeat lookup reads nothing."""
    slow = settings.model_copy(update={"routing_cache_seconds": 60})
    client = TestClient(create_app(slow, db, carrier))
    username, number = _dialer(client, partner, tenant)
    client.patch("/outbound/settings", json={"daily_spend_limit": "0.05"}, headers=tenant.headers)
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    with statements(db) as seen:
        again = ask(client, username, "+15015550124", number)
    assert again["action"] == "route"
    assert seen == [], seen  # a repeat lookup: no statement at all

    _empty_wallet(db, settings, partner.id)
    assert ask(client, username, "+15015550123", number)["status"] == 402
    with statements(db) as seen:  # the refusal is kept too
        assert ask(client, username, "+15015550123", number)["status"] == 402
    assert seen == [], seen
    with db.session() as session:
        accounts.fund_wallet(session, partner.id, Decimal("10.00"), settings.currency, "test")
    assert ask(client, username, "+15015550123", number)["action"] == "route"

    _set_standing(db, partner.id, "suspended")
    suspended = ask(client, username, "+15015550123", number)
    assert suspended["status"] == 403 and suspended["reason"] == "the account is suspended"
    _set_standing(db, partner.id, "good")
    assert ask(client, username, "+15015550123", number)["action"] == "route"

    # A call rated past the daily limit through this server (0.06 at 0.02/min).
    record = {
        "phone_number": number,
        "direction": "outbound",
        "destination": "+15015550123",
        "started_at": clock.now().isoformat(),
        "duration_seconds": 180,
        "call_id": "past-the-limit",
    }
    rated = client.post("/billing/usage", json={"records": [record]})
    assert rated.status_code == 200 and rated.json()["data"]["accepted"] == 1, rated.text
    limited = ask(client, username, "+15015550123", number)
    assert limited["reason"] == "the daily outbound limit of 0.05 USD is reached"
    # 911 is never refused for money, and is worked out afresh each time.
    with statements(db) as seen:
        assert ask(client, username, "911", number)["action"] == "route"
    assert any("outbound_trunks" in s for s in seen)


def test_money_changed_by_another_process_is_refused_within_the_poll(
    settings: Any,
    db: Database,
    carrier: Any,
    partner: Acct,
    tenant: Acct,
    database_url: str,
    tmp_path: Path,
    trunks: None,  # noqa: F811
) -> None:
    """``didhub serve`` as deployed (its lifespan polls in threads); the
    changes made by a second engine (its own process's commits, unseen by
    this one's epoch) and by ``didhub`` CLI subprocesses."""
    poll = 0.2
    fast = settings.model_copy(update={"routing_cache_seconds": poll})
    other = Database(database_url, pool_size=1, max_overflow=0)
    env = {**os.environ, "DIDHUB_DATABASE_URL": database_url}

    def didhub(*argv: str) -> str:
        done = subprocess.run([DIDHUB, *argv], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    def kept_route(username: str, number: str) -> None:
        """Routed, and (a few polls later) kept: answered without a statement."""
        for _ in range(20):
            assert ask(client, username, "+15015550123", number)["action"] == "route"
            with statements(db) as seen:
                assert ask(client, username, "+15015550124", number)["action"] == "route"
            if _money_reads(seen) == []:
                return
            time.sleep(poll)
        raise AssertionError("the funds were never kept")

    try:
        with TestClient(create_app(fast, db, carrier)) as client:
            username, number = _dialer(client, partner, tenant)
            client.patch(
                "/outbound/settings", json={"daily_spend_limit": "0.05"}, headers=tenant.headers
            )
            kept_route(username, number)

            _empty_wallet(other, settings, partner.id)  # another engine
            time.sleep(poll * 1.25)
            assert ask(client, username, "+15015550123", number)["status"] == 402
            didhub("partner", "fund", partner.id, "10.00")  # another process
            time.sleep(poll * 1.25)
            kept_route(username, number)

            _set_standing(other, partner.id, "suspended")
            time.sleep(poll * 1.25)
            suspended = ask(client, username, "+15015550123", number)
            assert suspended["reason"] == "the account is suspended"
            _set_standing(other, partner.id, "good")
            time.sleep(poll * 1.25)
            kept_route(username, number)

            cdrs = tmp_path / "cdrs.csv"
            cdrs.write_text(
                "number,direction,start,duration,call_id\n"
                f"{number},outbound,{clock.now().isoformat()},600,cli-call\n"
            )
            didhub("billing", "import-cdrs", str(cdrs))
            time.sleep(poll * 1.25)
            limited = ask(client, username, "+15015550123", number)
            assert limited["reason"] == "the daily outbound limit of 0.05 USD is reached", limited
    finally:
        other.dispose()


def _funds_now(db: Database, settings: Any, payer: str) -> outbound.Funds:
    with db.read_engine.begin() as connection:
        return outbound.funds(connection, settings, payer, payer)


def test_a_funds_answer_read_across_a_money_commit_is_not_kept(
    db: Database, settings: Any, partner: Acct
) -> None:
    cache = FundsCache(db, poll_seconds=60)
    before = _funds_now(db, settings, partner.id)

    def emptied_meanwhile() -> outbound.Funds:
        _empty_wallet(db, settings, partner.id)  # committed mid-lookup
        return before

    assert cache.get(partner.id, partner.id, emptied_meanwhile) is before
    assert cache.hit(partner.id, partner.id) is None  # not kept
    fresh = cache.get(partner.id, partner.id, lambda: _funds_now(db, settings, partner.id))
    assert fresh.balance == 0
    assert cache.hit(partner.id, partner.id) == fresh  # kept now


def test_a_ledger_entry_committed_after_a_later_one_is_still_seen(
    db: Database, settings: Any, partner: Acct, make_partner: Callable[..., Acct]
) -> None:
    """Ids are handed out at insert, not at commit: a transaction holding a
    lower id that commits after one with a higher id (two servers' commits on
    PostgreSQL) must still clear the cache, which ``max(id)`` alone would
    miss."""
    if db.is_sqlite:
        pytest.skip("SQLite writers queue on the database lock: ids commit in order")
    other = make_partner("Other Voice")
    slow = Database(db.url, pool_size=2, max_overflow=0)
    cache = FundsCache(slow, poll_seconds=60)  # an engine whose epoch sees nothing;
    # polled by hand (a busy machine must not make a poll look stale)
    try:
        compute = lambda: _funds_now(db, settings, partner.id)  # noqa: E731
        assert cache.get(partner.id, partner.id, compute).balance == Decimal("100.00")
        with slow.session() as late:
            balance = ledger.wallet_balance(late, partner.id, settings.currency)
            ledger.transfer(  # the lower ids, not committed yet
                late,
                kind="test",
                description="spent, committed late",
                debit=ledger.wallet_id(partner.id, settings.currency),
                credit=ledger.ensure_platform_book(late, "revenue", settings.currency),
                amount=balance,
            )
            late.flush()
            with db.session() as first:  # higher ids, committed first (other books)
                accounts.fund_wallet(first, other.id, Decimal("1.00"), settings.currency, "t")
            cache.poll(force=True)
            assert cache.get(partner.id, partner.id, compute).balance == Decimal("100.00")
            cache.poll(force=True)
            assert cache.hit(partner.id, partner.id) is not None  # kept: nothing moved
        cache.poll(force=True)  # the late commit: the count past the floor moved
        assert cache.hit(partner.id, partner.id) is None
        assert cache.get(partner.id, partner.id, compute).balance == 0
    finally:
        slow.dispose()
