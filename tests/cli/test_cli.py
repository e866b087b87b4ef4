from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from didhub.cli import app

runner = CliRunner()


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


def test_cli_cnam_and_settings(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    partner = json.loads(run("partner", "create", "Acme", "--balance", "100.00", "--json"))
    key = partner["api_key"]
    tenant = json.loads(run("tenant", "create", "Dental", "--partner", partner["id"], "--json"))
    found = json.loads(
        run("numbers", "search", "--key", key, "--area-code", "501", "--page-size", "1", "--json")
    )
    bought = json.loads(run("numbers", "buy", found[0]["phone_number"], "--key", key, "--json"))
    number_id = bought["numbers"][0]["id"]
    run("numbers", "assign", number_id, "--key", key, "--tenant", tenant["id"])

    # The carrier refuses once: failed with its reason, then a retry lists it.
    monkeypatch.setenv("DIDHUB_SANDBOX_FAULT", "fail:1")
    failed = json.loads(run("numbers", "cnam", number_id, "Acme Dental", "--key", key, "--json"))
    assert failed["cnam"]["status"] == "failed" and "injected" in failed["cnam"]["reason"]
    monkeypatch.delenv("DIDHUB_SANDBOX_FAULT")
    out = run("numbers", "cnam-retry", number_id, "--key", key)
    assert "'Acme Dental' from number: active" in out and "24 hours" in out
    bad = runner.invoke(app, ["numbers", "cnam", number_id, "A" * 16, "--key", key])
    assert bad.exit_code == 1 and "(cnam)" in bad.output

    # The tenant's default, set by its partner, reaches the number once it inherits.
    shown = json.loads(
        run(
            "settings",
            "set",
            "--key",
            key,
            "--account",
            tenant["id"],
            "--default-cnam",
            "Dental Co",
            "--unassigned",
            "forward",
            "--destination",
            "sip:desk@pbx.example.com",
            "--json",
        )
    )
    assert shown["default_cnam"] == "Dental Co"
    assert shown["unassigned"] == {"action": "forward", "destination": "sip:desk@pbx.example.com"}
    inherited = json.loads(run("numbers", "cnam", number_id, "--inherit", "--key", key, "--json"))
    assert inherited["cnam"]["name"] == "Dental Co" and inherited["cnam"]["source"] == "tenant"
    assert inherited["cnam"]["status"] == "active"

    # Operator view by --account, no key.
    monkeypatch.delenv("DIDHUB_API_KEY", raising=False)
    seen = json.loads(run("settings", "show", "--account", tenant["id"], "--json"))
    assert seen["effective"]["unassigned"]["source"] == "tenant"
    run("settings", "set", "--account", tenant["id"], "--inherit-unassigned")
    assert "platform" in run("settings", "show", "--account", tenant["id"])
    wrong = runner.invoke(app, ["settings", "set", "--account", tenant["id"], "--unassigned", "x"])
    assert wrong.exit_code == 1 and "unassigned.action" in wrong.output


def test_tables_never_cut_an_id_and_every_listing_has_json(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped (80 columns) a table still prints every id whole; each listing
    answers --json too."""
    monkeypatch.setenv("COLUMNS", "80")
    partner = json.loads(run("partner", "create", "Acme", "--balance", "100.00", "--json"))
    key = partner["api_key"]
    found = json.loads(
        run("numbers", "search", "--key", key, "--area-code", "501", "--page-size", "3", "--json")
    )
    run("numbers", "buy", *[f["phone_number"] for f in found], "--key", key)
    listed = json.loads(run("numbers", "list", "--key", key, "--json"))
    table = run("numbers", "list", "--key", key)
    assert len(listed) == 3
    for number in listed:
        assert number["id"] in table and number["phone_number"] in table
    keys = run("key", "list", "--account", partner["id"])
    assert partner["api_key_id"] in keys
    listings = [
        ["key", "list", "--account", partner["id"]],
        ["user", "list", "--account", partner["id"]],
        ["numbers", "list", "--key", key],
        ["numbers", "search", "--key", key, "--area-code", "212"],
        ["webhooks", "list", "--key", key],
        ["webhooks", "events", "--key", key],
        ["e911", "address", "list", "--key", key],
        ["e911", "location", "list", "--key", key],
        ["jobs", "list"],
    ]
    for args in listings:
        assert isinstance(json.loads(run(*args, "--json")), list), args
