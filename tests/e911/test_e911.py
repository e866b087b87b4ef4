from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app
from didhub.db import Database
from didhub.e911 import service as e911
from didhub.errors import ValidationFailed
from didhub.postal.normalize import normalize

ADDRESS: dict[str, Any] = {
    "street": "123 North Main Street",
    "unit": "Suite 200",
    "city": "Little Rock",
    "state": "Arkansas",
    "postal_code": "72201-1234",
    "caller_name": "Acme Dental",
}


# ------------------------------------------------------------------ normalization


def test_normalize_standardizes_suffixes_directionals_units_and_state() -> None:
    address = normalize(ADDRESS)
    assert address.street == "123 N MAIN ST"
    assert address.unit == "STE 200"
    assert (address.city, address.state, address.postal_code) == ("LITTLE ROCK", "AR", "72201-1234")
    assert address.country == "US" and address.caller_name == "Acme Dental"


@pytest.mark.parametrize(
    ("street", "unit", "expected_street", "expected_unit"),
    [
        ("1600 Pennsylvania Avenue Northwest", None, "1600 PENNSYLVANIA AVE NW", None),
        ("500 W 3rd St #12", None, "500 W 3RD ST", "# 12"),
        ("12 Oak Avenue, Floor 3", None, "12 OAK AVE", "FL 3"),
        ("742 Evergreen Terrace", "apartment 4b", "742 EVERGREEN TER", "APT 4B"),
        ("9 Elm Boulevard", "Bldg. C", "9 ELM BLVD", "BLDG C"),
        ("9 Elm Boulevard", "rm 101", "9 ELM BLVD", "RM 101"),
        ("9 Elm Boulevard", "7", "9 ELM BLVD", "# 7"),
        ("9 Elm Boulevard", "2nd floor", "9 ELM BLVD", "FL 2"),
    ],
)
def test_normalize_street_and_unit(
    street: str, unit: str | None, expected_street: str, expected_unit: str | None
) -> None:
    address = normalize({**ADDRESS, "street": street, "unit": unit})
    assert (address.street, address.unit) == (expected_street, expected_unit)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"postal_code": None}, "postal_code"),
        ({"postal_code": "7220"}, "postal_code"),
        ({"state": "TX"}, "state"),  # 722xx is Arkansas
        ({"state": "Narnia"}, "state"),
        ({"state": ""}, "state"),
        ({"street": "PO Box 12", "unit": None}, "street"),
        ({"street": "P.O. Box 12", "unit": None}, "street"),
        ({"street": "Post Office Box 7", "unit": None}, "street"),
        ({"street": "Main Street", "unit": None}, "street"),  # no house number
        ({"street": "123 Main St, Little Rock AR 72201", "unit": None}, "street"),
        ({"street": "123 Main St Apt 4", "unit": "Apt 5"}, "unit"),
        ({"unit": "Bogus"}, "unit"),
        ({"city": ""}, "city"),
        ({"caller_name": ""}, "caller_name"),
        ({"caller_name": "x" * 33}, "caller_name"),
        ({"country": "CA"}, "country"),
        ({"postal_code": "00100"}, "postal_code"),  # prefix not in use
    ],
)
def test_normalize_refuses_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize({**ADDRESS, **change})
    assert caught.value.field == field


def test_zip_plus4_forms_and_multi_state_prefixes() -> None:
    assert normalize({**ADDRESS, "postal_code": "72201 1234"}).postal_code == "72201-1234"
    assert normalize({**ADDRESS, "postal_code": "722011234"}).postal_code == "72201-1234"
    dc = normalize({**ADDRESS, "state": "dc", "city": "Washington", "postal_code": "20500"})
    assert dc.state == "DC"
    guam = {**ADDRESS, "state": "Guam", "city": "Hagatna", "postal_code": "96910"}
    assert normalize(guam).state == "GU"


# ------------------------------------------------------------------ helpers


