"""A port completing while its owner cancels it (or while a second sweep
completes it too) ends in one consistent state: on PostgreSQL the requests
really run at once (threads released together)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Acct, ledger_ok
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import DidhubError
from didhub.numbers.models import PhoneNumber
from didhub.porting import service as porting
from didhub.porting.models import PortCarrierOrder, PortOrder
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger
from portflow import documents_in_tmp, foc_date, ready_order  # noqa: F401

NUMBERS = ["+15013720123", "+15013720125", "+15013720127", "+15013720129"]


def _submitted(client: TestClient, partner: Acct, tenant_id: str, e164: str) -> tuple[str, str]:
    order = ready_order(client, partner, tenant_id, [e164])
    chosen = foc_date(client, partner, order["id"])
    answer = client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    assert answer.status_code == 200, answer.text
    return order["id"], chosen


def _race(*calls: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except DidhubError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def _state(
    db: Database, settings: Settings, order_id: str, e164: str, owner: str
) -> tuple[str, int, Decimal]:
    with db.read_session() as session:
        status = session.get_one(PortOrder, order_id).status
        live = session.scalar(
            select(func.count()).select_from(PhoneNumber).where(PhoneNumber.e164 == e164)
        )
        return status, int(live or 0), ledger.wallet_balance(session, owner, settings.currency)


def test_completion_racing_cancel_and_a_second_sweep_ends_consistent(
    client: TestClient,
    db: Database,
    settings: Settings,
    carrier: SandboxCarrier,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Racer", partner_id=partner.id)
    scope = Scope(partner.id, PARTNER)
    monthly = settings.prices["local"].monthly
    outcomes = set()
    for e164 in NUMBERS:
        order_id, chosen = _submitted(client, partner, tenant.id, e164)
        with db.read_session() as session:
            split = session.scalars(
                select(PortCarrierOrder.carrier_order_id).where(
                    PortCarrierOrder.order_id == order_id
                )
            ).one()
        with db.read_session() as session:
            before = ledger.wallet_balance(session, partner.id, settings.currency)
        day = date.fromisoformat(chosen)
        complete = functools.partial(porting.complete, db, carrier, settings, order_id, split, day)
        results = _race(
            complete, complete, functools.partial(porting.finish_cancel, db, scope, order_id)
        )
        status, live, balance = _state(db, settings, order_id, e164, partner.id)
        if status == "cancelled":
            assert results[0] == [] and results[1] == []
            assert live == 0 and balance == before
        else:
            assert status == "ported"
            assert isinstance(results[2], DidhubError)  # the cancel was refused
            assert sorted(map(bool, results[:2])) == [False, True]  # completed once
            assert live == 1 and balance == before - monthly
        outcomes.add(status)
    assert ledger_ok(db)
    assert outcomes <= {"cancelled", "ported"}
