"""Paying while the billing run moves an account along, and the run's row locks
beside another worker's. Each race is staged at its bad moment: a step is run
exactly there (a hook on the commit that listed the accounts, or on the call
that begins a release), or a second thread holds a lock until the run is seen
waiting for it (pg_stat_activity), never by sleeping and hoping."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub import clock
from didhub.billing.models import RetailPriceVersion
from didhub.billing.service import dunning, renewals, resale
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers.models import NumberEvent, PhoneNumber
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger
from didhub.wallet import service as wallet

postgres_only = pytest.mark.skipif(
    not os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql"),
    reason="row locks between connections: SQLite runs one writer at a time",
)

BOUGHT = date(2029, 3, 10)
RENEWS = date(2029, 4, 10)  # unpaid: past due
GRACE_ENDS = RENEWS + timedelta(days=7)  # suspended
RELEASE_DAY = GRACE_ENDS + timedelta(days=30)  # released unless paid


def at(day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    clock.set_clock(lambda: moment)


def balance(db: Database, account_id: str) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, account_id, "USD")


def standing(client: TestClient, acct: Acct) -> str:
    state: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["standing"]
    return state


def account_events(client: TestClient, acct: Acct) -> list[str]:
    data = client.get("/billing/events", headers=acct.headers).json()["data"]
    return [e["kind"] for e in data]


def number_status(db: Database, number_id: str) -> str:
    with db.session() as session:
        return session.get_one(PhoneNumber, number_id).status


def ever_suspended(db: Database, number_id: str) -> bool:
    with db.session() as session:
        return (
            session.scalars(
                select(NumberEvent.id).where(
                    NumberEvent.number_id == number_id, NumberEvent.kind == "status.suspended"
                )
            ).first()
            is not None
        )


def route(client: TestClient, e164: str) -> str:
    action: str = client.get(f"/routing/inbound/{e164}").json()["data"]["action"]
    return action


def unpaid_account(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> tuple[Acct, str, str]:
    """A partner whose one number's second month went unpaid on RENEWS (past
    due), with a working card on file but auto-recharge off."""
    acct = make_partner("Late payer", balance="2.00")
    at(BOUGHT)
    e164 = search_numbers(client, acct, area_code="415", page_size=1)[0]["phone_number"]
    number_id = buy(client, acct, e164)["data"][0]["id"]
    saved = client.put("/billing/card", json={"card_token": "tok_visa"}, headers=acct.headers)
    assert saved.status_code == 200
    at(RENEWS)
    assert renewals.run(db, carrier, SandboxGateway(db), settings, RENEWS).past_due == [acct.id]
    return acct, number_id, e164


@contextmanager
def after_listing(db: Database, step: Callable[[], None]) -> Iterator[None]:
    """Run ``step`` once, just after the transaction that listed the accounts to
    move along (past due or suspended) commits: after the run read their
    standing, before it acts on it."""
    state = {"listed": False, "done": False}

    def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        upper = sql.lstrip().upper()
        if upper.startswith("SELECT") and "BILLING_PROFILES.STANDING IN" in upper:
            state["listed"] = True

    def committed(_session: Session) -> None:
        if state["listed"] and not state["done"]:
            state["done"] = True
            step()

    event.listen(db.engine, "after_cursor_execute", statement)
    event.listen(db.sessionmaker, "after_commit", committed)
    try:
        yield
    finally:
        event.remove(db.engine, "after_cursor_execute", statement)
        event.remove(db.sessionmaker, "after_commit", committed)
    assert state["done"], "the run never listed the accounts to move along"


def test_a_top_up_after_the_run_read_its_standing_is_not_suspended_anyway(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    acct, number_id, e164 = unpaid_account(client, make_partner, db, carrier, settings)
    gateway = SandboxGateway(db)
    at(GRACE_ENDS)

    def pay() -> None:
        paid = renewals.topup(db, gateway, settings, acct.id, Decimal("5.00"), "pay-now")
        assert paid.renewals_paid == 1

    with after_listing(db, pay):
        report = renewals.run(db, carrier, gateway, settings, GRACE_ENDS)

    assert report.suspended == []
    assert standing(client, acct) == "good"
    assert number_status(db, number_id) == "active" and route(client, e164) != "suspended"
    assert "account.suspended" not in account_events(client, acct)
    assert balance(db, acct.id) == Decimal("4.00")
    assert ledger_ok(db)


def test_money_credited_before_the_suspension_decides_keeps_the_numbers(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    """The top-up's card charge is credited, its own settling hasn't run yet:
    the wallet pays what is due, so the account is not suspended, and the
    top-up's settling then restores it."""
    acct, number_id, e164 = unpaid_account(client, make_partner, db, carrier, settings)
    gateway = SandboxGateway(db)
    at(GRACE_ENDS)

    def credit() -> None:
        wallet.topup(db, gateway, settings, acct.id, Decimal("5.00"), "credit-only")

    with after_listing(db, credit):
        report = renewals.run(db, carrier, gateway, settings, GRACE_ENDS)
    assert report.suspended == []
    renewals.after_payment(db, gateway, settings, acct.id)  # what the top-up does next

    assert standing(client, acct) == "good"
    assert not ever_suspended(db, number_id) and route(client, e164) != "suspended"
    assert "account.suspended" not in account_events(client, acct)
    assert balance(db, acct.id) == Decimal("4.00")
    assert ledger_ok(db)


