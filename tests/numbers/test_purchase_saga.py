"""The purchase saga under carrier faults: every path ends with the number
either active and paid once, or failed and refunded to the cent, after
``reconcile``; and the ledger checks clean."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, ledger_ok, search_numbers
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import CarrierError
from didhub.numbers import service as numbers
from didhub.numbers.service import orders
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger

NOW = timedelta(0)


class Crash(BaseException):
    """The process dying between two steps of the saga."""


def balance(db: Database, acct: Acct) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, acct.id, "USD")


def statuses(db: Database, acct: Acct) -> dict[str, str]:
    scope = Scope(acct.id, PARTNER)
    with db.session() as session:
        page = numbers.list_numbers(session, scope, numbers.InventoryFilter(status="all"), 100)
        return {n.e164: n.status for n in page.data}


def pick(client: TestClient, acct: Acct, n: int, area_code: str = "415") -> list[str]:
    return [
        i["phone_number"] for i in search_numbers(client, acct, area_code=area_code, page_size=n)
    ]


def test_definite_failure_refunds_exactly_and_answers_502(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    [number] = pick(client, partner, 1)
    carrier.inject_fault("fail")
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "carrier_error"
    assert "$2.00 was refunded" in response.json()["error"]["message"]
    assert balance(db, partner) == Decimal("100.00")
    assert statuses(db, partner) == {number: "failed"}
    kinds = [
        t["kind"]
        for t in client.get("/billing/transactions", headers=partner.headers).json()["data"]
    ]
    assert kinds == ["refund", "purchase", "funding"]
    assert ledger_ok(db)
    # It can be bought again once the carrier recovers.
    again = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    )
    assert again.status_code == 200
    assert balance(db, partner) == Decimal("98.00")


def test_partial_fill_refunds_only_the_failed_numbers(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    five = pick(client, partner, 5)
    carrier.inject_fault("partial", numbers=five[:2])
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_numbers": five}, headers=partner.headers
    )
    assert response.status_code == 200
    meta = response.json()["meta"]
    assert meta["charged"] == "10.00" and meta["refunded"] == "4.00"
    assert set(meta["errors"]) == set(five[:2])
    assert [n["status"] for n in response.json()["data"]] == [
        "failed",
        "failed",
        "active",
        "active",
        "active",
    ]
    assert balance(db, partner) == Decimal("94.00")
    assert ledger_ok(db)


@pytest.mark.parametrize(("fault", "expected"), [("timeout", "failed"), ("unknown", "active")])
def test_unknown_outcome_stays_provisioning_until_reconcile(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    fault: str,
    expected: str,
) -> None:
    [number] = pick(client, partner, 1)
    carrier.inject_fault(fault)
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    )
    assert response.status_code == 202
    assert response.json()["data"]["status"] == "provisioning"
    assert response.json()["meta"]["outcome_known"] is False
    assert balance(db, partner) == Decimal("98.00")
    # Young orders are left alone: their purchase may still be talking to the carrier.
    assert numbers.reconcile(db, carrier, settings).orders_checked == 0
    report = numbers.reconcile(db, carrier, settings, min_age=NOW)
    assert report.orders_checked == 1
    assert statuses(db, partner) == {number: expected}
    assert balance(db, partner) == (Decimal("100.00") if expected == "failed" else Decimal("98.00"))
    assert report.refunded == (Decimal("2.00") if expected == "failed" else Decimal("0"))
    # Reconciling again changes nothing.
    again = numbers.reconcile(db, carrier, settings, min_age=NOW)
    assert again.orders_checked == 0 and again.refunded == 0
    assert ledger_ok(db)


def test_crash_after_debit_before_carrier_call_is_refunded_by_reconcile(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [number] = pick(client, partner, 1)

    def crash(order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        raise Crash

    monkeypatch.setattr(carrier, "order", crash)
    with pytest.raises(Crash):
        numbers.purchase(db, carrier, settings, Scope(partner.id, PARTNER), [number])
    monkeypatch.undo()
    assert statuses(db, partner) == {number: "provisioning"}
    assert balance(db, partner) == Decimal("98.00")
    report = numbers.reconcile(db, carrier, settings, min_age=NOW)
    assert report.failed == [number] and report.refunded == Decimal("2.00")
    assert balance(db, partner) == Decimal("100.00")
    assert ledger_ok(db)


def test_crash_after_carrier_order_before_settling_is_activated_by_reconcile(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [number] = pick(client, partner, 1)

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(orders, "settle_order", crash)
    with pytest.raises(Crash):
        numbers.purchase(db, carrier, settings, Scope(partner.id, PARTNER), [number])
    monkeypatch.undo()
    report = numbers.reconcile(db, carrier, settings, min_age=NOW)
    assert report.activated == [number]
    assert statuses(db, partner) == {number: "active"}
    assert balance(db, partner) == Decimal("98.00")
    assert ledger_ok(db)


def test_release_refused_by_carrier_keeps_number_active(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    [number] = pick(client, partner, 1)
    number_id = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    ).json()["data"]["id"]
    carrier.inject_fault("fail")
    response = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
    )
    assert response.status_code == 502
    assert statuses(db, partner) == {number: "active"}


def test_release_with_unknown_outcome_is_finished_by_reconcile(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database, settings: Settings
) -> None:
    [number] = pick(client, partner, 1)
    number_id = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    ).json()["data"]["id"]
    carrier.inject_fault("timeout")
    response = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
    )
    assert response.status_code == 202
    assert response.json()["data"]["status"] == "releasing"
    report = numbers.reconcile(db, carrier, settings, min_age=NOW)
    assert report.released == [number]
    assert statuses(db, partner) == {number: "released"}


def test_all_failed_raises_carrier_error_from_the_service(
    client: TestClient,
    make_partner: Callable[..., Acct],
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
) -> None:
    acct = make_partner("x")
    two = pick(client, acct, 2, "212")
    carrier.inject_fault("fail")
    with pytest.raises(CarrierError):
        numbers.purchase(db, carrier, settings, Scope(acct.id, PARTNER), two)
    assert balance(db, acct) == Decimal("100.00")
