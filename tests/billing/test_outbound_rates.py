"""Outbound minutes rated by destination (issue 15): a rate table by prefix
(the longest wins) imported from CSV by CLI or API, a default rate for the
rest, billed like inbound usage (6 s increments), and resold to tenants at the
platform's rate plus the partner's markup (never below its flat outbound
price)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.cli import app as cli
from didhub.db import Database

DECK = (
    "prefix,rate,description\n"
    "44,0.0200,United Kingdom\n"
    "447,0.0900,United Kingdom mobile\n"
    "1,0.0050,US/Canada\n"
)


def calls(client: TestClient, acct: Acct) -> dict[str, dict[str, Any]]:
    rows = client.get("/billing/calls", headers=acct.headers).json()["data"]
    return {r["call_id"]: r for r in rows}


def record(number: str, call_id: str, seconds: int, destination: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "phone_number": number,
        "direction": "outbound",
        "started_at": clock.now().isoformat(),
        "duration_seconds": seconds,
        "call_id": call_id,
    }
    if destination is not None:
        out["destination"] = destination
    return out


def test_rates_imported_by_cli_rate_outbound_calls_by_longest_prefix(
    cli_env: None, client: TestClient, partner: Acct, tmp_path: Path
) -> None:
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK)
    runner = CliRunner()
    done = runner.invoke(cli, ["outbound", "rates-import", str(deck)])
    assert done.exit_code == 0, done.output
    assert "3 outbound rate(s) imported" in done.output and "0.0200 a minute" in done.output
    listed = runner.invoke(cli, ["outbound", "rates"])
    assert "United Kingdom mobile" in listed.output and "0.0900" in listed.output
    shown = client.get("/outbound/rates", headers=partner.headers).json()
    assert [(r["prefix"], r["rate"]) for r in shown["data"]] == [
        ("1", "0.0050"),
        ("44", "0.0200"),
        ("447", "0.0900"),
    ]
    assert shown["meta"]["default_rate"] == "0.0200"

    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_numbers": [number]}, headers=partner.headers
    )
    assert bought.status_code == 200, bought.text
    records = [
        record(number, "uk-mobile", 61, "+447911123456"),  # 66 s at 0.09 = 0.099
        record(number, "uk-land", 60, "+442079460123"),  # 60 s at 0.02 = 0.02
        record(number, "us", 60, "+15015550123"),  # 0.005
        record(number, "france", 30, "+33142685300"),  # the default: 30 s at 0.02 = 0.01
        record(number, "unknown", 60, None),  # as before: the local outbound rate 0.01
    ]
    posted = client.post("/billing/usage", json={"records": records}).json()["data"]
    assert posted["accepted"] == 5 and posted["rejected"] == []
    assert posted["charged"] == "0.1440"  # 0.099 + 0.02 + 0.005 + 0.01 + 0.01
    seen = calls(client, partner)
    assert seen["uk-mobile"]["billable_seconds"] == 66
    assert seen["uk-mobile"]["charge"] == "0.0990"
    assert seen["uk-mobile"]["destination"] == "+447911123456"
    assert seen["unknown"]["destination"] is None
    # A destination on an inbound call, or not a number, names the field.
    bad = client.post(
        "/billing/usage",
        json={"records": [{**record(number, "x", 5, "+447911123456"), "direction": "inbound"}]},
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "records[0].destination"
    bad = client.post("/billing/usage", json={"records": [record(number, "y", 5, "+1234")]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "records[0].destination"


def test_rate_deck_through_the_api_replaces_the_table_and_checks_every_line(
    client: TestClient, partner: Acct, settings: Any
) -> None:
    edge = {"Authorization": f"Bearer {settings.edge_token}", "Content-Type": "text/csv"}
    put = client.put("/outbound/rates", content=DECK, headers=edge)
    assert put.status_code == 200, put.text
    assert len(put.json()["data"]) == 3
    again = client.put("/outbound/rates", content="prefix,rate\n+49,0.015\n", headers=edge)
    assert [(r["prefix"], r["rate"]) for r in again.json()["data"]] == [("49", "0.0150")]
    for body, field in [
        ("code,price\n44,abc\n", "line 2"),
        ("prefix,rate\n4x,0.01\n", "line 2"),
        ("prefix,rate\n44,0.01\n44,0.02\n", "rates[1].prefix"),
        ("prefix,rate\n44,0.00001\n", "line 2"),
        ("dial,cost\n", "prefix"),
    ]:
        bad = client.put("/outbound/rates", content=body, headers=edge)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["field"] == field, body
    # Nothing changed by a refused deck.
    rates = client.get("/outbound/rates", headers=partner.headers).json()["data"]
    assert [r["prefix"] for r in rates] == ["49"]
    # A partner's key is not the operator's.
    refused = client.put(
        "/outbound/rates",
        content=DECK,
        headers={**partner.headers, "Content-Type": "text/csv"},
    )
    assert refused.status_code in (401, 403)


def test_tenants_pay_cost_plus_markup_for_dear_destinations(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct], db: Database, settings: Any
) -> None:
    edge = {"Authorization": f"Bearer {settings.edge_token}", "Content-Type": "text/csv"}
    assert client.put("/outbound/rates", content=DECK, headers=edge).status_code == 200
    dental = make_tenant("Dental", partner.id, balance="20.00")
    price = {
        "phone_number_type": "local",
        "monthly": "0",
        "setup": "0",
        "per_minute_outbound": "0.0300",
        "outbound_markup_percent": "50",
    }
    set_price = client.put("/billing/retail-prices", json=price, headers=partner.headers)
    assert set_price.status_code == 200, set_price.text
    assert set_price.json()["data"]["outbound_markup_percent"] == "50.00"
    bad = client.put(
        "/billing/retail-prices",
        json={**price, "outbound_markup_percent": "-5"},
        headers=partner.headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outbound_markup_percent"
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [number["phone_number"]]},
        headers=partner.headers,
    ).json()["data"][0]
    moved = client.patch(
        f"/telephony/numbers/{bought['id']}", json={"tenant_id": dental.id}, headers=partner.headers
    )
    assert moved.status_code == 200
    e164 = bought["phone_number"]
    records = [
        # 0.09 a minute to a UK mobile: 0.135 retail (cost + 50%), 2 minutes = 0.27
        record(e164, "dear", 120, "+447911123456"),
        # 0.005 to the US: cost + 50% is below the flat 0.03, so 0.03
        record(e164, "cheap", 60, "+15015550123"),
    ]
    assert client.post("/billing/usage", json={"records": records}).status_code == 200
    tenant_view = calls(client, dental)
    assert tenant_view["dear"]["charge"] == "0.27"
    assert tenant_view["cheap"]["charge"] == "0.03"
    partner_view = calls(client, partner)
    assert partner_view["dear"]["charge"] == "0.18"  # wholesale, what the partner pays
    wallet = client.get("/billing/wallet", headers=dental.headers).json()["data"]
    assert wallet["balance"] == "19.70"
    margin = client.get("/billing/margin", headers=partner.headers).json()["data"]
    # Wholesale: the number's first month and setup (2.00), the calls 0.18 + 0.005.
    assert [(m["retail"], m["wholesale"]) for m in margin] == [("0.30", "2.1850")]
    assert ledger_ok(db)
