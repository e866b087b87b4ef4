from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from didhub.cli import app
from didhub.config import get_settings
from didhub.db import Database

runner = CliRunner()


@pytest.fixture
def cli_env(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIDHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("DIDHUB_SANDBOX_SEED", "test")
    monkeypatch.delenv("DIDHUB_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_walks_the_lifecycle(cli_env: None) -> None:
    partner = json.loads(run("partner", "create", "Acme", "--balance", "100.00", "--json"))
    assert partner["id"].startswith("par_") and partner["api_key"].startswith("dh_")
    assert partner["balance"] == "100.00"
    key = partner["api_key"]
    tenant = json.loads(run("tenant", "create", "Dental", "--partner", partner["id"], "--json"))
    found = json.loads(
        run(
            "numbers",
            "search",
            "--key",
            key,
            "--state",
            "AR",
            "--city",
            "Little Rock",
            "--page-size",
            "2",
            "--json",
        )
    )
    assert len(found) == 2 and all(f["locality"] == "Little Rock" for f in found)
    bought = json.loads(
        run(
            "numbers",
            "buy",
            found[0]["phone_number"],
            found[1]["phone_number"],
            "--key",
            key,
            "--json",
        )
    )
    assert bought["charged"] == "4.00"
    ids = [n["id"] for n in bought["numbers"]]
    run("numbers", "assign", ids[0], "--key", key, "--tenant", tenant["id"])
    listed = json.loads(run("numbers", "list", "--key", key, "--json"))
    assert {n["id"]: n["assigned_to"] for n in listed} == {ids[0]: "Dental", ids[1]: "Unassigned"}
    assert "released" in run("numbers", "release", ids[1], "--key", key)
    assert "ledger OK" in run("ledger", "check")
    report = json.loads(run("reconcile", "--min-age", "0", "--json"))
    assert report["orders_checked"] == 0
    new_key = json.loads(run("key", "create", "--account", partner["id"], "--json"))
    assert new_key["api_key"] != key
    keys = json.loads(run("key", "list", "--account", partner["id"], "--json"))
    assert len(keys) == 2 and all("api_key" not in k for k in keys)
    run("key", "revoke", new_key["id"])
    denied = runner.invoke(app, ["numbers", "list", "--key", new_key["api_key"]])
    assert denied.exit_code == 1 and "unauthorized" in denied.output


def test_cli_errors_name_the_field(cli_env: None) -> None:
    bad = runner.invoke(app, ["partner", "create", "X", "--balance", "-5"])
    assert bad.exit_code == 1 and "balance" in bad.output
    partner = json.loads(run("partner", "create", "Acme", "--json"))
    bad_search = runner.invoke(
        app, ["numbers", "search", "--key", partner["api_key"], "--page-size", "500"]
    )
    assert bad_search.exit_code == 1 and "page_size" in bad_search.output
    poor = runner.invoke(app, ["numbers", "buy", "+18775550100", "--key", partner["api_key"]])
    assert poor.exit_code == 1
