"""Bring-your-own numbers (issue 6): import with the account's own provider
credentials, verified at the provider, routed to the edge, never billed; given
back with the routing restored. Provider payloads: tests/fixtures/<provider>/byo_*."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from carrier_fixtures import load_json, load_text
from conftest import Acct, ledger_ok
from didhub import clock
from didhub.billing.service import renewals
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.sandbox_gateway import SandboxGateway

A, B = "+13125550101", "+13125550102"
TELNYX = "https://api.telnyx.com"
TWILIO_SID = "AC99999999999999999999999999999999"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/IncomingPhoneNumbers"
BW_ACCOUNT = "9900077"
BW = "https://dashboard.bandwidth.com/api"
SECRET = "KEY-very-secret-0123"

TELNYX_BODY: dict[str, Any] = {
    "provider": "telnyx",
    "credentials": {"api_key": SECRET},
    "phone_numbers": [A],
    "voice": {"connection_id": "1999000000000000042"},
}


def telnyx_number(e164: str, number_id: str) -> dict[str, Any]:
    page = load_json("telnyx", "byo_phone_numbers.json")
    page["data"][0].update(phone_number=e164, id=number_id)
    return dict(page)


def wallet(client: TestClient, acct: Acct) -> str:
    balance: str = client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"]
    return balance


def transactions(client: TestClient, acct: Acct) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get("/billing/transactions", headers=acct.headers).json()[
        "data"
    ]
    return data


def import_telnyx(client: TestClient, acct: Acct, mock: respx.MockRouter) -> dict[str, Any]:
    mock.get(f"{TELNYX}/v2/phone_numbers").mock(
        return_value=httpx.Response(200, json=telnyx_number(A, "1293384261075731601"))
    )
    mock.patch(f"{TELNYX}/v2/phone_numbers/1293384261075731601").mock(
        return_value=httpx.Response(200, json=load_json("telnyx", "byo_phone_number_updated.json"))
    )
    response = client.post("/telephony/numbers/import", json=TELNYX_BODY, headers=acct.headers)
    assert response.status_code == 201, response.text
    number: dict[str, Any] = response.json()["data"][0]
    return number


# ------------------------------------------------------------------ Telnyx


def test_telnyx_import_verifies_points_at_the_edge_and_charges_nothing(
    client: TestClient, partner: Acct, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = transactions(client, partner)
    with respx.mock as mock:
        lookup = mock.get(f"{TELNYX}/v2/phone_numbers").mock(
            return_value=httpx.Response(200, json=telnyx_number(A, "1293384261075731601"))
        )
        patch = mock.patch(f"{TELNYX}/v2/phone_numbers/1293384261075731601").mock(
            return_value=httpx.Response(
                200, json=load_json("telnyx", "byo_phone_number_updated.json")
            )
        )
        response = client.post(
            "/telephony/numbers/import", json=TELNYX_BODY, headers=partner.headers
        )
    assert response.status_code == 201, response.text
    assert lookup.calls.last.request.url.params["filter[phone_number]"] == A
    assert lookup.calls.last.request.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(patch.calls.last.request.content) == {"connection_id": "1999000000000000042"}
    number = response.json()["data"][0]
    assert number["phone_number"] == A
    assert number["is_managed"] is False
    assert number["status"] == "active"
    assert response.json()["meta"]["charged"] == "0.00"
    # Nothing moved in the ledger; the number is in the inventory.
    assert wallet(client, partner) == "100.00"
    assert transactions(client, partner) == before
    listed = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    assert [n["phone_number"] for n in listed] == [A]
    assert ledger_ok(db)
    # The credentials are in no log line and in no stored row.
    assert SECRET not in caplog.text
    with db.session() as session:
        from didhub.numbers.models import NumberEvent

        stored = json.dumps([e.data for e in session.query(NumberEvent).all()])
    assert SECRET not in stored
    assert "1494404757140276705" in stored  # the previous connection, kept to restore


def test_telnyx_release_import_restores_the_previous_connection(
    client: TestClient, partner: Acct, carrier: SandboxCarrier
) -> None:
    with respx.mock as mock:
        number = import_telnyx(client, partner, mock)
    with respx.mock as mock:
        restore = mock.patch(f"{TELNYX}/v2/phone_numbers/1293384261075731601").mock(
            return_value=httpx.Response(200, json=telnyx_number(A, "1293384261075731601"))
        )
        response = client.post(
            f"/telephony/numbers/{number['id']}/release-import",
            json={"credentials": {"api_key": SECRET}},
            headers=partner.headers,
        )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "released"
    assert json.loads(restore.calls.last.request.content) == {
        "connection_id": "1494404757140276705"
    }
    # Importing it again is possible once released.
    with respx.mock as mock:
        assert import_telnyx(client, partner, mock)["phone_number"] == A


def test_release_import_refused_keeps_the_number(client: TestClient, partner: Acct) -> None:
    with respx.mock as mock:
        number = import_telnyx(client, partner, mock)
    with respx.mock as mock:
        mock.patch(f"{TELNYX}/v2/phone_numbers/1293384261075731601").mock(
            return_value=httpx.Response(403, json=load_json("telnyx", "error_422.json"))
        )
        response = client.post(
            f"/telephony/numbers/{number['id']}/release-import",
            json={"credentials": {"api_key": SECRET}},
            headers=partner.headers,
        )
    assert response.status_code == 502
    got = client.get(f"/telephony/numbers/{number['id']}", headers=partner.headers).json()
    assert got["data"]["status"] == "active"


def test_plain_release_of_an_imported_number_never_calls_the_platform_carrier(
    client: TestClient, partner: Acct, carrier: SandboxCarrier
) -> None:
    with respx.mock as mock:
        number = import_telnyx(client, partner, mock)
    calls: list[str] = []
    carrier.release = calls.append  # type: ignore[method-assign]
    response = client.post(
        "/telephony/numbers/release", json={"number_id": number["id"]}, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "released"
    assert calls == []
    assert wallet(client, partner) == "100.00"


def test_all_or_nothing_when_one_number_is_not_held(client: TestClient, partner: Acct) -> None:
    with respx.mock as mock:

        def lookup(request: httpx.Request) -> httpx.Response:
            if request.url.params["filter[phone_number]"] == A:
                return httpx.Response(200, json=telnyx_number(A, "1"))
            return httpx.Response(200, json=load_json("telnyx", "phone_numbers_empty.json"))

        mock.get(f"{TELNYX}/v2/phone_numbers").mock(side_effect=lookup)
        patch = mock.patch(url__startswith=f"{TELNYX}/v2/phone_numbers/")
        response = client.post(
            "/telephony/numbers/import",
            json={**TELNYX_BODY, "phone_numbers": [A, B]},
            headers=partner.headers,
        )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "phone_numbers"
    assert B in error["message"] and A not in error["message"]
    assert patch.call_count == 0
    assert client.get("/telephony/numbers", headers=partner.headers).json()["data"] == []


def test_a_routing_failure_points_the_moved_numbers_back(client: TestClient, partner: Acct) -> None:
    with respx.mock as mock:

        def lookup(request: httpx.Request) -> httpx.Response:
            e164 = request.url.params["filter[phone_number]"]
            return httpx.Response(200, json=telnyx_number(e164, "id" + e164[-1]))

        mock.get(f"{TELNYX}/v2/phone_numbers").mock(side_effect=lookup)
        first = mock.patch(f"{TELNYX}/v2/phone_numbers/id1").mock(
            return_value=httpx.Response(200, json={"data": {}})
        )
        mock.patch(f"{TELNYX}/v2/phone_numbers/id2").mock(
            return_value=httpx.Response(422, json=load_json("telnyx", "error_422.json"))
        )
        response = client.post(
            "/telephony/numbers/import",
            json={**TELNYX_BODY, "phone_numbers": [A, B]},
            headers=partner.headers,
        )
    assert response.status_code == 502
    bodies = [json.loads(c.request.content) for c in first.calls]
    assert bodies == [
        {"connection_id": "1999000000000000042"},
        {"connection_id": "1494404757140276705"},  # put back
    ]
    assert client.get("/telephony/numbers", headers=partner.headers).json()["data"] == []


# ------------------------------------------------------------------ Twilio


def test_twilio_import_sets_the_trunk_and_restore_clears_it(
    client: TestClient, partner: Acct
) -> None:
    body = {
        "provider": "twilio",
        "credentials": {"account_sid": TWILIO_SID, "auth_token": SECRET},
        "phone_numbers": [A],
        "voice": {"trunk_sid": "TK00000000000000000000000000000042"},
    }
    with respx.mock as mock:
        lookup = mock.get(f"{TWILIO}.json").mock(
            return_value=httpx.Response(200, json=load_json("twilio", "byo_incoming.json"))
        )
        update = mock.post(f"{TWILIO}/PN22222222222222222222222222222222.json").mock(
            return_value=httpx.Response(200, json=load_json("twilio", "byo_incoming_updated.json"))
        )
        response = client.post("/telephony/numbers/import", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    assert lookup.calls.last.request.url.params["PhoneNumber"] == A
    assert (
        lookup.calls.last.request.headers["Authorization"]
        == httpx.BasicAuth(TWILIO_SID, SECRET)._auth_header
    )
    assert parse_qs(update.calls.last.request.content.decode()) == {
        "TrunkSid": ["TK00000000000000000000000000000042"]
    }
    number_id = response.json()["data"][0]["id"]
    assert response.json()["data"][0]["carrier"] == "twilio"
    with respx.mock as mock:
        restore = mock.post(f"{TWILIO}/PN22222222222222222222222222222222.json").mock(
            return_value=httpx.Response(200, json=load_json("twilio", "byo_incoming.json"))
        )
        released = client.post(
            f"/telephony/numbers/{number_id}/release-import",
            json={"credentials": body["credentials"]},
            headers=partner.headers,
        )
    assert released.status_code == 200, released.text
    # It had no trunk before: an empty TrunkSid takes it off ours.
    assert restore.calls.last.request.content == b"TrunkSid="


def test_twilio_number_not_on_the_account(client: TestClient, partner: Acct) -> None:
    with respx.mock as mock:
        mock.get(f"{TWILIO}.json").mock(
            return_value=httpx.Response(200, json=load_json("twilio", "byo_incoming_empty.json"))
        )
        response = client.post(
            "/telephony/numbers/import",
            json={
                "provider": "twilio",
                "credentials": {"account_sid": TWILIO_SID, "auth_token": SECRET},
                "phone_numbers": [A],
                "voice": {"trunk_sid": "TK1"},
            },
            headers=partner.headers,
        )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "phone_numbers"
    assert TWILIO_SID not in response.text and SECRET not in response.text


# ------------------------------------------------------------------ Bandwidth


def test_bandwidth_import_moves_to_the_named_peer_and_back(
    client: TestClient, partner: Acct
) -> None:
    account = f"{BW}/accounts/{BW_ACCOUNT}"
    credentials = {"account_id": BW_ACCOUNT, "username": "api-user", "password": SECRET}
    body = {
        "provider": "bandwidth",
        "credentials": credentials,
        "phone_numbers": [A],
        "voice": {"site_id": "3003", "sip_peer_id": "700042"},
    }
    xml = {"Content-Type": "application/xml"}
    with respx.mock as mock:
        held = mock.get(f"{account}/inserviceNumbers/3125550101").mock(
            return_value=httpx.Response(200)
        )
        mock.get(f"{BW}/tns/3125550101/tndetails").mock(
            return_value=httpx.Response(
                200, text=load_text("bandwidth", "byo_tndetails.xml"), headers=xml
            )
        )
        move = mock.post(f"{account}/sites/3003/sippeers/700042/movetns").mock(
            return_value=httpx.Response(200)
        )
        response = client.post("/telephony/numbers/import", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    assert (
        held.calls.last.request.headers["Authorization"]
        == httpx.BasicAuth("api-user", SECRET)._auth_header
    )
    sent = ET.fromstring(move.calls.last.request.content)
    assert sent.tag == "SipPeerTelephoneNumbers"
    assert [n.text for n in sent.findall("FullNumber")] == ["3125550101"]
    number_id = response.json()["data"][0]["id"]
    with respx.mock as mock:
        back = mock.post(f"{account}/sites/2001/sippeers/500017/movetns").mock(
            return_value=httpx.Response(200)
        )
        released = client.post(
            f"/telephony/numbers/{number_id}/release-import",
            json={"credentials": credentials},
            headers=partner.headers,
        )
    assert released.status_code == 200, released.text
    assert [n.text for n in ET.fromstring(back.calls.last.request.content)] == ["3125550101"]


def test_bandwidth_number_not_in_service(client: TestClient, partner: Acct) -> None:
    account = f"{BW}/accounts/{BW_ACCOUNT}"
    with respx.mock as mock:
        mock.get(f"{account}/inserviceNumbers/3125550102").mock(
            return_value=httpx.Response(
                404, text=load_text("bandwidth", "byo_inservice_not_found.xml")
            )
        )
        response = client.post(
            "/telephony/numbers/import",
            json={
                "provider": "bandwidth",
                "credentials": {"account_id": BW_ACCOUNT, "username": "u", "password": SECRET},
                "phone_numbers": [B],
                "voice": {"site_id": "3003", "sip_peer_id": "700042"},
            },
            headers=partner.headers,
        )
    assert response.status_code == 422
    assert B in response.json()["error"]["message"]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "vonage"}, "provider"),
        ({"credentials": {}}, "credentials.api_key"),
        ({"credentials": {"api_key": SECRET, "token": "x"}}, "credentials.token"),
        ({"voice": None}, "voice.connection_id"),
        ({"phone_numbers": []}, "phone_numbers"),
        ({"phone_numbers": ["12"]}, "phone_numbers"),
        ({"phone_numbers": [A, A]}, "phone_numbers"),
        (
            {
                "provider": "twilio",
                "credentials": {"account_sid": TWILIO_SID},
                "voice": {"trunk_sid": "TK1"},
            },
            "credentials.auth_token",
        ),
        (
            {
                "provider": "bandwidth",
                "credentials": {"account_id": "1", "username": "u", "password": "p"},
                "voice": {"site_id": "1"},
            },
            "voice.sip_peer_id",
        ),
    ],
)
def test_validation_names_the_field(
    client: TestClient, partner: Acct, change: dict[str, Any], field: str
) -> None:
    with respx.mock as mock:  # nothing may reach a provider
        response = client.post(
            "/telephony/numbers/import", json={**TELNYX_BODY, **change}, headers=partner.headers
        )
        assert mock.calls.call_count == 0
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert SECRET not in response.text


def test_a_number_already_live_in_didhub_is_409(
    client: TestClient, partner: Acct, make_partner: Callable[..., Acct]
) -> None:
    with respx.mock as mock:
        import_telnyx(client, partner, mock)
    other = make_partner("Other")
    with respx.mock as mock:
        response = client.post(
            "/telephony/numbers/import",
            json={**TELNYX_BODY, "phone_numbers": [B, A]},
            headers=other.headers,
        )
        assert mock.calls.call_count == 0
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "phone_numbers[1]"
    assert A in response.json()["error"]["message"]


# ------------------------------------------------------------------ tenancy, routing, billing


def test_tenancy_routing_and_no_renewal(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    with respx.mock as mock:
        number = import_telnyx(client, tenant, mock)
    assert number["tenant_id"] == tenant.id
    # The partner sees its tenant's number; a stranger doesn't.
    assert client.get(f"/telephony/numbers/{number['id']}", headers=partner.headers).is_success
    stranger = make_partner("Stranger")
    assert (
        client.get(f"/telephony/numbers/{number['id']}", headers=stranger.headers).status_code
        == 404
    )
    gone = client.post(
        f"/telephony/numbers/{number['id']}/release-import",
        json={"credentials": {"api_key": SECRET}},
        headers=stranger.headers,
    )
    assert gone.status_code == 404
    # Assigned to an agent, it routes through the edge like any number.
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Receptionist"}, headers=partner.headers
    ).json()["data"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number["id"], "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=tenant.headers,
    )
    assert assigned.status_code == 200, assigned.text
    route = client.get(f"/routing/inbound/{A}").json()["data"]
    assert route["action"] == "agent" and route["agent_id"] == agent["id"]
    # A year of renewal runs bills nothing for it.
    gateway = SandboxGateway(db)
    today = clock.now().date()
    for months in (1, 2, 12):
        renewals.run(db, carrier, gateway, settings, today + timedelta(days=31 * months))
    assert wallet(client, tenant) == "0.00"
    assert [t for t in transactions(client, tenant) if t["kind"] != "usage"] == []
    # Usage is still rated (local outbound: 0.0100 a minute).
    usage = client.post(
        "/billing/usage",
        json={
            "records": [
                {
                    "phone_number": A,
                    "direction": "outbound",
                    "started_at": clock.now().isoformat(),
                    "duration_seconds": 60,
                    "call_id": "byo-1",
                }
            ]
        },
    )
    assert usage.status_code == 200, usage.text
    assert Decimal(usage.json()["data"]["charged"]) == Decimal("0.01")
    assert ledger_ok(db)
    # Release ends the assignment.
    with respx.mock as mock:
        mock.patch(f"{TELNYX}/v2/phone_numbers/1293384261075731601").mock(
            return_value=httpx.Response(200, json={"data": {}})
        )
        released = client.post(
            f"/telephony/numbers/{number['id']}/release-import",
            json={"credentials": {"api_key": SECRET}},
            headers=partner.headers,
        )
    assert released.status_code == 200, released.text
    assert client.get(f"/routing/inbound/{A}").status_code == 404  # no longer ours to route
    got = client.get(f"/telephony/numbers/{number['id']}", headers=partner.headers).json()["data"]
    assert got["status"] == "released" and got["assignments"]["inbound"] is None


def test_release_import_of_a_bought_number_is_409(client: TestClient, partner: Acct) -> None:
    from conftest import buy, search_numbers

    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    response = client.post(
        f"/telephony/numbers/{number_id}/release-import",
        json={"credentials": {"api_key": SECRET}},
        headers=partner.headers,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_imported"


# ------------------------------------------------------------------ CLI


def test_cli_import_takes_credentials_from_the_environment(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from didhub.cli import app
    from didhub.config import get_settings

    monkeypatch.setenv("DIDHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("DIDHUB_BYO_API_KEY", SECRET)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        made = runner.invoke(app, ["partner", "create", "Acme", "--json"])
        key = json.loads(made.output)["api_key"]
        with respx.mock as mock:
            lookup = mock.get(f"{TELNYX}/v2/phone_numbers").mock(
                return_value=httpx.Response(200, json=telnyx_number(A, "77"))
            )
            patch = mock.patch(f"{TELNYX}/v2/phone_numbers/77").mock(
                return_value=httpx.Response(200, json={"data": {}})
            )
            result = runner.invoke(
                app,
                ["numbers", "import", "--key", key, "--provider", "telnyx", "--numbers", A]
                + ["--voice", "connection_id=1999000000000000042", "--json"],
            )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["numbers"][0]["is_managed"] is False
        assert lookup.calls.last.request.headers["Authorization"] == f"Bearer {SECRET}"
        assert json.loads(patch.calls.last.request.content) == {
            "connection_id": "1999000000000000042"
        }
        missing = runner.invoke(
            app, ["numbers", "import", "--key", key, "--provider", "telnyx", "--numbers", B]
        )
        assert missing.exit_code == 1 and "voice.connection_id" in missing.output
    finally:
        get_settings.cache_clear()


def test_import_publishes_number_imported_without_routing_ids(
    client: TestClient, partner: Acct
) -> None:
    with respx.mock as mock:
        import_telnyx(client, partner, mock)
    events = client.get("/events", headers=partner.headers).json()["data"]
    imported = [e for e in events if e["type"] == "number.imported"]
    assert len(imported) == 1
    assert imported[0]["data"]["provider"] == "telnyx"
    assert "1494404757140276705" not in json.dumps(imported)
    assert not [e for e in events if e["type"] in ("number.ordered", "number.purchased")]


def test_a_provider_error_echoing_the_key_is_masked(client: TestClient, partner: Acct) -> None:
    """Telnyx's 401 repeats the key it was sent; the account's own key must
    not come back in the 502 (nor in anything logged from it)."""
    with respx.mock as mock:
        mock.get(f"{TELNYX}/v2/phone_numbers").mock(
            return_value=httpx.Response(401, json=load_json("telnyx", "error_401_key_echo.json"))
        )
        response = client.post(
            "/telephony/numbers/import", json=TELNYX_BODY, headers=partner.headers
        )
    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    assert SECRET not in message and "***" in message and "not a valid API key" in message


def test_the_platform_telnyx_key_is_masked_too() -> None:
    from didhub.carriers.base import CarrierFailure
    from didhub.carriers.telnyx import TelnyxCarrier

    carrier = TelnyxCarrier(SECRET, TELNYX, max_attempts=1)
    with respx.mock as mock:
        mock.get(f"{TELNYX}/v2/phone_numbers").mock(
            return_value=httpx.Response(401, json=load_json("telnyx", "error_401_key_echo.json"))
        )
        with pytest.raises(CarrierFailure) as failure:
            list(carrier.owned_numbers())
    assert SECRET not in str(failure.value) and "***" in str(failure.value)
