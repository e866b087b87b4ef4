"""Idempotency-Key over time (docs/idempotency.md): a first request still
waiting on its carrier keeps its key, a replayed "outcome unknown" answers
what happened since, and a declined top-up can be retried with its key once
the card is fixed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub import clock, idempotency
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.idempotency import IdempotencyRecord
from didhub.jobs.registry import run_round
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.runtime import Runtime
from didhub.wallet import ledger
from didhub.wallet.models import CardCharge

PURCHASE = "/telephony/numbers/purchase"


def balance(db: Database, acct: Acct) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, acct.id, "USD")


def one_number(client: TestClient, acct: Acct, area_code: str = "415") -> str:
    e164: str = search_numbers(client, acct, area_code=area_code, page_size=1)[0]["phone_number"]
    return e164


class MovableClock:
    def __init__(self) -> None:
        self.moment = clock.now()
        clock.set_clock(lambda: self.moment)

    def advance(self, by: timedelta) -> None:
        self.moment += by


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait for a condition another thread brings about (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return  # the assertions that follow say what went wrong
        time.sleep(0.01)


def test_a_retry_while_the_first_purchase_still_waits_on_the_carrier_is_told_to_wait(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The carrier takes longer than the five-minute lease to answer: the first
    request's heartbeat keeps its claim, so the retry is 409 in progress (not a
    second purchase), and once the first answers, the retry gets its answer."""
    # raising=False: the test still runs (and fails, as it should) without a heartbeat.
    monkeypatch.setattr(idempotency, "HEARTBEAT_SECONDS", 0.02, raising=False)
    time_now = MovableClock()
    number = one_number(client, partner)
    asked, answer = threading.Event(), threading.Event()
    order = carrier.order

    def slow_order(order_id: str, wanted: Sequence[str]) -> list[NumberOrderResult]:
        asked.set()
        answer.wait(timeout=30)
        return order(order_id, wanted)

    monkeypatch.setattr(carrier, "order", slow_order)
    headers = {**partner.headers, "Idempotency-Key": "slow-1"}
    body = {"phone_number": number}
    first: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: first.append(client.post(PURCHASE, json=body, headers=headers))
    )
    worker.start()
    try:
        assert asked.wait(timeout=10)
        time_now.advance(timedelta(minutes=6))  # the carrier is slow: past the lease

        def renewed() -> bool:
            with db.session() as session:
                record = session.get(IdempotencyRecord, (partner.id, "slow-1"))
                expires = getattr(record, "lease_expires_at", None)
                return isinstance(expires, datetime) and expires > time_now.moment

        wait_until(renewed, "the heartbeat to renew the lease")
        retry = client.post(PURCHASE, json=body, headers=headers)
        assert retry.status_code == 409, retry.text
        assert retry.json()["error"]["code"] == "idempotency_in_progress"
    finally:
        answer.set()
        worker.join(timeout=30)
    assert first[0].status_code == 200, first[0].text
    replay = client.post(PURCHASE, json=body, headers=headers)
    assert replay.status_code == 200 and replay.json() == first[0].json()
    assert balance(db, partner) == Decimal("98.00")  # bought once
    assert ledger_ok(db)


