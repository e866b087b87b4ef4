"""The SIP edge's endpoints answer only the edge: a token generated at first
start (or DIDHUB_EDGE_TOKEN), never trust for coming from this machine unless
the operator turns it on, and impossible call records are never charged
(issue 13, item 2)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app as cli
from didhub.config import Settings, get_settings
from didhub.db import Database


@pytest.fixture
def production(settings: Settings, tmp_path: Path) -> Settings:
    """As an operator installs it: no token set, no trust in loopback."""
    return settings.model_copy(
        update={
            "edge_token": None,
            "edge_trust_loopback": False,
            "edge_token_file": str(tmp_path / "didhub-edge.token"),
        }
    )


def wallet(client: TestClient, acct: Acct) -> str:
    balance: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"]
    return balance


def week_long_calls(number: str, count: int) -> dict[str, Any]:
    started = clock.now() - timedelta(days=7, minutes=1)
    return {
        "records": [
            {
                "phone_number": number,
                "direction": "outbound",
                "started_at": started.isoformat(),
                "duration_seconds": 7 * 24 * 3600,
                "call_id": f"forged-{n}",
            }
            for n in range(count)
        ]
    }


def test_loopback_without_the_token_is_refused_and_forged_calls_cost_nothing(
    production: Settings,
    db: Database,
    carrier: SandboxCarrier,
    client: TestClient,
    partner: Acct,
) -> None:
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    buy(client, partner, number)
    before = wallet(client, partner)
    # A reverse proxy on this host makes every request a loopback one.
    proxied = TestClient(create_app(production, db, carrier), client=("127.0.0.1", 40000))
    forged = proxied.post("/billing/usage", json=week_long_calls(number, 50))
    assert forged.status_code == 401
    assert "Bearer <edge token>" in forged.json()["error"]["message"]
    route = proxied.get(f"/routing/inbound/{number}")
    assert route.status_code == 401 and "tenant" not in route.text
    assert wallet(client, partner) == before
    # The edge, with the token generated at first start: routed; and the
    # forged week-long calls are reported back, not charged.
    token = Path(production.edge_token_file).read_text().strip()
    assert stat.S_IMODE(os.stat(production.edge_token_file).st_mode) == 0o600
    edge = {"Authorization": f"Bearer {token}"}
    assert proxied.get(f"/routing/inbound/{number}", headers=edge).status_code == 200
    answered = proxied.post("/billing/usage", json=week_long_calls(number, 50), headers=edge)
    assert answered.status_code == 200
    data = answered.json()["data"]
    assert data["accepted"] == 0 and len(data["rejected"]) == 50
    assert {r["field"] for r in data["rejected"]} == {"records[].duration_seconds"} or all(
        r["field"].endswith("duration_seconds") for r in data["rejected"]
    )
    assert wallet(client, partner) == before
    wrong = proxied.get(f"/routing/inbound/{number}", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_the_token_is_kept_across_restarts_and_shown_by_the_cli(
    production: Settings,
    db: Database,
    carrier: SandboxCarrier,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_app(production, db, carrier)
    first = Path(production.edge_token_file).read_text().strip()
    create_app(production, db, carrier)
    assert Path(production.edge_token_file).read_text().strip() == first and len(first) >= 32
    monkeypatch.setenv("DIDHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("DIDHUB_EDGE_TOKEN_FILE", production.edge_token_file)
    monkeypatch.delenv("DIDHUB_EDGE_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(cli, ["edge", "token"])
    finally:
        get_settings.cache_clear()
    assert shown.exit_code == 0 and shown.output.strip() == first


def test_trusting_loopback_is_the_operators_choice(
    production: Settings, db: Database, carrier: SandboxCarrier
) -> None:
    lab = production.model_copy(update={"edge_trust_loopback": True})
    local = TestClient(create_app(lab, db, carrier), client=("127.0.0.1", 40000))
    assert local.get("/routing/inbound/+15015550100").status_code == 404  # asked, not ours
    remote = TestClient(create_app(lab, db, carrier), client=("198.51.100.3", 40000))
    assert remote.get("/routing/inbound/+15015550100").status_code == 401


@pytest.fixture
def no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield


def test_a_short_token_is_refused_at_start(no_files: None) -> None:
    with pytest.raises(ValueError, match="edge_token"):
        Settings(edge_token="short", _env_file=None)  # type: ignore[call-arg]