def test_a_payment_after_the_run_listed_suspended_numbers_keeps_them(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acct, number_id, e164 = unpaid_account(client, make_partner, db, carrier, settings)
    gateway = SandboxGateway(db)
    at(GRACE_ENDS)
    assert renewals.run(db, carrier, gateway, settings, GRACE_ENDS).suspended == [acct.id]
    assert route(client, e164) == "suspended"

    at(RELEASE_DAY)
    paid: list[int] = []
    release = dunning.release_for_nonpayment

    def pay_first(*args: Any, **kwargs: Any) -> Any:
        if not paid:  # the partner pays just as the release begins
            topped = renewals.topup(db, gateway, settings, acct.id, Decimal("5.00"), "pay-now")
            paid.append(topped.renewals_paid)
        return release(*args, **kwargs)

    monkeypatch.setattr(dunning, "release_for_nonpayment", pay_first)
    report = renewals.run(db, carrier, gateway, settings, RELEASE_DAY)

    assert paid == [2]  # the 4/10 and 5/10 months
    assert report.released == []
    assert number_status(db, number_id) == "active"
    assert standing(client, acct) == "good" and route(client, e164) != "suspended"
    assert carrier.lookup(e164) is None  # still ours at the carrier
    assert balance(db, acct.id) == Decimal("3.00")
    assert "numbers.released_for_nonpayment" not in account_events(client, acct)
    assert ledger_ok(db)


# ------------------------------------------------------------------ PostgreSQL locks


def wait_for_a_lock_waiter(db: Database, done: threading.Event, limit: float = 30.0) -> bool:
    """Until another connection of this database waits for a row lock (True),
    or ``done`` is set or ``limit`` seconds pass (False)."""
    deadline = time.monotonic() + limit
    with db.engine.connect() as conn:
        while time.monotonic() < deadline and not done.is_set():
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return True
            time.sleep(0.01)
    return False


@postgres_only
def test_the_run_locks_numbers_by_id_so_a_worker_locking_in_that_order_never_deadlocks(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    acct = make_partner("Two numbers", balance="10.00")
    at(BOUGHT)
    found = [n["phone_number"] for n in search_numbers(client, acct, area_code="512", page_size=2)]
    low, high = sorted(n["id"] for n in buy(client, acct, *found)["data"])
    with db.session() as session:  # the higher id renews first
        session.execute(
            update(PhoneNumber)
            .where(PhoneNumber.id == high)
            .values(renews_on=RENEWS - timedelta(1))
        )
    holding, run_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:  # e.g. reconcile: phone_numbers in ascending id order
        try:
            with db.session() as session:
                session.execute(
                    select(PhoneNumber.id).where(PhoneNumber.id == low).with_for_update()
                )
                holding.set()
                wait_for_a_lock_waiter(db, run_done)
                session.execute(
                    select(PhoneNumber.id).where(PhoneNumber.id == high).with_for_update()
                )
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
            holding.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert holding.wait(30)
    at(RENEWS)
    caplog.set_level(logging.ERROR)
    try:
        report = renewals.run(db, carrier, None, settings, RENEWS)
    except BaseException as exc:  # noqa: BLE001 - asserted below
        errors.append(exc)
        report = None
    finally:
        run_done.set()
        thread.join(60)
    assert errors == []
    assert report is not None and report.failed == {} and report.renewals == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert balance(db, acct.id) == Decimal("4.00")
    assert ledger_ok(db)


@postgres_only
def test_a_suspension_waits_for_a_top_up_holding_the_wallet_and_sees_its_money(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acct, number_id, e164 = unpaid_account(client, make_partner, db, carrier, settings)
    gateway = SandboxGateway(db)
    at(GRACE_ENDS)
    credited, run_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    real_event = wallet.event

    def slow_credit(session: Session, account_id: str, kind: str, *args: Any, **kw: Any) -> None:
        real_event(session, account_id, kind, *args, **kw)
        if kind == "payment.succeeded":  # credited, holding the wallet, not committed
            credited.set()
            wait_for_a_lock_waiter(db, run_done)

    monkeypatch.setattr(wallet, "event", slow_credit)

    def top_up() -> None:
        try:
            wallet.topup(db, gateway, settings, acct.id, Decimal("5.00"), "concurrent")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
            credited.set()

    thread = threading.Thread(target=top_up)

    def start_top_up() -> None:
        thread.start()
        assert credited.wait(30)

    try:
        with after_listing(db, start_top_up):
            report = renewals.run(db, carrier, gateway, settings, GRACE_ENDS)
    finally:
        run_done.set()
        thread.join(60)
    assert errors == []
    assert report.suspended == []
    renewals.after_payment(db, gateway, settings, acct.id)  # what the top-up does next
    assert standing(client, acct) == "good"
    assert not ever_suspended(db, number_id) and route(client, e164) != "suspended"
    assert balance(db, acct.id) == Decimal("4.00")
    assert ledger_ok(db)


@postgres_only
def test_calls_posted_while_the_run_renews_their_number_never_deadlock(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by bench/soak.py: storing a call takes a key-share lock on its
    number (the foreign key), so posting calls must lock the owner's wallet
    before that, or a renewal holding the wallet and locking the number waits
    for the call while the call waits for the wallet."""
    from didhub.billing.service import usage

    acct = make_partner("Calls", balance="10.00")
    at(BOUGHT)
    number = search_numbers(client, acct, area_code="512", page_size=1)[0]["phone_number"]
    buy(client, acct, number)
    at(RENEWS)
    stored, run_done = threading.Event(), threading.Event()
    post = usage._post

    def post_after_the_run_waits(session: Session, *args: Any, **kwargs: Any) -> Any:
        stored.set()  # the call row is written: its number is key-share locked
        wait_for_a_lock_waiter(db, run_done, limit=10)
        return post(session, *args, **kwargs)

    monkeypatch.setattr(usage, "_post", post_after_the_run_waits)
    errors: list[BaseException] = []
    report: list[renewals.RunReport] = []

    def run() -> None:
        assert stored.wait(30)
        try:
            report.append(renewals.run(db, carrier, None, settings, RENEWS))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            run_done.set()

    caplog.set_level(logging.ERROR)
    thread = threading.Thread(target=run)
    thread.start()
    call = usage.CallRecord(number, "outbound", clock.now() - timedelta(hours=1), 120, "c-1")
    try:
        posted = usage.record(db, settings, [call])
    except BaseException as exc:  # noqa: BLE001 - asserted below
        errors.append(exc)
        posted = None
    finally:
        run_done.set()
        thread.join(60)
    assert errors == []
    assert posted is not None and posted.accepted == 1
    assert report and report[0].renewals == 1 and report[0].failed == {}
    # Not even a batch lost to a deadlock and billed again account by account.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert balance(db, acct.id) == Decimal("10.00") - 2 - 1 - Decimal("0.02")
    assert ledger_ok(db)


@postgres_only
def test_two_first_retail_prices_at_once_both_succeed_and_the_later_one_holds(
    client: TestClient, partner: Acct, db: Database
) -> None:
    """Staged at the bad moment: the first PUT has inserted the price row and is
    held before its commit; the second, for the same number type, starts then
    (and waits on that row, seen in pg_stat_activity). Before, the second found
    no row, inserted one and hit the unique constraint: a 500."""
    first_inserted, let_first_commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    body = {
        "phone_number_type": "local",
        "setup": "0",
        "per_minute_inbound": "0",
        "per_minute_outbound": "0",
    }

    def hold(session: Session) -> None:
        first_inserted.set()
        let_first_commit.wait(timeout=20)

    def first() -> None:
        try:
            with db.session() as session:
                event.listen(session, "before_commit", hold)
                resale.set_retail_price(
                    session, Scope(partner.id, PARTNER), None, "local",
                    Decimal("3.00"), Decimal("0"), Decimal("0"), Decimal("0"),
                )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - the assertion below names it
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_inserted.wait(timeout=20)
        answers: list[Any] = []
        second = threading.Thread(
            target=lambda: answers.append(
                client.put(
                    "/billing/retail-prices",
                    json={**body, "monthly": "4.00"},
                    headers=partner.headers,
                )  # fmt: skip
            )
        )
        second.start()
        assert wait_for_a_lock_waiter(db, threading.Event(), limit=20)
    finally:
        let_first_commit.set()
        thread.join(timeout=20)
    second.join(timeout=20)
    assert errors == []
    assert answers[0].status_code == 200, answers[0].text
    prices = client.get("/billing/retail-prices", headers=partner.headers).json()["data"]
    assert [(p["tenant_id"], p["monthly"]) for p in prices] == [(None, "4.00")]
    with db.session() as session:
        versions = session.scalars(
            select(RetailPriceVersion.monthly).order_by(RetailPriceVersion.id)
        ).all()
    assert versions == [Decimal("3.00"), Decimal("4.00")]
