"""Call records as a caller reads them: GET /billing/calls (filters, cursor
pages, tenancy), its CSV, `didhub calls list`; and balances shown to the cent."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, search_numbers
from didhub import clock, outputs
from didhub.cli import app


def _number(client: TestClient, acct: Acct, **search: Any) -> tuple[str, str]:
    """(id, e164) of a number bought three hours ago (calls may start since)."""
    e164 = search_numbers(client, acct, page_size=1, **search)[0]["phone_number"]
    then = clock.now() - timedelta(hours=3)
    clock.set_clock(lambda: then)
    try:
        r = client.post(
            "/telephony/numbers/purchase", json={"phone_number": e164}, headers=acct.headers
        )
    finally:
        clock.set_clock(None)
    assert r.status_code == 200, r.text
    listed = client.get("/telephony/numbers", headers=acct.headers).json()["data"]
    return next(n["id"] for n in listed if n["phone_number"] == e164), e164


def _post_calls(client: TestClient, records: list[dict[str, Any]]) -> None:
    r = client.post("/billing/usage", json={"records": records})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["accepted"] == len(records), r.text


def _call(
    e164: str,
    call_id: str,
    seconds: int,
    direction: str = "inbound",
    ago: int = 0,
    when: Any = None,
) -> dict[str, Any]:
    started = when or (clock.now() - timedelta(seconds=ago))
    return {
        "phone_number": e164,
        "direction": direction,
        "started_at": started.isoformat(),
        "duration_seconds": seconds,
        "call_id": call_id,
    }


def _all_pages(client: TestClient, acct: Acct, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get("/billing/calls", params=query, headers=acct.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["meta"]["count"] == len(body["data"])
        out += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return out


def test_filters_by_number_direction_and_dates(client: TestClient, partner: Acct) -> None:
    first_id, first = _number(client, partner, area_code="415")
    _, second = _number(client, partner, phone_number_type="toll-free")
    _post_calls(
        client,
        [
            _call(first, "a-in", 60, ago=3600),
            _call(first, "a-out", 30, "outbound", ago=1800),
            _call(second, "b-in", 126, ago=600),
        ],
    )
    everything = client.get("/billing/calls", headers=partner.headers).json()
    assert [c["call_id"] for c in everything["data"]] == ["b-in", "a-out", "a-in"]  # newest first
    toll = everything["data"][0]
    assert toll["phone_number"] == second and toll["billable_seconds"] == 126
    assert toll["charge"] == "0.0525" and toll["currency"] == "USD"  # exact, not rounded
    by_e164 = _all_pages(client, partner, number=first)
    by_id = _all_pages(client, partner, number=first_id)
    assert [c["call_id"] for c in by_e164] == [c["call_id"] for c in by_id] == ["a-out", "a-in"]
    assert [c["call_id"] for c in _all_pages(client, partner, direction="outbound")] == ["a-out"]
    since = (clock.now() - timedelta(seconds=2400)).isoformat()
    assert {c["call_id"] for c in _all_pages(client, partner, **{"from": since})} == {
        "a-out",
        "b-in",
    }
    until = (clock.now() - timedelta(seconds=1000)).isoformat()
    assert {c["call_id"] for c in _all_pages(client, partner, to=until)} == {"a-in", "a-out"}
    today = clock.now().date().isoformat()
    assert len(_all_pages(client, partner, **{"from": today, "to": today})) in (2, 3)  # by day


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"number": "not-a-number"}, "number"),
        ({"number": "num_doesnotexist"}, "number"),
        ({"cursor": "garbage"}, "cursor"),
        ({"from": "2030-02-01", "to": "2030-01-01"}, "to"),
        ({"from": "2030-01-01T10:00:00"}, "from"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_filters_name_the_field(
    client: TestClient, partner: Acct, params: dict[str, str], field: str
) -> None:
    r = client.get("/billing/calls", params=params, headers=partner.headers)
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"]["field"] == field


def test_pages_are_stable_when_calls_start_in_the_same_instant(
    client: TestClient, partner: Acct
) -> None:
    _, e164 = _number(client, partner, area_code="303")
    moment = clock.now() - timedelta(minutes=5)
    records = [_call(e164, f"same-{i:02d}", 10 + i, when=moment) for i in range(7)]
    records += [_call(e164, f"later-{i}", 5, ago=60 - i) for i in range(3)]
    _post_calls(client, records)
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/billing/calls", params=params, headers=partner.headers).json()
        pages.append([c["call_id"] for c in body["data"]])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    seen = [c for page in pages for c in page]
    assert sorted(seen) == sorted(r["call_id"] for r in records)  # none twice, none missed
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    # A call added while paging (newer than the cursor) doesn't shift the pages after it.
    first = client.get("/billing/calls", params={"limit": 3}, headers=partner.headers).json()
    _post_calls(client, [_call(e164, "newest", 5)])
    rest = _all_pages(client, partner, limit=3, cursor=first["meta"]["next_cursor"])
    assert [c["call_id"] for c in rest] == seen[3:]


def test_a_tenant_sees_only_its_calls_and_its_own_charge(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    make_partner: Callable[..., Acct],
) -> None:
    vet = make_tenant("Vet", partner.id, balance="10.00")
    dental = make_tenant("Dental", partner.id, balance="10.00")
    h = partner.headers
    r = client.put(
        "/billing/retail-prices",
        json={"phone_number_type": "local", "monthly": "3.00", "per_minute_inbound": "0.0200"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    vet_id, vet_number = _number(client, partner, area_code="415")
    dental_id, dental_number = _number(client, partner, area_code="303")
    for number_id, tenant in ((vet_id, vet), (dental_id, dental)):
        r = client.patch(
            f"/telephony/numbers/{number_id}", json={"tenant_id": tenant.id}, headers=h
        )
        assert r.status_code == 200, r.text
    _post_calls(
        client,
        [_call(vet_number, "vet-1", 60), _call(dental_number, "dental-1", 60)],
    )
    mine = _all_pages(client, vet)
    assert [c["call_id"] for c in mine] == ["vet-1"]
    assert mine[0]["tenant_id"] == vet.id
    assert mine[0]["charge"] == "0.02"  # the retail its partner bills it, not the wholesale rate
    partner_view = {c["call_id"]: c for c in _all_pages(client, partner)}
    assert set(partner_view) == {"vet-1", "dental-1"}
    assert partner_view["vet-1"]["charge"] == "0.00"  # local inbound is free wholesale
    # Another tenant's number, by id, is not found; by E.164, simply none of its calls.
    r = client.get("/billing/calls", params={"number": dental_id}, headers=vet.headers)
    assert r.status_code == 404 and r.json()["error"]["field"] == "number"
    assert _all_pages(client, vet, number=dental_number) == []
    # Another partner sees nothing at all, in JSON or CSV.
    stranger = make_partner("Stranger")
    assert _all_pages(client, stranger) == []
    text = client.get("/billing/calls.csv", headers=stranger.headers).text
    assert text.strip().splitlines() == [
        ",".join(
            [
                "id",
                "call_id",
                "phone_number",
                "number_id",
                "direction",
                "started_at",
                "duration_seconds",
                "billable_seconds",
                "charge",
                "currency",
                "tenant_id",
                "destination",
            ]
        )
    ]


def test_csv_export_has_every_matching_call(client: TestClient, partner: Acct) -> None:
    number_id, e164 = _number(client, partner, phone_number_type="toll-free")
    _post_calls(
        client,
        [_call(e164, f"csv-{i:03d}", 60 + i, "inbound", ago=1000 - i) for i in range(520)]
        + [_call(e164, "csv-out", 30, "outbound", ago=5)],
    )
    for response in (
        client.get("/billing/calls.csv", params={"direction": "inbound"}, headers=partner.headers),
        client.get(
            "/billing/calls",
            params={"direction": "inbound"},
            headers={**partner.headers, "Accept": "text/csv"},
        ),
    ):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 520  # more than one page of the export, all of them
        assert {r["call_id"] for r in rows} == {f"csv-{i:03d}" for i in range(520)}
        newest = rows[0]
        assert newest["call_id"] == "csv-519" and newest["phone_number"] == e164
        assert newest["number_id"] == number_id and newest["direction"] == "inbound"
        assert newest["duration_seconds"] == "579" and newest["billable_seconds"] == "582"
        # 582 s of toll-free inbound at 0.0250/min: 0.2425, exact to the ten-thousandth.
        assert newest["charge"] == "0.2425" and newest["currency"] == "USD"
    bad = client.get("/billing/calls.csv", params={"direction": "up"}, headers=partner.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "direction"


def test_cli_lists_the_same_calls(client: TestClient, partner: Acct, cli_env: None) -> None:
    _, e164 = _number(client, partner, area_code="415")
    _post_calls(client, [_call(e164, "cli-1", 60, ago=20), _call(e164, "cli-2", 30, "outbound")])
    runner = CliRunner()
    result = runner.invoke(app, ["calls", "list", "--key", partner.key, "--json"])
    assert result.exit_code == 0, result.output
    api = client.get("/billing/calls", headers=partner.headers).json()
    assert json.loads(result.output) == api
    result = runner.invoke(
        app, ["calls", "list", "--key", partner.key, "--direction", "outbound", "--csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["call_id"] for r in rows] == ["cli-2"]
    result = runner.invoke(app, ["calls", "list", "--key", partner.key, "--direction", "up"])
    assert result.exit_code == 1 and "direction" in result.output


def test_balances_are_shown_to_the_cent_and_kept_exact(client: TestClient, partner: Acct) -> None:
    from decimal import Decimal

    assert outputs.cents(Decimal("90.4475")) == "90.45"
    assert outputs.cents(Decimal("90.4425")) == "90.44"
    _, e164 = _number(client, partner, phone_number_type="toll-free")
    _post_calls(client, [_call(e164, "cent-1", 126)])  # 0.0525
    exact = client.get("/billing/wallet", headers=partner.headers).json()["data"]["balance"]
    assert len(exact.split(".")[1]) == 4  # the API keeps what the ledger holds
    from didhub.web.common import money

    assert money(Decimal(exact), "USD", to_cent=True) == f"${outputs.cents(Decimal(exact))}"
