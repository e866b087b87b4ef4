"""Per-minute usage: rated by number type and direction, 6-second increments with
a 6-second minimum, duplicates ignored, posted to the wallet in one transaction."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.billing.service.rating import billable_seconds, charge_for
from didhub.cli import app
from didhub.config import Settings
from didhub.db import Database


def wallet(client: TestClient, acct: Acct) -> str:
    balance: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"]
    return balance


def buy(client: TestClient, acct: Acct, **search: Any) -> str:
    number: str = search_numbers(client, acct, page_size=1, **search)[0]["phone_number"]
    r = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=acct.headers
    )
    assert r.status_code == 200
    return number


def call(
    number: str,
    call_id: str,
    seconds: int,
    direction: str = "inbound",
    started: datetime | None = None,
) -> dict[str, Any]:
    """A call record; by default the call starts now (after the number was bought)."""
    return {
        "phone_number": number,
        "direction": direction,
        "started_at": (started or clock.now()).isoformat(),
        "duration_seconds": seconds,
        "call_id": call_id,
    }


@pytest.mark.parametrize(
    ("duration", "billable"), [(0, 0), (1, 6), (6, 6), (7, 12), (60, 60), (65, 66), (3601, 3606)]
)
def test_six_second_increments_with_a_minimum(duration: int, billable: int) -> None:
    assert billable_seconds(duration, 6, 6) == billable


def test_charges_are_exact_to_a_hundredth_of_a_cent() -> None:
    assert charge_for(Decimal("0.0250"), 66) == Decimal("0.0275")
    assert charge_for(Decimal("0.0100"), 6) == Decimal("0.0010")
    assert charge_for(Decimal("0.0000"), 600) == Decimal("0.0000")


def test_usage_is_rated_by_type_and_direction_and_posted(
    client: TestClient, partner: Acct, db: Database
) -> None:
    toll = buy(client, partner, phone_number_type="toll-free")  # 7.50
    local = buy(client, partner, area_code="501")  # 2.00
    assert wallet(client, partner) == "90.50"
    records = [
        call(toll, "c1", 65),  # toll-free inbound 0.0250/min × 66 s = 0.0275
        call(toll, "c2", 120, "outbound"),  # 0.0100 × 2 min = 0.0200
        call(local, "c3", 600),  # local inbound: free
        call(local, "c4", 30, "outbound"),  # 0.0100 × 30 s = 0.0050
    ]
    response = client.post("/billing/usage", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "accepted": 4,
        "duplicates": 0,
        "rejected": [],
        "charged": "0.0525",
    }
    assert wallet(client, partner) == "90.4475"
    txns = client.get("/billing/transactions", headers=partner.headers).json()["data"]
    assert txns[0]["kind"] == "usage" and txns[0]["amount"] == "-0.0525"
    assert len([t for t in txns if t["kind"] == "usage"]) == 1  # one batch, one transaction
    # The edge resends: nothing is charged twice.
    again = client.post(
        "/billing/usage", json={"records": records + [call(local, "c5", 6, "outbound")]}
    )
    assert again.json()["data"]["accepted"] == 1 and again.json()["data"]["duplicates"] == 4
    assert wallet(client, partner) == "90.4465"
    assert ledger_ok(db)


def test_calls_to_numbers_we_did_not_hold_are_reported_not_charged(
    client: TestClient, partner: Acct
) -> None:
    local = buy(client, partner, area_code="415")
    response = client.post(
        "/billing/usage",
        json={"records": [call("+12125550199", "x1", 60), call(local, "x2", 60, "outbound")]},
    )
    data = response.json()["data"]
    assert data["accepted"] == 1 and data["charged"] == "0.01"
    assert data["rejected"][0]["call_id"] == "x1" and data["rejected"][0]["field"] == "phone_number"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"direction": "sideways"}, "records[0].direction"),
        ({"duration_seconds": -5}, "records[0].duration_seconds"),
        ({"started_at": "2030-01-01T10:00:00"}, "records[0].started_at"),
        ({"phone_number": "+1555"}, "records[0].phone_number"),
        ({"call_id": ""}, "records[0].call_id"),
    ],
)
def test_a_bad_record_fails_the_batch_naming_it(
    client: TestClient, partner: Acct, record: dict[str, Any], field: str
) -> None:
    local = buy(client, partner, area_code="303")
    bad = {**call(local, "b1", 60, "outbound"), **record}
    response = client.post(
        "/billing/usage", json={"records": [bad, call(local, "b2", 60, "outbound")]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert wallet(client, partner) == "98.00"  # the good record wasn't charged either


def test_cdr_csv_import(
    client: TestClient, partner: Acct, tmp_path: Path, cli_env: None, db: Database
) -> None:
    toll = buy(client, partner, phone_number_type="toll-free")
    csv_file = tmp_path / "cdrs.csv"
    start = clock.now().isoformat()
    csv_file.write_text(
        "number,direction,start,duration,call_id\n"
        f"{toll},inbound,{start},65,k1\n"
        f"{toll},inbound,{start},6,k2\n"
        f"{toll},inbound,{start},6,k2\n"
    )
    result = CliRunner().invoke(app, ["billing", "import-cdrs", str(csv_file), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["accepted"] == 2 and out["duplicates"] == 1 and out["charged"] == "0.03"
    broken = tmp_path / "broken.csv"
    broken.write_text(f"number,direction,start,duration,call_id\n{toll},inbound,yesterday,5,z\n")
    result = CliRunner().invoke(app, ["billing", "import-cdrs", str(broken)])
    assert result.exit_code == 1 and "line 2" in result.output
    assert ledger_ok(db)


def test_calls_that_cannot_have_happened_are_reported_not_charged(
    client: TestClient, partner: Acct, db: Database
) -> None:
    """A record starting in the future (past the edge's clock skew) or longer
    than the edge lets a call last is reported back, field named; the rest of
    the batch is rated."""
    toll = buy(client, partner, phone_number_type="toll-free")
    before = Decimal(wallet(client, partner))
    longest = 4 * 3600  # DIDHUB_MAX_CALL_SECONDS, by default
    now = clock.now()
    records = [
        call(toll, "future", 60, started=now + timedelta(hours=1)),
        call(toll, "too-long", longest + 1),
        call(toll, "a-week", 8 * 24 * 3600),
        call(
            toll, "skewed", 60, started=now + timedelta(minutes=4)
        ),  # the edge's clock a bit ahead
        call(toll, "longest", longest),
    ]
    response = client.post("/billing/usage", json={"records": records})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert {(r["call_id"], r["field"]) for r in data["rejected"]} == {
        ("future", "started_at"),
        ("too-long", "duration_seconds"),
        ("a-week", "duration_seconds"),
    }
    assert data["accepted"] == 2
    # Only the two possible calls are charged: 60 s and the longest call, toll-free inbound.
    expected = charge_for(Decimal("0.0250"), 60) + charge_for(Decimal("0.0250"), longest)
    assert Decimal(data["charged"]) == expected
    assert Decimal(wallet(client, partner)) == before - expected
    # Reported back, not stored: once fixed, the same call ids are rated.
    fixed = client.post("/billing/usage", json={"records": [call(toll, "future", 60)]})
    assert fixed.json()["data"]["accepted"] == 1
    assert ledger_ok(db)


def test_the_transaction_and_the_invoice_count_minutes_the_same_way(
    client: TestClient, partner: Acct
) -> None:
    toll = buy(client, partner, phone_number_type="toll-free")
    local = buy(client, partner, area_code="501")
    records = [
        call(toll, "m1", 30),
        call(toll, "m2", 65),
        call(local, "m3", 30, "outbound"),
    ]
    assert client.post("/billing/usage", json={"records": records}).status_code == 200
    [txn] = [
        t
        for t in client.get("/billing/transactions", headers=partner.headers).json()["data"]
        if t["kind"] == "usage"
    ]
    said = int(txn["description"].split("call(s), ")[1].split(" billable")[0])
    month = clock.now().strftime("%Y-%m")
    invoice = client.get(f"/billing/invoices/{month}", headers=partner.headers).json()["data"]
    shown = [line["minutes"] for line in invoice["lines"] if line["kind"] == "usage"]
    assert len(shown) == 2  # one line per number
    assert sum(shown) == said


def test_the_edge_ends_a_call_where_billing_stops() -> None:
    """Kamailio's dialog timeout (deploy/kamailio/kamailio.cfg) is didhub's longest
    billed call, never reset by in-dialog requests, and dead calls are found by
    keepalives: a call whose BYE never comes is not billed to the maximum."""
    cfg = (Path(__file__).resolve().parents[2] / "deploy/kamailio/kamailio.cfg").read_text()
    default = re.search(r"^#!trydef MAX_CALL_SECONDS (\d+)$", cfg, re.MULTILINE)
    assert default is not None
    assert int(default.group(1)) == Settings.model_fields["max_call_seconds"].default
    assert 'modparam("dialog", "default_timeout", MAX_CALL_SECONDS)' in cfg
    assert 'modparam("dialog", "timeout_noreset", 1)' in cfg
    assert 'modparam("dialog", "ka_interval", KEEPALIVE_SECONDS)' in cfg
    assert 'dlg_set_property("ka-src")' in cfg and 'dlg_set_property("ka-dst")' in cfg