def add_address(client: TestClient, acct: Acct, **change: Any) -> dict[str, Any]:
    response = client.post("/e911/addresses", json={**ADDRESS, **change}, headers=acct.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def a_number(client: TestClient, acct: Acct, area_code: str = "501") -> dict[str, Any]:
    found = search_numbers(client, acct, area_code=area_code, page_size=1)
    number: dict[str, Any] = buy(client, acct, found[0]["phone_number"])["data"][0]
    return number


def attach(client: TestClient, acct: Acct, number_id: str, address_id: str) -> Any:
    return client.put(
        f"/telephony/numbers/{number_id}/e911",
        json={"address_id": address_id},
        headers=acct.headers,
    )


@pytest.fixture
def tenant(make_tenant: Callable[..., Acct], partner: Acct) -> Acct:
    return make_tenant("Dental", partner_id=partner.id)


def give_to(client: TestClient, partner: Acct, number_id: str, tenant: Acct) -> None:
    response = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": tenant.id}, headers=partner.headers
    )
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------ addresses API


def test_address_with_zip4_is_validated_at_once(client: TestClient, tenant: Acct) -> None:
    address = add_address(client, tenant)
    assert address["status"] == "validated" and address["suggestion"] is None
    assert address["street"] == "123 N MAIN ST" and address["unit"] == "STE 200"
    assert address["tenant_id"] == tenant.id and address["carrier_reference"]
    listed = client.get("/e911/addresses", headers=tenant.headers).json()["data"]
    assert [a["id"] for a in listed] == [address["id"]]


