"""Daily use from the terminal and the dashboard (issue 17, items 5 and 6):
ids printed whole at 80 columns, settings a person can read, a number named by
its E.164 or its id, tenant list, help without hard breaks or double
backticks, the E911 warning of an outbound assignment, and a caller name
pushed at once when a number changes tenant. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from dashboard import sign_in
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app

runner = CliRunner()
DIDHUB = str(Path(sys.executable).parent / "didhub")


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def as_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def _partner_with_number(cli_env: None) -> tuple[dict[str, Any], dict[str, Any]]:
    partner = as_json("partner", "create", "Acme Voice", "--balance", "50.00")
    key = partner["api_key"]
    found = as_json("numbers", "search", "--key", key, "--state", "AR", "--page-size", "1")
    bought = as_json("numbers", "buy", found[0]["phone_number"], "--key", key)
    return partner, bought["numbers"][0]


def test_numbers_list_prints_ids_whole_at_80_columns(cli_env: None, database_url: str) -> None:
    partner, number = _partner_with_number(cli_env)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDHUB_")}
    shown = subprocess.run(
        [DIDHUB, "numbers", "list", "--key", partner["api_key"]],
        env={**env, "COLUMNS": "80", "DIDHUB_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if number["phone_number"] in line)
    assert number["id"] in row  # whole, on the number's own line
    assert "…" not in shown.stdout


def test_settings_show_reads_as_text(cli_env: None) -> None:
    partner, _ = _partner_with_number(cli_env)
    key = partner["api_key"]
    run("settings", "set", "--key", key, "--unassigned", "forward", "--destination", "+15015550100")
    shown = run("settings", "show", "--key", key)
    assert "{" not in shown and "'" not in shown.replace("isn't", "")
    assert "unassigned numbers: forward to +15015550100" in shown
    assert "default caller name: inherited" in shown
    assert "in effect, unassigned numbers: forward to +15015550100 (from partner)" in shown


def test_a_number_is_named_by_its_e164_or_its_id(cli_env: None) -> None:
    partner, number = _partner_with_number(cli_env)
    key = partner["api_key"]
    tenant = as_json("tenant", "create", "Dental", "--partner", partner["id"])
    e164 = number["phone_number"]
    run("numbers", "assign", e164, "--key", key, "--tenant", tenant["id"])
    listed = {n["id"]: n for n in as_json("numbers", "list", "--key", key)}
    assert listed[number["id"]]["tenant_id"] == tenant["id"]
    national = f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"
    run("numbers", "assign", national, "--key", key, "--unassign-tenant")
    assert as_json("numbers", "list", "--key", key)[0]["tenant_id"] is None
    missing = runner.invoke(
        app, ["numbers", "assign", "+15015550199", "--key", key, "--tenant", "x"]
    )
    assert missing.exit_code == 1 and "you hold no number +15015550199" in missing.output
    assert f"{e164} released" in run("numbers", "release", e164, "--key", key)


def test_tenant_list(cli_env: None) -> None:
    acme = as_json("partner", "create", "Acme Voice")
    other = as_json("partner", "create", "Other")
    dental = as_json("tenant", "create", "Dental", "--partner", acme["id"])
    as_json("tenant", "create", "Elsewhere", "--partner", other["id"])
    mine = as_json("tenant", "list", "--key", acme["api_key"])
    assert [(t["id"], t["name"]) for t in mine] == [(dental["id"], "Dental")]
    everyone = as_json("tenant", "list")
    assert {t["name"] for t in everyone} == {"Dental", "Elsewhere"}
    assert "Dental" in run("tenant", "list", "--partner", acme["id"])
    assert "Elsewhere" not in run("tenant", "list", "--partner", acme["id"])


def _commands(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])


def test_help_has_no_hard_line_breaks_or_double_backticks() -> None:
    for path, command in _commands(typer.main.get_command(app), []):
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert "``" not in shown.output, path
        for paragraph in re.split(r"\n\s*\n", command.help or ""):
            assert "\n" not in paragraph.strip(), (path, paragraph)
    # What a person sees in a group's list: each command's help in one piece.
    groups = subprocess.run(
        [DIDHUB, "numbers", "--help"],
        env={**os.environ, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert re.search(
        r"release-import\s+Give an imported number back: .* `numbers import`\.", groups
    )


def test_an_outbound_assignment_shows_the_e911_warning(cli_env: None) -> None:
    partner, number = _partner_with_number(cli_env)
    key = partner["api_key"]
    tenant = as_json("tenant", "create", "Dental", "--partner", partner["id"])
    agent = as_json("agent", "create", tenant["id"], "Front desk", "--key", key)
    inbound = run("numbers", "assign", number["id"], "--key", key, "--agent", agent["id"])
    assert "e911" not in inbound.lower()
    shown = run(
        "numbers",
        "assign",
        number["id"],
        "--key",
        key,
        "--agent",
        agent["id"],
        "--type",
        "outbound",
    )
    assert "warning e911_missing:" in shown
    assert f"{number['phone_number']} has no E911 address" in " ".join(shown.split())


# ------------------------------------------------------------------ item 6


def _cnam(client: TestClient, acct: Acct, number_id: str) -> dict[str, Any]:
    answer = client.get(f"/telephony/numbers/{number_id}", headers=acct.headers)
    assert answer.status_code == 200, answer.text
    cnam: dict[str, Any] = answer.json()["data"]["cnam"]
    return cnam


@pytest.fixture
def dental(client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]) -> tuple[Acct, str]:
    """A tenant with its own default caller name, and a number of the partner's."""
    tenant = make_tenant("Dental Group", partner_id=partner.id)
    named = client.patch(
        f"/tenants/{tenant.id}/settings",
        json={"default_cnam": "Dental Group"},
        headers=partner.headers,
    )
    assert named.status_code == 200, named.text
    e164 = search_numbers(client, partner, administrative_area="AR")[0]["phone_number"]
    return tenant, buy(client, partner, e164)["data"][0]["id"]


def test_the_cli_pushes_the_inherited_caller_name_at_once(
    cli_env: None,
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    dental: tuple[Acct, str],
) -> None:
    tenant, number_id = dental
    run("numbers", "assign", number_id, "--key", partner.key, "--tenant", tenant.id)
    cnam = _cnam(client, partner, number_id)
    assert (cnam["name"], cnam["source"], cnam["status"]) == ("Dental Group", "tenant", "active")
    e164 = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert carrier.cnam_of(e164["phone_number"]) == "Dental Group"


def test_the_dashboard_pushes_the_inherited_caller_name_at_once(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, dental: tuple[Acct, str]
) -> None:
    tenant, number_id = dental
    browser = TestClient(client.app)
    token = sign_in(browser, api_key=partner.key)
    posted = browser.post(
        f"/dashboard/numbers/{number_id}/assign",
        data={"csrf_token": token, "tenant_id": tenant.id},
        follow_redirects=False,
    )
    assert posted.status_code in (200, 303), posted.text
    cnam = _cnam(client, partner, number_id)
    assert (cnam["name"], cnam["source"], cnam["status"]) == ("Dental Group", "tenant", "active")
