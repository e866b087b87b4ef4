"""Outbound calls through the API (issue 15): an agent's SIP credential (the
password once, the HA1 only to the edge) and the edge's per-INVITE lookup
``POST /routing/outbound``: caller ID, destinations, funds, trunks cheapest
first, and 911 that always goes out and tells the tenant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from didhub.cli import app as cli
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import lifecycle
from didhub.numbers.models import PhoneNumber
from didhub.outbound import service as outbound
from didhub.wallet import ledger
from didhub.wallet import service as wallet_service

ADDRESS: dict[str, Any] = {
    "street": "123 North Main Street",
    "city": "Little Rock",
    "state": "Arkansas",
    "postal_code": "72201-1234",
    "unit": "Suite 200",
    "caller_name": "Acme Dental",
}


@pytest.fixture
def trunks(db: Database) -> None:
    with db.session() as session:
        outbound.add_trunk(session, "pricey", "127.0.0.1:5091", prefix="1", cost=Decimal("0.02"))
        outbound.add_trunk(
            session, "cheap", "127.0.0.1:5092", prefix="1", tech_prefix="99#", cost=Decimal("0.005")
        )
        outbound.add_trunk(session, "uk", "127.0.0.1:5093", prefix="44", cost=Decimal("0.001"))
        outbound.add_trunk(session, "e911", "127.0.0.1:5094", emergency=True)


def agent_with_number(
    client: TestClient, partner: Acct, tenant: Acct, area_code: str = "501"
) -> tuple[dict[str, Any], str, str]:
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Dialer"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code=area_code, page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "outbound"},
        headers=partner.headers,
    )
    assert assigned.status_code == 200, assigned.text
    return agent, number, number_id


def ask(client: TestClient, username: str, destination: str, caller: str | None) -> Any:
    response = client.post(
        "/routing/outbound",
        json={"username": username, "destination": destination, "caller": caller},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def placed(client: TestClient, username: str, destination: str, caller: str | None,
           call_id: str) -> Any:  # fmt: skip
    """The edge's report, after the digest checked out, that it places a 911/933 call."""
    response = client.post(
        "/routing/outbound/emergency-placed",
        json={"username": username, "destination": destination, "caller": caller,
              "call_id": call_id},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["data"]


def call_placed_events(client: TestClient, acct: Acct) -> list[dict[str, Any]]:
    events = client.get("/events", headers=acct.headers).json()["data"]
    return [e for e in events if e["type"] == "e911.call_placed"]


@pytest.fixture
def tenant(make_tenant: Callable[..., Acct], partner: Acct) -> Acct:
    return make_tenant("Dental", partner_id=partner.id)


def test_credential_is_shown_once_and_the_edge_gets_its_ha1(
    client: TestClient, partner: Acct, tenant: Acct, make_partner: Callable[..., Acct]
) -> None:
    agent, number, _ = agent_with_number(client, partner, tenant)
    made = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers)
    assert made.status_code == 201, made.text
    cred = made.json()["data"]
    assert cred["outbound_numbers"] == [number] and len(cred["password"]) >= 16
    shown = client.get(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    assert shown["data"]["username"] == cred["username"] and "password" not in shown["data"]
    route = ask(client, cred["username"], "+15015550123", number)
    expected = hashlib.md5(
        f"{cred['username']}:{cred['realm']}:{cred['password']}".encode()
    ).hexdigest()
    assert route["ha1"] == expected
    # Rotating: the old password's HA1 is gone.
    again = client.post(f"/agents/{agent['id']}/sip-credential", headers=partner.headers).json()
    assert again["data"]["password"] != cred["password"]
    assert ask(client, cred["username"], "+15015550123", number)["ha1"] != expected
    # Another partner can't see or rotate it.
    other = make_partner("Other")
    stolen = client.post(f"/agents/{agent['id']}/sip-credential", headers=other.headers)
    assert stolen.status_code == 404


def test_lookup_routes_cheapest_first_with_the_agents_number(
    client: TestClient, partner: Acct, tenant: Acct, trunks: None
) -> None:
    agent, number, _ = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    username = cred["data"]["username"]
    route = ask(client, username, "(501) 555-0123", number)
    assert route["action"] == "route" and route["caller_id"] == number
    assert route["destination"] == "+15015550123"
    assert [t["uri"] for t in route["trunks"]] == [
        "sip:99#15015550123@127.0.0.1:5092",
        "sip:15015550123@127.0.0.1:5091",
    ]
    # Another number than its own: 403 with a reason.
    refused = ask(client, username, "+15015550123", "+15015559999")
    assert (refused["action"], refused["status"]) == ("refuse", 403)
    assert "not a number assigned outbound" in refused["reason"]
    # International is off by default.
    uk = ask(client, username, "+442079460123", number)
    assert uk["status"] == 403 and "calls outside US" in uk["reason"]
    # An unknown username gets no HA1.
    nobody = ask(client, "nobody", "+15015550123", number)
    assert nobody["status"] == 403 and nobody["ha1"] is None


def test_lookup_needs_the_edge_token(
    settings: Settings, client: TestClient, partner: Acct, tenant: Acct
) -> None:
    from didhub.api.app import create_app

    locked = settings.model_copy(update={"edge_token": "s3cret", "edge_trust_loopback": False})
    app = TestClient(create_app(locked, client.app.state.ctx.db, client.app.state.ctx.carrier))
    body = {"username": "x", "destination": "+15015550123"}
    assert app.post("/routing/outbound", json=body).status_code == 401
    ok = app.post("/routing/outbound", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_no_funds_or_bad_standing_refuse_but_911_goes_out_and_tells_the_tenant(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    tenant: Acct,
    trunks: None,
) -> None:
    agent, number, number_id = agent_with_number(client, partner, tenant)
    username = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()[
        "data"
    ]["username"]
    address = client.post(
        "/e911/addresses", json={**ADDRESS, "tenant_id": tenant.id}, headers=partner.headers
    ).json()["data"]
    attached = client.put(
        f"/telephony/numbers/{number_id}/e911",
        json={"address_id": address["id"]},
        headers=tenant.headers,
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["data"]["e911_status"] == "provisioned"
    # Empty the paying account's wallet.
    with db.session() as session:
        balance = ledger.wallet_balance(session, partner.id, settings.currency)
        ledger.transfer(
            session,
            kind="test",
            description="spent elsewhere",
            debit=ledger.wallet_id(partner.id, settings.currency),
            credit=ledger.ensure_platform_book(session, "revenue", settings.currency),
            amount=balance,
        )
    broke = ask(client, username, "+15015550123", number)
    assert broke["status"] == 402 and "no funds" in broke["reason"]
    emergency = ask(client, username, "911", "+15015559999")  # even a wrong caller ID
    assert emergency["action"] == "route" and emergency["emergency"] is True
    assert emergency["caller_id"] == number
    assert [t["uri"] for t in emergency["trunks"]] == ["sip:911@127.0.0.1:5094"]
    assert emergency["address"]["street"] == placed_street(client, tenant)
    # The lookup comes before the edge checks the digest: it tells no one.
    assert call_placed_events(client, tenant) == []
    # The edge, once the digest checked out: the front desk is told, once per call.
    told = placed(client, username, "911", "+15015559999", "call-911-a")
    assert told["calling_number"] == number
    placed(client, username, "911", "+15015559999", "call-911-a")  # a retransmission
    sent = call_placed_events(client, tenant)
    assert len(sent) == 1
    assert sent[0]["data"]["calling_number"] == number
    assert sent[0]["data"]["agent_id"] == agent["id"]
    assert sent[0]["data"]["call_id"] == "call-911-a"
    assert sent[0]["data"]["dispatchable_address"]["street"] == placed_street(client, tenant)
    # Suspended: refused with the reason, 911 still out.
    with db.session() as session:
        wallet_service.profile(session, partner.id).standing = "suspended"
    assert ask(client, username, "+15015550123", number)["status"] == 403
    assert ask(client, username, "933", number)["action"] == "route"


def placed_street(client: TestClient, tenant: Acct) -> str:
    addresses = client.get("/e911/addresses", headers=tenant.headers).json()["data"]
    street: str = addresses[0]["street"]
    return street


def test_operator_adds_trunks_from_the_cli(settings: Settings, db: Database) -> None:
    runner = CliRunner()
    env = {"DIDHUB_DATABASE_URL": settings.database_url}
    added = runner.invoke(
        cli,
        [
            "outbound",
            "trunk-add",
            "telnyx",
            "--host",
            "sip.telnyx.com",
            "--prefix",
            "1",
            "--cost",
            "0.004",
            "--json",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["outbound", "trunks"], env=env)
    assert "sip.telnyx.com" in listed.output and "0.004" in listed.output
    bad = runner.invoke(cli, ["outbound", "trunk-add", "x", "--host", "not a host"], env=env)
    assert bad.exit_code == 1 and "host" in bad.output


def test_only_emergency_calls_of_known_credentials_are_reported_placed(
    client: TestClient, partner: Acct, tenant: Acct, trunks: None
) -> None:
    agent, number, _ = agent_with_number(client, partner, tenant)
    username = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()[
        "data"
    ]["username"]
    body = {"username": username, "destination": "+15015550123", "caller": number, "call_id": "c1"}
    answer = client.post("/routing/outbound/emergency-placed", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "destination"
    stranger = {**body, "username": "nobody-here", "destination": "911"}
    answer = client.post("/routing/outbound/emergency-placed", json=stranger)
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "username"
    assert "nobody-here" not in answer.text
    refused = ask(client, "nobody-here", "911", number)
    assert refused["status"] == 403 and refused["reason"] == "unknown SIP credential"
    assert call_placed_events(client, tenant) == []


def test_a_trunks_digest_credentials_reach_only_the_edge(
    settings: Settings, db: Database, client: TestClient, partner: Acct, tenant: Acct
) -> None:
    runner = CliRunner()
    env = {"DIDHUB_DATABASE_URL": settings.database_url}

    def add(*argv: str, **extra: str) -> Any:
        return runner.invoke(cli, ["outbound", "trunk-add", *argv], env={**env, **extra})

    # Both or neither, each refusal naming the field that's missing.
    alone = add("twilio", "--host", "example.pstn.twilio.com", "--username", "didhub")
    assert alone.exit_code == 1 and "password" in alone.output
    without = add("twilio", "--host", "example.pstn.twilio.com", "--password", "p4ss")
    assert without.exit_code == 1 and "username" in without.output
    spaced = add("twilio", "--host", "h.example", "--username", "a b", "--password", "p4ss")
    assert spaced.exit_code == 1 and "username" in spaced.output
    # The password from the environment keeps it out of the shell's history.
    added = add(
        "twilio", "--host", "example.pstn.twilio.com", "--prefix", "1", "--cost", "0.001",
        "--username", "didhub", "--json", DIDHUB_TRUNK_PASSWORD="Secr3t-for-Twilio",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "Secr3t" not in added.output and '"auth": "digest"' in added.output
    listed = runner.invoke(cli, ["outbound", "trunks", "--json"], env=env)
    assert "Secr3t" not in listed.output
    shown = {t["name"]: t for t in json.loads(listed.output)}
    assert (shown["twilio"]["auth"], shown["twilio"]["username"]) == ("digest", "didhub")
    with db.session() as session:
        outbound.add_trunk(session, "ip-auth", "127.0.0.1:5091", prefix="1", cost=Decimal("0.01"))

    # The edge's lookup carries them, for that trunk's place in the list only.
    agent, number, _ = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    route = ask(client, cred["data"]["username"], "+15015550123", number)
    assert [t["name"] for t in route["trunks"]] == ["twilio", "ip-auth"]
    assert route["trunks"][0]["auth_username"] == "didhub"
    assert route["trunks"][0]["auth_password"] == "Secr3t-for-Twilio"
    assert "auth_username" not in route["trunks"][1]
    assert route["trunk_auth"] == {"0": {"username": "didhub", "password": "Secr3t-for-Twilio"}}


def test_a_number_suspended_for_non_payment_or_released_cant_be_presented(
    client: TestClient, db: Database, partner: Acct, tenant: Acct, trunks: None
) -> None:
    agent, number, number_id = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    username = cred["data"]["username"]
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    with db.session() as session:  # as the past-due sweep does
        lifecycle.transition(
            session, session.get_one(PhoneNumber, number_id), lifecycle.SUSPENDED,
            reason="non_payment",
        )  # fmt: skip
    suspended = ask(client, username, "+15015550123", number)
    assert (suspended["action"], suspended["status"]) == ("refuse", 403)
    assert suspended["reason"] == "no number is assigned outbound to this agent"
    with db.session() as session:
        lifecycle.transition(
            session, session.get_one(PhoneNumber, number_id), lifecycle.ACTIVE
        )  # paid: presentable again
    assert ask(client, username, "+15015550123", number)["action"] == "route"
    released = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
    )
    assert released.status_code == 200, released.text
    gone = ask(client, username, "+15015550123", number)
    assert (gone["action"], gone["status"]) == ("refuse", 403)


def test_an_emergency_trunks_credentials_ride_the_911_lookup(
    db: Database, client: TestClient, partner: Acct, tenant: Acct
) -> None:
    with db.session() as session:
        outbound.add_trunk(session, "psap-ip", "127.0.0.1:5095", emergency=True, cost=Decimal("1"))
        outbound.add_trunk(
            session, "psap-digest", "127.0.0.1:5096", emergency=True,
            username="e911-edge", password="Em3rgency!",
        )  # fmt: skip
    agent, number, _ = agent_with_number(client, partner, tenant)
    cred = client.post(f"/agents/{agent['id']}/sip-credential", headers=tenant.headers).json()
    route = ask(client, cred["data"]["username"], "911", number)
    assert route["action"] == "route" and route["emergency"] is True
    assert [t["name"] for t in route["trunks"]] == ["psap-digest", "psap-ip"]
    assert route["trunk_auth"] == {"0": {"username": "e911-edge", "password": "Em3rgency!"}}
    assert "auth_password" not in route["trunks"][1]