def test_carrier_suggestion_needs_confirmation(client: TestClient, tenant: Acct) -> None:
    address = add_address(client, tenant, postal_code="72201")
    assert address["status"] == "needs_confirmation"
    suggested = address["suggestion"]["postal_code"]
    assert suggested.startswith("72201-") and len(suggested) == 10
    again = add_address(client, tenant, postal_code="72201")
    assert again["suggestion"]["postal_code"] == suggested  # deterministic
    accepted = client.post(
        f"/e911/addresses/{address['id']}/accept-suggestion", headers=tenant.headers
    )
    assert accepted.status_code == 200
    assert accepted.json()["data"]["status"] == "validated"
    assert accepted.json()["data"]["postal_code"] == suggested
    twice = client.post(
        f"/e911/addresses/{address['id']}/accept-suggestion", headers=tenant.headers
    )
    assert twice.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"postal_code": None}, "postal_code"),
        ({"state": "TX"}, "state"),
        ({"street": "P.O. Box 99", "unit": None}, "street"),
        ({"street": "0 Main Street"}, "street"),  # the sandbox can't find house 0
        ({"street": "123456 Main Street"}, "street"),
    ],
)
def test_bad_addresses_answer_422_naming_the_field(
    client: TestClient, tenant: Acct, change: dict[str, Any], field: str
) -> None:
    response = client.post("/e911/addresses", json={**ADDRESS, **change}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert client.get("/e911/addresses", headers=tenant.headers).json()["data"] == []


def test_partner_manages_tenant_addresses_others_get_404(
    client: TestClient, partner: Acct, tenant: Acct, make_partner: Callable[..., Acct]
) -> None:
    address = add_address(client, partner, tenant_id=tenant.id)
    assert address["tenant_id"] == tenant.id
    seen = client.get("/e911/addresses", headers=tenant.headers).json()["data"]
    assert [a["id"] for a in seen] == [address["id"]]
    other = make_partner("Other")
    assert client.get(f"/e911/addresses/{address['id']}", headers=other.headers).status_code == 404
    response = client.post(
        "/e911/addresses", json={**ADDRESS, "tenant_id": tenant.id}, headers=other.headers
    )
    assert response.status_code == 404 and response.json()["error"]["field"] == "tenant_id"
    gone = client.delete(f"/e911/addresses/{address['id']}", headers=other.headers)
    assert gone.status_code == 404


# ------------------------------------------------------------------ attach


def test_attach_provisions_and_records_events(
    client: TestClient, partner: Acct, tenant: Acct
) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    address = add_address(client, tenant)
    response = attach(client, tenant, number["id"], address["id"])
    assert response.status_code == 200, response.text
    assert response.json()["data"]["e911_status"] == "provisioned"
    shown = client.get(f"/telephony/numbers/{number['id']}/e911", headers=partner.headers)
    assert shown.json()["data"]["address"]["id"] == address["id"]
    assert client.app.state.ctx.carrier.e911[number["phone_number"]].street == "123 N MAIN ST"  # type: ignore[attr-defined]
    events = client.get(
        "/events", params={"type": "number.e911.updated"}, headers=partner.headers
    ).json()["data"]
    assert sorted(e["data"]["status"] for e in events) == ["pending", "provisioned"]


def test_unvalidated_address_is_refused(client: TestClient, partner: Acct, tenant: Acct) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    address = add_address(client, tenant, postal_code="72201")
    response = attach(client, tenant, number["id"], address["id"])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "address_id"
    assert client.get(f"/telephony/numbers/{number['id']}/e911", headers=tenant.headers).json() == {
        "data": None
    }


def test_address_of_another_tenant_or_account_is_refused(
    client: TestClient,
    partner: Acct,
    tenant: Acct,
    make_tenant: Callable[..., Acct],
    make_partner: Callable[..., Acct],
) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    sibling = make_tenant("Sibling", partner_id=partner.id)
    theirs = add_address(client, partner, tenant_id=sibling.id)
    mismatch = attach(client, partner, number["id"], theirs["id"])
    assert mismatch.status_code == 409 and mismatch.json()["error"]["field"] == "address_id"
    stranger = make_partner("Stranger")
    foreign = add_address(client, stranger)
    assert attach(client, partner, number["id"], foreign["id"]).status_code == 404
    mine = add_address(client, stranger)
    assert attach(client, stranger, number["id"], mine["id"]).status_code == 404


def test_carrier_push_failing_then_recovering_on_retry(
    client: TestClient, partner: Acct, tenant: Acct, carrier: SandboxCarrier
) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    address = add_address(client, tenant)
    carrier.inject_fault("fail")
    failed = attach(client, tenant, number["id"], address["id"])
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "carrier_error"
    state = client.get(f"/telephony/numbers/{number['id']}/e911", headers=tenant.headers)
    assert state.json()["data"]["e911_status"] == "failed"
    assert "injected failure" in state.json()["data"]["e911_reason"]
    retried = client.post(f"/telephony/numbers/{number['id']}/e911/retry", headers=tenant.headers)
    assert retried.status_code == 200
    assert retried.json()["data"] == {
        "number_id": number["id"],
        "phone_number": number["phone_number"],
        "address_id": address["id"],
        "e911_status": "provisioned",
        "e911_reason": None,
    }
    events = client.get(
        "/events", params={"type": "number.e911.updated"}, headers=tenant.headers
    ).json()["data"]
    assert sorted(e["data"]["status"] for e in events) == [
        "failed",
        "pending",
        "pending",
        "provisioned",
    ]


def test_lost_carrier_answer_stays_pending_until_the_sweep(
    client: TestClient, partner: Acct, db: Database, carrier: SandboxCarrier
) -> None:
    number = a_number(client, partner)
    address = add_address(client, partner)
    carrier.inject_fault("timeout")
    pending = attach(client, partner, number["id"], address["id"])
    assert pending.status_code == 202
    assert pending.json()["data"]["e911_status"] == "pending"
    assert e911.repush_pending(db, carrier, min_age=timedelta(hours=1)) == []  # too young
    assert e911.repush_pending(db, carrier, min_age=timedelta(0)) == [number["phone_number"]]
    state = client.get(f"/telephony/numbers/{number['id']}/e911", headers=partner.headers)
    assert state.json()["data"]["e911_status"] == "provisioned"
    assert e911.repush_pending(db, carrier, min_age=timedelta(0)) == []


def test_address_in_use_cannot_be_deleted_until_detached(
    client: TestClient, partner: Acct, carrier: SandboxCarrier
) -> None:
    number = a_number(client, partner)
    address = add_address(client, partner)
    assert attach(client, partner, number["id"], address["id"]).status_code == 200
    refused = client.delete(f"/e911/addresses/{address['id']}", headers=partner.headers)
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "address_id"
    detached = client.delete(f"/telephony/numbers/{number['id']}/e911", headers=partner.headers)
    assert detached.status_code == 200
    assert number["phone_number"] not in carrier.e911
    assert (
        client.delete(f"/e911/addresses/{address['id']}", headers=partner.headers).status_code
        == 200
    )
    assert client.get("/e911/addresses", headers=partner.headers).json()["data"] == []


# ------------------------------------------------------------------ outbound warning


def test_outbound_assignment_warns_without_e911(
    client: TestClient, partner: Acct, tenant: Acct
) -> None:
    number = a_number(client, partner)
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Ava"}, headers=partner.headers
    )
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["data"]["id"]
    body = {"number_id": number["id"], "agent_id": agent_id}
    inbound = client.post(
        "/telephony/numbers/assign",
        json={**body, "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert inbound.status_code == 200 and inbound.json()["warnings"] == []
    outbound = client.post(
        "/telephony/numbers/assign",
        json={**body, "assignment_type": "outbound"},
        headers=partner.headers,
    )
    assert outbound.status_code == 200
    [warning] = outbound.json()["warnings"]
    assert warning["code"] == "e911_missing" and number["phone_number"] in warning["message"]
    address = add_address(client, tenant)
    assert attach(client, tenant, number["id"], address["id"]).status_code == 200
    client.post(
        "/telephony/numbers/unassign",
        json={"number_id": number["id"], "assignment_type": "outbound"},
        headers=partner.headers,
    )
    again = client.post(
        "/telephony/numbers/assign",
        json={**body, "assignment_type": "outbound"},
        headers=partner.headers,
    )
    assert again.json()["warnings"] == []


# ------------------------------------------------------------------ locations and compliance


def test_compliance_report_lists_locations_and_numbers_without_e911(
    client: TestClient, partner: Acct, tenant: Acct, make_partner: Callable[..., Acct]
) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    hq = add_address(client, tenant)
    branch = add_address(client, tenant, street="9 Elm Boulevard", unit=None)
    made = client.post(
        "/e911/locations", json={"name": "HQ", "address_id": hq["id"]}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    client.post(
        "/e911/locations",
        json={"name": "Branch", "address_id": branch["id"]},
        headers=partner.headers,
    )
    report = client.get("/compliance/e911", headers=partner.headers).json()["data"]
    assert report["compliant"] is False
    assert {loc["name"] for loc in report["locations_without_e911"]} == {"HQ", "Branch"}
    assert [n["phone_number"] for n in report["numbers_without_e911"]] == [number["phone_number"]]

    assert attach(client, tenant, number["id"], hq["id"]).status_code == 200
    report = client.get("/compliance/e911", headers=tenant.headers).json()["data"]
    assert [loc["name"] for loc in report["locations_without_e911"]] == ["Branch"]
    assert report["numbers_without_e911"] == []

    # Another account sees none of it.
    other = make_partner("Other")
    assert client.get("/compliance/e911", headers=other.headers).json()["data"] == {
        "compliant": True,
        "locations_without_e911": [],
        "numbers_without_e911": [],
    }
    listed = client.get("/e911/locations", headers=tenant.headers).json()["data"]
    branch_id = next(loc["id"] for loc in listed if loc["name"] == "Branch")
    assert client.delete(f"/e911/locations/{branch_id}", headers=other.headers).status_code == 404
    assert client.delete(f"/e911/locations/{branch_id}", headers=tenant.headers).status_code == 200
    assert client.get("/compliance/e911", headers=tenant.headers).json()["data"]["compliant"]


def test_duplicate_address_record_covers_the_location(client: TestClient, partner: Acct) -> None:
    number = a_number(client, partner)
    site = add_address(client, partner)
    copy = add_address(client, partner, postal_code="72201")  # same place, no ZIP+4
    client.post(f"/e911/addresses/{copy['id']}/accept-suggestion", headers=partner.headers)
    client.post(
        "/e911/locations", json={"name": "HQ", "address_id": site["id"]}, headers=partner.headers
    )
    assert attach(client, partner, number["id"], copy["id"]).status_code == 200
    report = client.get("/compliance/e911", headers=partner.headers).json()["data"]
    assert report["compliant"] is True


# ------------------------------------------------------------------ CLI


def test_cli_address_attach_and_compliance(
    cli_env: None, client: TestClient, partner: Acct
) -> None:
    runner = CliRunner()
    number = a_number(client, partner)
    base = ["--key", partner.key]
    bad = runner.invoke(
        app,
        ["e911", "address", "add", *base, "--street", "PO Box 4", "--city", "Little Rock",
         "--state", "AR", "--zip", "72201", "--caller-name", "Acme"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "(street)" in bad.output
    added = runner.invoke(
        app,
        ["e911", "address", "add", *base, "--street", "123 North Main Street", "--unit", "Ste 200",
         "--city", "Little Rock", "--state", "Arkansas", "--zip", "72201", "--caller-name", "Acme",
         "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    address = json.loads(added.output)
    assert address["status"] == "needs_confirmation"
    assert runner.invoke(app, ["e911", "address", "accept", address["id"], *base]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["e911", "address", "list", *base, "--json"]).output)
    assert [a["status"] for a in listed] == ["validated"]
    location = runner.invoke(app, ["e911", "location", "add", "HQ", address["id"], *base])
    assert location.exit_code == 0, location.output

    gaps = runner.invoke(app, ["compliance", "e911", *base, "--json"])
    assert gaps.exit_code == 1
    report = json.loads(gaps.output)
    assert [n["number_id"] for n in report["numbers_without_e911"]] == [number["id"]]
    assert [loc["name"] for loc in report["locations_without_e911"]] == ["HQ"]

    attached = runner.invoke(app, ["e911", "attach", number["id"], address["id"], *base])
    assert attached.exit_code == 0 and "provisioned" in attached.output, attached.output
    ok = runner.invoke(app, ["compliance", "e911", *base])
    assert ok.exit_code == 0 and "compliant" in ok.output
    retry = runner.invoke(app, ["e911", "retry", number["id"], *base])
    assert retry.exit_code == 0 and "provisioned" in retry.output
    assert runner.invoke(app, ["e911", "repush", "--min-age", "0"]).exit_code == 0
    locations = json.loads(runner.invoke(app, ["e911", "location", "list", *base, "--json"]).output)
    assert [loc["name"] for loc in locations] == ["HQ"]
    in_use = runner.invoke(app, ["e911", "address", "remove", address["id"], *base])
    assert in_use.exit_code == 1 and "address_in_use" in in_use.output
    assert runner.invoke(app, ["e911", "detach", number["id"], *base]).exit_code == 0
    back = runner.invoke(app, ["compliance", "e911", *base])
    assert back.exit_code == 1 and number["phone_number"] in back.output


def test_released_number_does_not_hold_its_address(client: TestClient, partner: Acct) -> None:
    number = a_number(client, partner)
    address = add_address(client, partner)
    assert attach(client, partner, number["id"], address["id"]).status_code == 200
    released = client.post(
        "/telephony/numbers/release", json={"number_id": number["id"]}, headers=partner.headers
    )
    assert released.status_code == 200, released.text
    assert client.get("/compliance/e911", headers=partner.headers).json()["data"]["compliant"]
    gone = client.delete(f"/e911/addresses/{address['id']}", headers=partner.headers)
    assert gone.status_code == 200, gone.text


def test_number_answers_carry_their_e911_state_in_one_query_for_the_list(
    client: TestClient, partner: Acct, tenant: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    provisioned, failed, bare = (a_number(client, partner) for _ in range(3))
    for number in (provisioned, failed):
        give_to(client, partner, number["id"], tenant)
    address = add_address(client, tenant)
    assert attach(client, tenant, provisioned["id"], address["id"]).status_code == 200
    carrier.inject_fault("fail")
    assert attach(client, tenant, failed["id"], address["id"]).status_code == 502

    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        listed = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert sum("number_e911" in s for s in statements) == 1
    by_id = {n["id"]: n["e911"] for n in listed}
    assert by_id[provisioned["id"]] == {
        "address_id": address["id"],
        "status": "provisioned",
        "reason": None,
    }
    assert by_id[failed["id"]]["status"] == "failed"
    assert "injected failure" in by_id[failed["id"]]["reason"]
    assert by_id[bare["id"]] is None
    one = client.get(f"/telephony/numbers/{provisioned['id']}", headers=tenant.headers).json()
    assert one["data"]["e911"]["status"] == "provisioned"


def test_a_partners_own_address_is_refused_on_a_number_serving_its_tenant(
    cli_env: None, client: TestClient, partner: Acct, tenant: Acct
) -> None:
    """911 help goes to the address on the number: a tenant's number must carry
    the tenant's address, never its partner's office (docs/e911.md)."""
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    office = add_address(client, partner)  # the partner's own
    refused = attach(client, partner, number["id"], office["id"])
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["field"] == "address_id"
    assert tenant.id in error["message"] and "tenant" in error["message"]
    on_cli = CliRunner().invoke(
        app, ["e911", "attach", number["id"], office["id"], "--key", partner.key]
    )
    assert on_cli.exit_code == 1 and "(address_id)" in on_cli.output
    assert client.get(
        f"/telephony/numbers/{number['id']}/e911", headers=partner.headers
    ).json() == {"data": None}

    theirs = add_address(client, partner, tenant_id=tenant.id)
    assert attach(client, partner, number["id"], theirs["id"]).status_code == 200
    # An unassigned number serves its owner: the partner's office is right there.
    spare = a_number(client, partner)
    assert attach(client, partner, spare["id"], office["id"]).status_code == 200
    assert client.get("/compliance/e911", headers=partner.headers).json()["data"]["compliant"]


def test_compliance_reports_a_number_given_to_another_tenant_with_the_old_address(
    client: TestClient, partner: Acct, tenant: Acct, make_tenant: Callable[..., Acct]
) -> None:
    number = a_number(client, partner)
    give_to(client, partner, number["id"], tenant)
    address = add_address(client, tenant)
    assert attach(client, tenant, number["id"], address["id"]).status_code == 200
    assert client.get("/compliance/e911", headers=partner.headers).json()["data"]["compliant"]

    clinic = make_tenant("Clinic", partner_id=partner.id)
    give_to(client, partner, number["id"], clinic)
    for viewer in (partner, clinic):
        report = client.get("/compliance/e911", headers=viewer.headers).json()["data"]
        assert report["compliant"] is False
        assert report["numbers_without_e911"] == [
            {
                "number_id": number["id"],
                "phone_number": number["phone_number"],
                "tenant_id": clinic.id,
                "owner_id": partner.id,
                "address_id": address["id"],
                "e911_status": "provisioned",
                "e911_reason": None,
                "e911_problem": "address_of_another_account",
            }
        ]
    assert client.get("/compliance/e911", headers=tenant.headers).json()["data"]["compliant"]

    clinics = add_address(client, clinic, street="9 Elm Boulevard", unit=None)
    assert attach(client, clinic, number["id"], clinics["id"]).status_code == 200
    assert client.get("/compliance/e911", headers=partner.headers).json()["data"]["compliant"]