@pytest.mark.parametrize(("fault", "settled"), [("unknown", "active"), ("timeout", "failed")])
def test_a_replayed_unknown_purchase_answers_what_reconcile_settled(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    fault: str,
    settled: str,
) -> None:
    number = one_number(client, partner)
    headers = {**partner.headers, "Idempotency-Key": f"lost-{fault}"}
    body = {"phone_number": number}
    carrier.inject_fault(fault)
    first = client.post(PURCHASE, json=body, headers=headers)
    assert first.status_code == 202, first.text
    # Not settled yet: the replay still says so.
    assert client.post(PURCHASE, json=body, headers=headers).status_code == 202
    numbers.reconcile(db, carrier, settings, min_age=timedelta(0))

    replay = client.post(PURCHASE, json=body, headers=headers)
    if settled == "active":
        # What the purchase would have answered had the carrier answered at once.
        assert replay.status_code == 200, replay.text
        assert replay.json()["data"]["status"] == "active"
        assert replay.json()["meta"]["outcome_known"] is True
        assert replay.json()["meta"]["order_id"] == first.json()["meta"]["order_id"]
        again = client.post(PURCHASE, json=body, headers=headers)
        assert again.status_code == 200 and again.json() == replay.json()
        assert balance(db, partner) == Decimal("98.00")
    else:
        assert replay.status_code == 502, replay.text
        assert replay.json()["error"]["code"] == "carrier_error"
        assert "$2.00 was refunded" in replay.json()["error"]["message"]
        assert balance(db, partner) == Decimal("100.00")
        # As after a fresh 502, the key is free: a retry buys the number now.
        retried = client.post(PURCHASE, json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["data"]["status"] == "active"
        assert balance(db, partner) == Decimal("98.00")
    assert ledger_ok(db)


@pytest.mark.parametrize("carrier_then", ["released", "refused"])
def test_a_replayed_unconfirmed_release_answers_what_reconcile_found(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    carrier_then: str,
) -> None:
    number_id = buy(client, partner, one_number(client, partner, "720"))["data"][0]["id"]
    headers = {**partner.headers, "Idempotency-Key": "release-1"}
    body = {"number_id": number_id}
    carrier.inject_fault("timeout")
    first = client.post("/telephony/numbers/release", json=body, headers=headers)
    assert first.status_code == 202 and first.json()["data"]["status"] == "releasing"
    if carrier_then == "refused":
        carrier.inject_fault("fail")
    numbers.reconcile(db, carrier, settings, min_age=timedelta(0))
    replay = client.post("/telephony/numbers/release", json=body, headers=headers)
    if carrier_then == "released":
        assert replay.status_code == 200, replay.text
        assert replay.json()["data"]["status"] == "released"
        return
    # As a fresh release the carrier refused: 502, the number still ours, the key free.
    assert replay.status_code == 502, replay.text
    assert replay.json()["error"]["code"] == "carrier_error"
    shown = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()
    assert shown["data"]["status"] == "active"
    retried = client.post("/telephony/numbers/release", json=body, headers=headers)
    assert retried.status_code == 200 and retried.json()["data"]["status"] == "released"


def test_a_replayed_pending_caller_name_answers_the_listing_once_done(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    number_id = buy(client, partner, one_number(client, partner, "303"))["data"][0]["id"]
    headers = {**partner.headers, "Idempotency-Key": "cnam-1"}
    carrier.inject_fault("timeout")
    path = f"/telephony/numbers/{number_id}"
    first = client.patch(path, json={"cnam": "Acme"}, headers=headers)
    assert first.status_code == 202 and first.json()["data"]["cnam"]["status"] == "pending"
    cnam.repush_pending(db, carrier, min_age=timedelta(0))
    replay = client.patch(path, json={"cnam": "Acme"}, headers=headers)
    assert replay.status_code == 200, replay.text
    shown = replay.json()["data"]["cnam"]
    assert shown["status"] == "active" and shown["name"] == "Acme"
    assert replay.json()["meta"]["notice"] == cnam.CACHE_NOTICE


@pytest.mark.parametrize("key", ["topup-7", "k" * 255])
def test_a_declined_topup_is_charged_when_retried_with_its_key_after_the_card_is_fixed(
    client: TestClient, partner: Acct, db: Database, key: str
) -> None:
    headers = {**partner.headers, "Idempotency-Key": key}
    body = {"amount": "25.00"}

    def card(token: str) -> None:
        saved = client.put("/billing/card", json={"card_token": token}, headers=partner.headers)
        assert saved.status_code == 200, saved.text

    card("tok_chargeDeclined")
    declined = client.post("/billing/wallet/topup", json=body, headers=headers)
    assert declined.status_code == 402, declined.text
    assert declined.json()["error"]["code"] == "payment_declined"
    assert balance(db, partner) == Decimal("100.00")

    card("tok_visa")
    paid = client.post("/billing/wallet/topup", json=body, headers=headers)
    assert paid.status_code == 200, paid.text
    assert balance(db, partner) == Decimal("125.00")
    # From now on the key answers that top-up, and charges nothing more.
    replay = client.post("/billing/wallet/topup", json=body, headers=headers)
    assert replay.status_code == 200 and replay.json() == paid.json()
    assert balance(db, partner) == Decimal("125.00")
    with db.session() as session:
        statuses = sorted(
            session.scalars(select(CardCharge.status).where(CardCharge.account_id == partner.id))
        )
    assert statuses == ["declined", "succeeded"]
    assert ledger_ok(db)


def test_an_unanswered_topup_retried_with_its_key_is_settled_not_charged_again(
    client: TestClient, partner: Acct, db: Database
) -> None:
    """The other side of the decline rule: an attempt whose answer was lost is
    asked about again with the same gateway key."""
    headers = {**partner.headers, "Idempotency-Key": "lost-topup"}
    body = {"amount": "10.00"}
    client.put("/billing/card", json={"card_token": "tok_timeout"}, headers=partner.headers)
    lost = client.post("/billing/wallet/topup", json=body, headers=headers)
    assert lost.status_code == 502 and lost.json()["error"]["code"] == "payment_outcome_unknown"
    settled = client.post("/billing/wallet/topup", json=body, headers=headers)
    assert settled.status_code == 200, settled.text
    assert balance(db, partner) == Decimal("110.00")
    with db.session() as session:
        assert session.query(CardCharge).filter_by(account_id=partner.id).count() == 1


def test_answers_are_replayed_for_a_day_then_the_key_is_forgotten(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database, settings: Settings
) -> None:
    """Like Stripe's: a key's answer is replayed for DIDHUB_IDEMPOTENCY_KEEP_HOURS
    (24), then the purge job forgets it and the key may name a new request. A
    claim still held by a running request is never purged, however old."""
    time_now = MovableClock()
    try:
        old_number, new_number = (
            n["phone_number"] for n in search_numbers(client, partner, page_size=2)[:2]
        )
        key = {"Idempotency-Key": "buy-1"}
        first = buy(client, partner, old_number, **key)
        with db.session() as session:
            session.add(
                IdempotencyRecord(
                    account_id=partner.id,
                    key="still-running",
                    fingerprint="x",
                    state="in_progress",
                    created_at=time_now.moment,
                    lease_expires_at=time_now.moment + timedelta(days=2),
                )
            )
        rt = Runtime(db, carrier, SandboxGateway(db), settings)

        time_now.advance(timedelta(hours=23))
        assert run_round(rt, ["idempotency.purge"]) == {"idempotency.purge": None}
        assert buy(client, partner, old_number, **key) == first  # replayed
        reused = client.post(
            PURCHASE, json={"phone_numbers": [new_number]}, headers={**partner.headers, **key}
        )
        assert reused.status_code == 422  # still this key's request

        time_now.advance(timedelta(hours=2))
        assert run_round(rt, ["idempotency.purge"]) == {"idempotency.purge": None}
        with db.session() as session:
            kept = session.scalars(select(IdempotencyRecord.key)).all()
        assert kept == ["still-running"]
        second = buy(client, partner, new_number, **key)  # a new request now
        assert [n["phone_number"] for n in second["data"]] == [new_number]
        assert ledger_ok(db)
    finally:
        clock.set_clock(None)
