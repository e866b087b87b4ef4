"""An account's outbound guards (issue 15): caller-ID policy, allowed
countries and number types, the daily spend limit, the concurrent-call limit
and the IP allow-list, set by API and CLI (a tenant's over its partner's over
the platform's), each refusal with a reason a person can read, and 911 past
every one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct
from didhub import clock
from didhub.cli import app as cli
from didhub.db import Database
from outbound.test_outbound_api import ADDRESS, agent_with_number, trunks  # noqa: F401

Ask = Callable[..., dict[str, Any]]


@pytest.fixture
def tenant(make_tenant: Callable[..., Acct], partner: Acct) -> Acct:
    return make_tenant("Dental", partner_id=partner.id)


@pytest.fixture
def dialer(
    client: TestClient,
    partner: Acct,
    tenant: Acct,
    trunks: None,  # noqa: F811
) -> tuple[str, str, str]:
    """(username, the agent's outbound number, its id)."""
    agent, number, number_id = agent_with_number(client, partner, tenant)
    made = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers)
    return made.json()["data"]["username"], number, number_id


def ask(
    client: TestClient,
    username: str,
    destination: str,
    caller: str | None,
    source_ip: str | None = None,
) -> dict[str, Any]:
    body = {"username": username, "destination": destination, "caller": caller}
    if source_ip is not None:
        body["source_ip"] = source_ip
    response = client.post("/routing/outbound", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def patch(client: TestClient, acct: Acct, path: str, **body: Any) -> dict[str, Any]:
    response = client.patch(path, json=body, headers=acct.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_settings_inherit_tenant_over_partner_over_platform(
    client: TestClient, partner: Acct, tenant: Acct, make_partner: Callable[..., Acct]
) -> None:
    shown = client.get("/outbound/settings", headers=tenant.headers).json()["data"]
    assert shown["effective"] == {
        "caller_id_policy": "reject",
        "allowed_countries": [],
        "denied_number_types": ["premium"],
        "daily_spend_limit": None,
        "max_concurrent_calls": None,
        "allowed_ips": [],
    }
    assert set(shown["effective_source"].values()) == {"platform"}
    patch(client, partner, "/outbound/settings", daily_spend_limit="25.00", max_concurrent_calls=5)
    mine = patch(client, partner, f"/tenants/{tenant.id}/outbound/settings", max_concurrent_calls=2)
    assert mine["max_concurrent_calls"] == 2 and mine["daily_spend_limit"] is None
    assert mine["effective"]["daily_spend_limit"] == "25.00"
    assert mine["effective_source"]["daily_spend_limit"] == "partner"
    assert mine["effective"]["max_concurrent_calls"] == 2
    assert mine["effective_source"]["max_concurrent_calls"] == "tenant"
    # null: inherit again.
    back = patch(client, tenant, "/outbound/settings", max_concurrent_calls=None)
    assert back["effective"]["max_concurrent_calls"] == 5
    # Bad input names the field.
    for body, field in [
        ({"caller_id_policy": "maybe"}, "caller_id_policy"),
        ({"allowed_countries": ["XX"]}, "allowed_countries"),
        ({"denied_number_types": ["expensive"]}, "denied_number_types"),
        ({"allowed_ips": ["300.1.1.1"]}, "allowed_ips"),
        ({"daily_spend_limit": "-1"}, "daily_spend_limit"),
        ({"daily_spend_limit": "1.001"}, "daily_spend_limit"),
        ({"max_concurrent_calls": -3}, "max_concurrent_calls"),
    ]:
        bad = client.patch("/outbound/settings", json=body, headers=tenant.headers)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["field"] == field, body
    # Another partner can't see or change them.
    other = make_partner("Other")
    path = f"/tenants/{tenant.id}/outbound/settings"
    assert client.get(path, headers=other.headers).status_code == 404
    assert (
        client.patch(path, json={"allowed_countries": ["*"]}, headers=other.headers).status_code
        == 404
    )


def test_caller_id_rewrite_and_limits_in_the_answer(
    client: TestClient, partner: Acct, tenant: Acct, dialer: tuple[str, str, str]
) -> None:
    username, number, _ = dialer
    refused = ask(client, username, "+15015550123", "+15015559999")
    assert refused["status"] == 403 and "+15015559999 is not a number assigned" in refused["reason"]
    patch(
        client,
        partner,
        f"/tenants/{tenant.id}/outbound/settings",
        caller_id_policy="rewrite",
        max_concurrent_calls=3,
    )
    route = ask(client, username, "+15015550123", "+15015559999")
    assert route["action"] == "route" and route["caller_id"] == number
    assert route["max_concurrent_calls"] == 3
    assert route["account_id"] == partner.id  # the number's owner pays
    # No caller ID at all: rewritten too.
    assert ask(client, username, "+15015550123", None)["caller_id"] == number


def test_countries_and_number_types(
    client: TestClient, tenant: Acct, dialer: tuple[str, str, str]
) -> None:
    username, number, _ = dialer
    uk = ask(client, username, "+442079460123", number)
    assert uk["status"] == 403 and uk["reason"].startswith("calls outside US are not enabled")
    patch(client, tenant, "/outbound/settings", allowed_countries=["gb"])
    uk = ask(client, username, "+442079460123", number)
    assert uk["action"] == "route" and [t["name"] for t in uk["trunks"]] == ["uk"]
    france = ask(client, username, "+33142685300", number)
    assert france["status"] == 403 and "GB" in france["reason"] and "FR" in france["reason"]
    patch(client, tenant, "/outbound/settings", allowed_countries=["*"])
    assert ask(client, username, "+33142685300", number)["status"] == 503  # no trunk serves 33
    # Premium-rate numbers are refused by default; other types by choice.
    premium = ask(client, username, "+19005550123", number)
    assert premium["status"] == 403 and "premium numbers" in premium["reason"]
    patch(client, tenant, "/outbound/settings", denied_number_types=["toll-free"])
    assert ask(client, username, "+19005550123", number)["action"] == "route"
    free = ask(client, username, "+18005550199", number)
    assert free["status"] == 403 and "toll-free numbers are not enabled" in free["reason"]


def test_ip_allow_list_but_911_from_anywhere(
    client: TestClient, partner: Acct, tenant: Acct, dialer: tuple[str, str, str]
) -> None:
    username, number, number_id = dialer
    patch(client, tenant, "/outbound/settings", allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    assert ask(client, username, "+15015550123", number, "203.0.113.7")["action"] == "route"
    assert ask(client, username, "+15015550123", number, "2001:db8::5")["action"] == "route"
    away = ask(client, username, "+15015550123", number, "198.51.100.9")
    assert away["status"] == 403 and "calls from 198.51.100.9 are not allowed" in away["reason"]
    unknown = ask(client, username, "+15015550123", number)
    assert unknown["status"] == 403
    emergency = ask(client, username, "911", number, "198.51.100.9")
    assert emergency["action"] == "route" and emergency["emergency"] is True


def test_daily_spend_limit_refuses_once_reached_but_not_911(
    client: TestClient, partner: Acct, tenant: Acct, dialer: tuple[str, str, str]
) -> None:
    username, number, _ = dialer
    patch(client, partner, "/outbound/settings", daily_spend_limit="0.05")
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    started = clock.now().isoformat()  # after the number was bought
    record = {
        "phone_number": number,
        "direction": "outbound",
        "destination": "+15015550123",
        "started_at": started,
        "duration_seconds": 120,
        "call_id": "spend-1",
    }
    posted = client.post("/billing/usage", json={"records": [record]})
    assert posted.status_code == 200 and posted.json()["data"]["accepted"] == 1
    # 2 min at the default 0.02 = 0.04: still under.
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    record = {**record, "call_id": "spend-2", "duration_seconds": 30}
    assert client.post("/billing/usage", json={"records": [record]}).status_code == 200
    refused = ask(client, username, "+15015550123", number)
    assert refused["status"] == 403
    assert refused["reason"] == "the daily outbound limit of 0.05 USD is reached"
    assert ask(client, username, "933", number)["action"] == "route"
    # Raising the limit lets calls through again.
    patch(client, partner, "/outbound/settings", daily_spend_limit="1.00")
    assert ask(client, username, "+15015550123", number)["action"] == "route"


def test_outbound_settings_from_the_cli(
    cli_env: None, partner: Acct, tenant: Acct, db: Database
) -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "outbound",
            "settings",
            "--account",
            tenant.id,
            "--countries",
            "CA,GB",
            "--daily-limit",
            "10.00",
            "--allowed-ips",
            "192.0.2.0/24",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    assert '"allowed_countries": [' in done.output and '"CA"' in done.output
    shown = runner.invoke(cli, ["outbound", "settings", "--key", tenant.key])
    assert shown.exit_code == 0, shown.output
    assert "daily_spend_limit: 10.00 (from tenant)" in shown.output
    assert "caller_id_policy: reject (from platform)" in shown.output
    inherit = runner.invoke(
        cli, ["outbound", "settings", "--key", tenant.key, "--daily-limit", "inherit"]
    )
    assert "daily_spend_limit: no limit (from platform)" in inherit.output
    bad = runner.invoke(cli, ["outbound", "settings", "--account", tenant.id, "--max-calls", "x"])
    assert bad.exit_code == 1 and "max-calls" in bad.output
