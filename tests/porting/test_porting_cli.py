"""``didhub port …``: the same service from a terminal; the port-out PIN."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct
from didhub.carriers.base import CarrierFailure
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app
from didhub.config import get_settings
from portflow import BELL, NOT_PORTABLE, documents_in_tmp  # noqa: F401

runner = CliRunner()


@pytest.fixture
def cli_env(  # the shared one (conftest.py), and:
    cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv("DIDHUB_DATA_DIR", str(tmp_path / "cli-data"))
    get_settings.cache_clear()
    yield


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_checks_creates_lists_and_writes_the_loa(cli_env: None, tmp_path: Path) -> None:
    partner = json.loads(run("partner", "create", "Acme", "--balance", "100.00", "--json"))
    key = partner["api_key"]
    tenant = json.loads(run("tenant", "create", "Dental", "--partner", partner["id"], "--json"))
    checked = json.loads(run("port", "check", BELL, NOT_PORTABLE, "--key", key, "--json"))
    assert [(c["portable"], c["reason"]) for c in checked] == [(True, None), (False, "no_coverage")]
    refused = run(
        "port", "create", NOT_PORTABLE, "--key", key, "--tenant", tenant["id"],
        "--entity-name", "Acme Dental", "--authorized-person", "Dana",
        "--account-number", "A1", "--billing-phone-number", NOT_PORTABLE, code=1,
    )  # fmt: skip
    assert "no_coverage" in refused
    created = json.loads(
        run(
            "port",
            "create",
            BELL,
            "--key",
            key,
            "--tenant",
            tenant["id"],
            "--entity-name",
            "Acme Dental",
            "--authorized-person",
            "Dana",
            "--account-number",
            "A1",
            "--billing-phone-number",
            BELL,
            "--json",
        )  # fmt: skip
    )
    assert created["status"] == "draft"
    listed = json.loads(run("port", "list", "--key", key, "--json"))
    assert [o["id"] for o in listed] == [created["id"]]
    out = tmp_path / "loa.pdf"
    run("port", "loa", created["id"], "--out", str(out), "--key", key)
    assert out.read_bytes().startswith(b"%PDF")


def test_port_out_pin_is_set_where_the_carrier_supports_one(
    client: TestClient, carrier: SandboxCarrier, partner: Acct
) -> None:
    found = client.post(
        "/telephony/numbers/search", json={"area_code": "501", "page_size": 1},
        headers=partner.headers,
    ).json()["data"]  # fmt: skip
    e164 = found[0]["phone_number"]
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_numbers": [e164]}, headers=partner.headers
    )
    assert bought.status_code == 200, bought.text
    bad = client.put("/porting/port-out-pin", json={"pin": "12"}, headers=partner.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "pin"
    answer = client.put("/porting/port-out-pin", json={"pin": "2468"}, headers=partner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"set_on": [e164], "refused": {}}
    with pytest.raises(CarrierFailure, match="PIN"):
        carrier.porting.port_away(e164, pin="1111")
    carrier.porting.port_away(e164, pin="2468")
