"""Resale follows the events as they happened: a tenant pays retail only for an
event that took place while a retail price applied, at that price, and only
if the number served that tenant at that moment (a renewal at its period's
start, a call at its start, an assignment when it was made). And recording a
resold event is insert-or-nothing, so a sweep racing a request never turns
into an error."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.billing.models import ResaleCharge
from didhub.billing.service import renewals, resale
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.wallet import ledger

PRICE = {
    "phone_number_type": "local",
    "monthly": "3.00",
    "setup": "5.00",
    "per_minute_inbound": "0.0100",
    "per_minute_outbound": "0.0300",
}


def at(year: int, month: int, day: int, hour: int = 12) -> None:
    clock.set_clock(lambda: datetime(year, month, day, hour, tzinfo=UTC))


def balance(client: TestClient, acct: Acct) -> str:
    value: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"]
    return value


def set_price(client: TestClient, partner: Acct, **changes: str) -> None:
    r = client.put("/billing/retail-prices", json={**PRICE, **changes}, headers=partner.headers)
    assert r.status_code == 200, r.text


def buy_one(client: TestClient, partner: Acct) -> dict[str, Any]:
    found = search_numbers(client, partner, area_code="501", page_size=1)[0]
    r = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [found["phone_number"]]},
        headers=partner.headers,
    )
    assert r.status_code == 200, r.text
    number: dict[str, Any] = r.json()["data"][0]
    return number


def give(client: TestClient, partner: Acct, number: dict[str, Any], tenant: Acct) -> None:
    r = client.patch(
        f"/telephony/numbers/{number['id']}", json={"tenant_id": tenant.id}, headers=partner.headers
    )
    assert r.status_code == 200, r.text


def call(client: TestClient, number: dict[str, Any], started_at: str, call_id: str) -> None:
    record = {
        "phone_number": number["phone_number"],
        "direction": "outbound",
        "started_at": started_at,
        "duration_seconds": 60,
        "call_id": call_id,
    }
    r = client.post("/billing/usage", json={"records": [record]})
    assert r.status_code == 200 and r.json()["data"]["accepted"] == 1, r.text


def margin(client: TestClient, partner: Acct) -> dict[tuple[str, str], tuple[str, str]]:
    rows = client.get("/billing/margin", headers=partner.headers).json()["data"]
    return {(r["tenant_name"], r["month"]): (r["retail"], r["wholesale"]) for r in rows}


def test_a_first_retail_price_bills_nothing_from_before_it(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    gateway = SandboxGateway(db)
    at(2030, 1, 10)
    dental = make_tenant("Dental", partner.id, balance="50.00")
    number = buy_one(client, partner)  # 1.00 setup + 1.00 first month, wholesale
    give(client, partner, number, dental)
    for month in (2, 3, 4):
        at(2030, month, 10)
        renewals.run(db, carrier, gateway, settings, date(2030, month, 10))
    call(client, number, "2030-04-10T09:00:00Z", "before-price")  # 0.01 wholesale
    assert balance(client, partner) == "94.99"

    # Months later the partner starts reselling; the sweep runs.
    at(2030, 4, 20)
    set_price(client, partner)
    renewals.run(db, carrier, gateway, settings, date(2030, 4, 20))
    # The assignment, three renewals and the call all happened before any
    # retail price: the tenant owes nothing for them.
    assert balance(client, dental) == "50.00"
    assert balance(client, partner) == "94.99"
    assert margin(client, partner) == {}

    # The next renewal is the first event under a retail price.
    at(2030, 5, 10)
    renewals.run(db, carrier, gateway, settings, date(2030, 5, 10))
    assert balance(client, dental) == "47.00"
    assert balance(client, partner) == "96.99"  # 94.99 - 1.00 + 3.00
    assert margin(client, partner) == {("Dental", "2030-05"): ("3.00", "1.00")}
    assert ledger_ok(db)


def test_b_each_event_is_resold_to_the_tenant_served_at_the_time(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    gateway = SandboxGateway(db)
    at(2030, 1, 10)
    dental = make_tenant("Dental", partner.id, balance="50.00")
    vet = make_tenant("Vet", partner.id, balance="50.00")
    set_price(client, partner)  # Dental pays the default
    set_price(client, partner, tenant_id=vet.id, monthly="2.50", setup="0")
    number = buy_one(client, partner)
    give(client, partner, number, dental)
    assert balance(client, dental) == "42.00"  # setup 5 + first month 3

    at(2030, 2, 10)
    renewals.run(db, carrier, gateway, settings, date(2030, 2, 10))
    assert balance(client, dental) == "39.00"

    # The period that began on 10 March began while the number served Dental;
    # it moves to Vet the next morning, and the run bills that period a day late.
    at(2030, 3, 11, hour=9)
    give(client, partner, number, vet)
    assert balance(client, vet) == "47.50"  # Vet's setup 0 + first month 2.50
    call(client, number, "2030-03-10T18:00:00Z", "dental-call")  # Dental's call, reported late
    at(2030, 3, 12)
    renewals.run(db, carrier, gateway, settings, date(2030, 3, 12))
    assert balance(client, dental) == "35.97"  # 39.00 - 3.00 (March) - 0.03 (its call)
    assert balance(client, vet) == "47.50"

    at(2030, 4, 10)
    renewals.run(db, carrier, gateway, settings, date(2030, 4, 10))
    assert balance(client, dental) == "35.97"
    assert balance(client, vet) == "45.00"

    assert margin(client, partner) == {
        ("Dental", "2030-01"): ("8.00", "2.00"),
        ("Dental", "2030-02"): ("3.00", "1.00"),
        ("Dental", "2030-03"): ("3.03", "1.01"),
        ("Vet", "2030-03"): ("2.50", "2.00"),
        ("Vet", "2030-04"): ("2.50", "1.00"),
    }
    # 100 - 2 (purchase) - 3 (renewals) - 0.01 (call) + 14.03 + 5.00 from tenants
    assert balance(client, partner) == "114.02"
    assert ledger_ok(db)


def test_c_a_price_change_does_not_reprice_earlier_events(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    gateway = SandboxGateway(db)
    at(2030, 1, 10)
    dental = make_tenant("Dental", partner.id, balance="50.00")
    set_price(client, partner)
    number = buy_one(client, partner)
    give(client, partner, number, dental)
    at(2030, 2, 10)
    renewals.run(db, carrier, gateway, settings, date(2030, 2, 10))
    assert balance(client, dental) == "39.00"

    # A dearer price from 11 March. The period that began on 10 March and a call
    # made that evening are billed only afterwards, at the price of their time.
    at(2030, 3, 11)
    set_price(client, partner, monthly="4.00", setup="6.00", per_minute_outbound="0.0500")
    prices = client.get("/billing/retail-prices", headers=partner.headers).json()["data"]
    assert [(p["monthly"], p["per_minute_outbound"]) for p in prices] == [("4.00", "0.0500")]
    at(2030, 3, 12)
    call(client, number, "2030-03-10T23:00:00Z", "old-price-call")
    renewals.run(db, carrier, gateway, settings, date(2030, 3, 12))
    assert balance(client, dental) == "35.97"  # 3.00 + 0.03, not 4.00 + 0.05

    at(2030, 4, 10)
    renewals.run(db, carrier, gateway, settings, date(2030, 4, 10))
    assert balance(client, dental) == "31.97"  # April began under the new price
    assert margin(client, partner) == {
        ("Dental", "2030-01"): ("8.00", "2.00"),
        ("Dental", "2030-02"): ("3.00", "1.00"),
        ("Dental", "2030-03"): ("3.03", "1.01"),
        ("Dental", "2030-04"): ("4.00", "1.00"),
    }
    assert ledger_ok(db)


@pytest.mark.skipif(
    not os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql"),
    reason="two transactions at once need PostgreSQL's row locks (SQLite has one writer)",
)
@pytest.mark.parametrize("request_kind", ["patch", "assign"])
def test_d_the_sweep_racing_an_assignment_never_answers_500(
    request_kind: str,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = TestClient(create_app(settings, db, carrier), raise_server_exceptions=False)
    at(2030, 1, 10)
    dental = make_tenant("Dental", partner.id, balance="50.00")
    set_price(client, partner)
    number = buy_one(client, partner)

    # The sweep resells the assignment after the request has looked for what
    # is due and before it records it: exactly once, on its first wallet step.
    ensure_wallet = ledger.ensure_wallet
    raced: list[bool] = []

    def sweep_first(session: Any, owner_id: str, currency: str) -> str:
        if owner_id == dental.id and not raced:
            raced.append(True)
            resale.bill_tenants(db, settings)
        return ensure_wallet(session, owner_id, currency)

    monkeypatch.setattr(ledger, "ensure_wallet", sweep_first)
    headers = {**partner.headers, "Idempotency-Key": f"race-{request_kind}"}
    if request_kind == "patch":
        url, body = f"/telephony/numbers/{number['id']}", {"tenant_id": dental.id}
        send = lambda: client.patch(url, json=body, headers=headers)  # noqa: E731
    else:
        agent = client.post(
            "/agents", json={"tenant_id": dental.id, "name": "Desk"}, headers=partner.headers
        ).json()["data"]
        url = "/telephony/numbers/assign"
        body = {"number_id": number["id"], "agent_id": agent["id"], "assignment_type": "inbound"}
        send = lambda: client.post(url, json=body, headers=headers)  # noqa: E731
    first = send()
    assert raced, "the sweep did not run inside the request"
    assert first.status_code == 200, first.text
    monkeypatch.setattr(ledger, "ensure_wallet", ensure_wallet)

    assert balance(client, dental) == "42.00"  # setup + first month, once
    assert balance(client, partner) == "106.00"  # 100 - 2.00 wholesale + 8.00 retail
    with db.session() as session:
        charges = session.scalar(select(func.count()).select_from(ResaleCharge))
    assert charges == 1
    again = send()
    assert again.status_code == first.status_code and again.json() == first.json()
    assert balance(client, dental) == "42.00"
    got = client.get(f"/telephony/numbers/{number['id']}", headers=partner.headers).json()["data"]
    assert got["tenant_id"] == dental.id
    assert ledger_ok(db)
