"""Reconcile's inventory comparison against what runs beside it (issue 12,
items 4 and 10):

* on PostgreSQL, the comparison and a billing run lock the same number rows:
  they take them in the documented order (numbers by id, the comparison only
  the rows it changes), so both finish instead of one dying in a deadlock;
* a number whose order settles while the carrier's list is being read is not
  flagged "no longer held at the carrier" (and so keeps being renewed): our
  snapshot is taken before the carrier is asked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.billing.service import renewals
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.wallet import ledger
from didhub.wallet.models import AccountEvent

ON_POSTGRESQL = os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql")


def _waiting_for_locks(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Wait for a state another connection reaches (polled, with a deadline)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def _due_number(session: Session, number_id: str, e164: str, owner: str, now: datetime) -> None:
    """An active number bought a month ago whose renewal was due yesterday."""
    bought = now - timedelta(days=31)
    session.add(
        PhoneNumber(
            id=number_id, e164=e164, country_code="US", phone_number_type="local",
            features=["voice"], status="active", is_managed=True, carrier="sandbox",
            owner_id=owner, monthly_cost=Decimal("1.00"), upfront_cost=Decimal("1.00"),
            currency="USD", created_at=bought, purchased_at=bought,
            renews_on=now.date() - timedelta(days=1), billed_periods=1,
        )
    )  # fmt: skip


class RowLock:
    """A third connection that holds number rows' locks until released."""

    def __init__(self, db: Database) -> None:
        self.conn = db.engine.connect()
        self.txn = self.conn.begin()

    def hold(self, number_id: str) -> None:
        self.conn.execute(
            text("SELECT id FROM phone_numbers WHERE id = :id FOR UPDATE"), {"id": number_id}
        )

    def release(self) -> None:
        if self.txn.is_active:
            self.txn.rollback()


@pytest.fixture
def blocker(db: Database) -> Iterator[RowLock]:
    lock = RowLock(db)
    yield lock
    lock.release()
    lock.conn.close()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="row-lock order only matters on PostgreSQL")
def test_inventory_comparison_racing_a_billing_run_does_not_deadlock(
    db: Database,
    settings: Settings,
    partner: Acct,
    carrier: SandboxCarrier,
    blocker: RowLock,
) -> None:
    # Two due numbers the carrier no longer lists, whose ids and E.164s sort in
    # opposite orders: the billing run locks them by id; the comparison used to
    # lock them all by E.164 (the first's lock held, the second's awaited).
    now = clock.now()
    first, second = "num_00000000000000000000000001", "num_00000000000000000000000002"
    with db.session() as session:
        _due_number(session, first, "+15125550199", partner.id, now)
        _due_number(session, second, "+15125550100", partner.id, now)
    blocker.hold(first)  # both runs meet at the first number's lock

    errors: list[BaseException] = []
    runs: dict[str, object] = {}

    def in_thread(name: str, work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                runs[name] = work()
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

    billing = in_thread("billing", lambda: renewals.run(db, carrier, None, settings))
    _until(lambda: _waiting_for_locks(db) == 1, "the billing run waits for the first number")
    report = numbers.ReconcileReport()
    comparing = in_thread("compare", lambda: numbers.compare_inventory(db, carrier, report))
    _until(lambda: _waiting_for_locks(db) == 2, "the comparison waits too")
    blocker.release()
    billing.join(timeout=60)
    comparing.join(timeout=60)
    assert not billing.is_alive() and not comparing.is_alive()
    assert errors == []

    billed = runs["billing"]
    assert isinstance(billed, renewals.RunReport)
    assert billed.renewals == 2 and billed.charged == Decimal("2.00")
    assert sorted(report.missing_at_carrier or []) == ["+15125550100", "+15125550199"]
    with db.session() as session:
        flagged = session.scalars(
            select(PhoneNumber.id).where(PhoneNumber.carrier_missing_since.is_not(None))
        ).all()
        assert sorted(flagged) == [first, second]
        assert ledger.wallet_balance(session, partner.id, "USD") == Decimal("98.00")
    assert ledger_ok(db)


def test_a_number_settled_while_the_carrier_lists_is_not_flagged_missing(
    client: TestClient,
    partner: Acct,
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    wanted = search_numbers(client, partner, area_code="512", page_size=1)[0]["phone_number"]
    carrier.inject_fault("timeout")  # the order's answer is lost: provisioning
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_numbers": [wanted]}, headers=partner.headers
    )
    assert bought.status_code == 202, bought.text
    order_id = bought.json()["meta"]["order_id"]
    number_id = bought.json()["data"][0]["id"]

    listing = carrier.owned_numbers

    def list_then_fill() -> Iterator[str]:
        # The carrier's list is read before it fills our order; by the time
        # reconcile looks at its own numbers, the order has settled active.
        theirs = list(listing())
        assert carrier._allocate(order_id, wanted)
        numbers.settle_order(
            db, carrier, settings, order_id, [NumberOrderResult(wanted, "active")], True
        )
        return iter(theirs)

    carrier.owned_numbers = list_then_fill  # type: ignore[method-assign]
    report = numbers.reconcile(db, carrier, settings)  # the order is too young to ask about
    carrier.owned_numbers = listing  # type: ignore[method-assign]

    assert report.missing_at_carrier == []
    shown = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert shown["status"] == "active" and shown["carrier_missing_since"] is None
    with db.session() as session:
        told = session.scalars(
            select(AccountEvent).where(AccountEvent.kind == "number.carrier_missing")
        ).all()
        assert told == []

    # A month later the number is renewed like any other.
    month_later = clock.now() + timedelta(days=32)
    clock.set_clock(lambda: month_later)
    run = renewals.run(db, carrier, None, settings)
    assert run.renewals == 1 and run.charged == Decimal("1.00")
    assert numbers.reconcile(db, carrier, settings).missing_at_carrier == []
    assert ledger_ok(db)
