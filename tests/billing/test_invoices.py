"""Monthly invoices explain every wallet movement and add up:
opening + credits − charges = closing, month after month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient

from conftest import Acct, search_numbers
from didhub import clock
from didhub.billing.service import renewals
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.sandbox_gateway import SandboxGateway


def at(day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    clock.set_clock(lambda: moment)


def test_invoices_itemise_and_add_up(
    client: TestClient,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
) -> None:
    at(date(2030, 2, 20))
    acct = make_partner("Acme", balance="20.00")
    h = acct.headers
    at(date(2030, 3, 5))
    found = search_numbers(client, acct, area_code="501", page_size=2)
    toll = search_numbers(client, acct, phone_number_type="toll-free", page_size=1)[0]
    carrier.inject_fault("partial", numbers=[found[1]["phone_number"]])
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [found[0]["phone_number"], found[1]["phone_number"]]},
        headers=h,
    ).json()
    assert bought["meta"]["refunded"] == "2.00"
    client.post(
        "/telephony/numbers/purchase", json={"phone_number": toll["phone_number"]}, headers=h
    )
    client.put("/billing/card", json={"card_token": "tok_visa"}, headers=h)
    at(date(2030, 3, 9))
    assert (
        client.post("/billing/wallet/topup", json={"amount": "10.00"}, headers=h).status_code == 200
    )
    call = {
        "phone_number": toll["phone_number"],
        "direction": "inbound",
        "started_at": "2030-03-09T11:00:00Z",  # before noon, the clock's now
        "duration_seconds": 125,
        "call_id": "inv-1",
    }
    client.post("/billing/usage", json={"records": [call]})
    at(date(2030, 4, 5))
    renewals.run(db, carrier, SandboxGateway(db), settings, date(2030, 4, 5))

    listed = client.get("/billing/invoices", headers=h).json()["data"]
    assert [i["month"] for i in listed] == ["2030-04", "2030-03", "2030-02"]
    march = client.get("/billing/invoices/2030-03", headers=h).json()["data"]
    assert march["opening_balance"] == "20.00"
    lines = [(ln["kind"], ln["phone_number"], ln["amount"]) for ln in march["lines"]]
    assert lines == [
        ("setup", found[0]["phone_number"], "1.00"),
        ("monthly", found[0]["phone_number"], "1.00"),
        ("setup", found[1]["phone_number"], "1.00"),
        ("monthly", found[1]["phone_number"], "1.00"),
        ("credit", None, "-2.00"),  # the number the carrier couldn't provide
        ("setup", toll["phone_number"], "5.00"),
        ("monthly", toll["phone_number"], "2.50"),
        ("credit", None, "-10.00"),  # card top-up
        ("usage", toll["phone_number"], "0.0525"),  # 126 s of toll-free inbound
    ]
    assert march["lines"][-1]["minutes"] == 3
    assert march["charges"] == "11.5525" and march["credits"] == "12.00"
    assert march["closing_balance"] == "20.4475"
    april = client.get("/billing/invoices/2030-04", headers=h).json()["data"]
    assert april["opening_balance"] == march["closing_balance"]
    renewal_lines = [ln for ln in april["lines"] if ln["kind"] == "renewal"]
    assert {(ln["phone_number"], ln["period_start"], ln["period_end"]) for ln in renewal_lines} == {
        (found[0]["phone_number"], "2030-04-05", "2030-05-05"),
        (toll["phone_number"], "2030-04-05", "2030-05-05"),
    }
    for inv in (march, april):
        total = Decimal(inv["opening_balance"]) + Decimal(inv["credits"]) - Decimal(inv["charges"])
        assert total == Decimal(inv["closing_balance"])
    wallet = client.get("/billing/wallet", headers=h).json()["data"]["balance"]
    assert wallet == april["closing_balance"] == "16.9475"

    page = client.get("/billing/invoices/2030-03?format=html", headers=h)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Invoice 2030-03" in page.text and toll["phone_number"] in page.text
    assert "20.4475" in page.text

    bad = client.get("/billing/invoices/March", headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "month"
    other = make_tenant("Other", None)
    assert (
        client.get("/billing/invoices/2030-03", headers=other.headers).json()["data"]["lines"] == []
    )


def test_a_configured_tax_is_shown_as_included_in_the_charges(
    make_partner: Callable[..., Acct],
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
) -> None:
    from didhub.api.app import create_app

    taxed = settings.model_copy(update={"tax_name": "GST", "tax_rate": Decimal("0.10")})
    client = TestClient(create_app(taxed, db, carrier))
    at(date(2030, 4, 2))
    acct = make_partner("Taxed", balance="20.00")
    number = search_numbers(client, acct, phone_number_type="toll-free", page_size=1)[0]
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_number": number["phone_number"]},
        headers=acct.headers,
    )
    assert bought.status_code == 200, bought.text
    inv = client.get("/billing/invoices/2030-04", headers=acct.headers).json()["data"]
    # 5.00 setup + 2.50 month = 7.50, of which GST at 10 %: 7.50 × 0.10 / 1.10 = 0.68
    assert inv["charges"] == "7.50"
    assert inv["tax"] == {"name": "GST", "rate": "0.10", "included": "0.68"}
    page = client.get("/billing/invoices/2030-04?format=html", headers=acct.headers).text
    assert "of which GST (10 %)" in page and "0.68" in page
    # Without a tax configured the invoice has none.
    plain = TestClient(create_app(settings, db, carrier))
    assert (
        plain.get("/billing/invoices/2030-04", headers=acct.headers).json()["data"]["tax"] is None
    )
