"""A partner's tenants pay it retail for the events the partner pays wholesale
for: the number's setup and first month when assigned, each renewal, each call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.billing.service import renewals
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.sandbox_gateway import SandboxGateway


def balance(client: TestClient, acct: Acct) -> str:
    value: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"]
    return value


def test_tenants_pay_retail_partner_pays_wholesale(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    clock.set_clock(lambda: datetime(2030, 3, 10, 12, tzinfo=UTC))
    dental = make_tenant("Dental", partner.id, balance="20.00")
    vet = make_tenant("Vet", partner.id, balance="20.00")
    h = partner.headers
    default = {
        "phone_number_type": "local",
        "monthly": "3.00",
        "setup": "5.00",
        "per_minute_inbound": "0.0100",
        "per_minute_outbound": "0.0300",
    }
    assert client.put("/billing/retail-prices", json=default, headers=h).status_code == 200
    override = {**default, "tenant_id": vet.id, "monthly": "2.50", "setup": "0"}
    assert client.put("/billing/retail-prices", json=override, headers=h).status_code == 200
    prices = client.get("/billing/retail-prices", headers=h).json()["data"]
    assert {(p["tenant_id"], p["monthly"]) for p in prices} == {(None, "3.00"), (vet.id, "2.50")}

    found = search_numbers(client, partner, area_code="501", page_size=2)
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [f["phone_number"] for f in found]},
        headers=h,
    ).json()["data"]
    assert balance(client, partner) == "96.00"
    for number, tenant in zip(bought, (dental, vet), strict=True):
        r = client.patch(
            f"/telephony/numbers/{number['id']}", json={"tenant_id": tenant.id}, headers=h
        )
        assert r.status_code == 200
    # Dental: setup 5 + month 3; Vet: setup 0 + month 2.50; the partner gets both.
    assert balance(client, dental) == "12.00"
    assert balance(client, vet) == "17.50"
    assert balance(client, partner) == "106.50"

    # A month later: the partner pays 1.00 wholesale per number, tenants pay retail.
    gateway = SandboxGateway(db)
    for _ in range(2):  # a re-run resells nothing twice
        renewals.run(db, carrier, gateway, settings, date(2030, 4, 10))
    assert balance(client, dental) == "9.00"
    assert balance(client, vet) == "15.00"
    assert balance(client, partner) == "110.00"  # 106.50 - 2.00 + 3.00 + 2.50

    # A 60 s outbound call from Dental's number: 0.01 wholesale, 0.03 retail.
    clock.set_clock(lambda: datetime(2030, 4, 11, 12, tzinfo=UTC))
    call = {
        "phone_number": bought[0]["phone_number"],
        "direction": "outbound",
        "started_at": "2030-04-11T09:00:00Z",
        "duration_seconds": 60,
        "call_id": "r1",
    }
    assert client.post("/billing/usage", json={"records": [call]}).status_code == 200
    assert balance(client, dental) == "8.97"
    assert balance(client, partner) == "110.02"

    report = client.get("/billing/margin", headers=h).json()["data"]
    by = {(r["tenant_name"], r["month"]): r for r in report}
    assert by[("Dental", "2030-03")] == {
        "tenant_id": dental.id,
        "tenant_name": "Dental",
        "month": "2030-03",
        "retail": "8.00",
        "wholesale": "2.00",
        "margin": "6.00",
        "currency": "USD",
    }
    assert by[("Vet", "2030-03")]["margin"] == "0.50"
    # April: the renewal (3.00 − 1.00) and the call (0.03 − 0.01).
    assert by[("Dental", "2030-04")]["margin"] == "2.02"
    assert client.get("/billing/margin", headers=dental.headers).status_code == 403
    denied = client.put("/billing/retail-prices", json=default, headers=dental.headers)
    assert denied.status_code == 403
    assert ledger_ok(db)


def test_retail_price_validation(client: TestClient, partner: Acct) -> None:
    base = {"phone_number_type": "local", "monthly": "3.00"}
    for body, field in [
        ({**base, "monthly": "-1"}, "monthly"),
        ({**base, "setup": "1.001"}, "setup"),
        ({**base, "per_minute_inbound": "0.00001"}, "per_minute_inbound"),
        ({**base, "phone_number_type": "satellite"}, "phone_number_type"),
        ({**base, "tenant_id": "ten_nope"}, "tenant_id"),
    ]:
        r = client.put("/billing/retail-prices", json=body, headers=partner.headers)
        assert r.status_code in (404, 422), (body, r.text)
        assert r.json()["error"]["field"] == field
