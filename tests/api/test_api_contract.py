"""The API contract (/openapi.json) holds: schemathesis drives every operation
with every check it has, authenticated through the documented security
schemes, and finds nothing; the key's headers can't be played against each
other; and the answers the router hands back as ready responses (whose models
FastAPI doesn't check) carry exactly their documented fields."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from pydantic import BaseModel
from schemathesis.engine import events

from conftest import Acct, search_numbers
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.e911.schemas import ProvisioningOut
from didhub.numbers.schemas import (
    AssignAnswer,
    AssignmentOut,
    NumberAnswer,
    PhoneNumberOut,
    PurchaseAnswer,
)
from didhub.outputs import Data
from didhub.routing.schemas import InboundRouteOut
from didhub.wallet.schemas import TopupOut

EDGE_TOKEN = "edge-token-for-the-contract-test"
# Per operation (no deadline: schemathesis's default). The full count on
# PostgreSQL, whose storage refuses what SQLite keeps (a NUL byte in text was a
# 500 there only); fewer on SQLite, where the same requests reach the same
# validation and a run costs minutes of CI per database.
ON_PG = os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql")
MAX_EXAMPLES = 25 if ON_PG else 8
STATEFUL_EXAMPLES = 10 if ON_PG else 3
# schemathesis's default, and 402 and 422: see below.
POSITIVE_ANSWERS = ["2xx", "3xx", "401", "402", "403", "404", "409", "422", "429", "5xx"]


@pytest.fixture
def app_with_edge(settings: Settings, db: Database, carrier: SandboxCarrier) -> Any:
    production = settings.model_copy(
        update={"edge_token": EDGE_TOKEN, "edge_trust_loopback": False}
    )
    return create_app(production, db, carrier)


def _failures(stream: Any) -> list[str]:
    found: list[str] = []
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(
                            f"{event.recorder.label} [{check.name}] {failure.title}: "
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: error {event.info.message}")
        elif isinstance(event, events.FatalError):
            found.append(f"fatal: {event.exception!r}")
    return found


def test_schemathesis_with_every_check_finds_nothing(
    app_with_edge: Any, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    make_tenant("Tenant", partner.id)
    config = schemathesis.Config.from_dict(
        {
            "seed": 13,
            # Sequences of calls (the schema has no links; schemathesis infers
            # them): fewer, as each is several requests.
            "phases": {"stateful": {"generation": {"max-examples": STATEFUL_EXAMPLES}}},
            "generation": {"max-examples": MAX_EXAMPLES},
            "checks": {
                "enabled": True,
                # Schema-valid is not valid: numbers must exist at the carrier, an
                # E911 address must be real, a webhook's host must resolve publicly,
                # a caller name has its own alphabet, amounts have ceilings and
                # cards decline. The schema can't say all that; a 422 (or 402)
                # naming the field is the documented answer there.
                "positive_data_acceptance": {
                    "expected-statuses": POSITIVE_ANSWERS,
                },
            },
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": partner.key},
                    "apiKeyAuth": {"api_key": partner.key},
                    "edgeToken": {"bearer": EDGE_TOKEN},
                }
            },
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_with_edge, config=config)
    found = _failures(schemathesis.engine.from_schema(schema).execute())
    assert not found, f"{len(found)} findings:\n\n" + "\n\n".join(sorted(set(found)))


def test_openapi_documents_the_key_every_error_and_every_answer(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"]["in"] == "header" and schemes["apiKeyAuth"]["name"] == "X-API-Key"
    assert schemes["edgeToken"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    public = {("get", "/health"), ("get", "/webhooks/event-types")}
    edge = {
        ("get", "/routing/inbound/{e164}"),
        ("post", "/routing/outbound"),
        ("post", "/routing/outbound/emergency-placed"),
        ("post", "/billing/usage"),
        ("put", "/outbound/rates"),  # the operator's rate deck: no account's key may
    }
    signed = {("post", "/carriers/telnyx/webhooks")}
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            names = {p["name"].lower() for p in op.get("parameters", [])}
            assert not names & {"authorization", "x-api-key"}, where
            security = [next(iter(s)) for s in op.get("security", [])]
            if (method, path) in edge:
                assert security == ["edgeToken"], where
            elif (method, path) in public | signed:
                assert security == [], where
            else:
                assert security == ["bearerAuth", "apiKeyAuth"], where
                assert "401" in op["responses"], where
            for status, answer in op["responses"].items():
                content = answer.get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if status == "200" and "application/json" not in content:
                    # A file (porting documents): its bytes, declared as binary.
                    schema = content.get("application/pdf", {}).get("schema")
                    assert schema == {"type": "string", "format": "binary"}, where
                assert schema, f"{where} {status} declares no body"
                if status >= "400":
                    assert schema == {"$ref": error_ref}, f"{where} {status}"
            assert "422" in op["responses"], where


def test_a_stray_x_api_key_never_overrides_authorization(client: TestClient, partner: Acct) -> None:
    bearer = {"Authorization": f"Bearer {partner.key}"}
    for headers in (bearer, {"X-API-Key": partner.key}, {**bearer, "X-API-Key": partner.key}):
        assert client.get("/tenants", headers=headers).status_code == 200, headers
    mixed = [
        {**bearer, "X-API-Key": "dh_junk"},
        {"Authorization": "Bearer dh_junk", "X-API-Key": partner.key},
    ]
    for headers in mixed:
        answer = client.get("/tenants", headers=headers)
        assert answer.status_code == 401, headers
        assert "different keys" in answer.json()["error"]["message"]


ADDRESS = {
    "street": "123 North Main Street",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94105",
    "caller_name": "Acme Dental",
}


def test_answers_the_routers_send_ready_made_carry_exactly_their_documented_fields(
    app_with_edge: Any, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    """FastAPI checks only the answers it serializes itself; these are built by
    the routers (202s, idempotent replays, the route cache's bytes)."""
    client = TestClient(app_with_edge)
    h = partner.headers
    tenant = make_tenant("T", partner.id)

    def shaped(model: type[BaseModel], answer: Any, *statuses: int) -> dict[str, Any]:
        assert answer.status_code in (statuses or (200,)), answer.text
        body: dict[str, Any] = answer.json()
        model.model_validate(body)  # extra fields refused: every field is documented
        return body

    one, two = (n["phone_number"] for n in search_numbers(client, partner, page_size=2))
    number = shaped(
        PurchaseAnswer,
        client.post("/telephony/numbers/purchase", json={"phone_number": one}, headers=h),
    )["data"]
    shaped(
        PurchaseAnswer,
        client.post("/telephony/numbers/purchase", json={"phone_numbers": [two]}, headers=h),
    )
    patch = {"cnam": "Acme Dental", "tenant_id": tenant.id}
    shaped(
        NumberAnswer,
        client.patch(f"/telephony/numbers/{number['id']}", json=patch, headers=h),
        200,
        202,
    )
    retried = client.post(f"/telephony/numbers/{number['id']}/cnam/retry", headers=h)
    if retried.status_code != 409:
        shaped(NumberAnswer, retried, 200, 202)
    agent = client.post("/agents", json={"tenant_id": tenant.id, "name": "Desk"}, headers=h)
    link = {"number_id": number["id"], "agent_id": agent.json()["data"]["id"]}
    shaped(
        AssignAnswer,
        client.post(
            "/telephony/numbers/assign", json={**link, "assignment_type": "outbound"}, headers=h
        ),
    )
    route = client.get(f"/routing/inbound/{one}", headers={"Authorization": f"Bearer {EDGE_TOKEN}"})
    shaped(Data[InboundRouteOut], route)
    unlink = {"number_id": number["id"], "assignment_type": "outbound"}
    shaped(Data[AssignmentOut], client.post("/telephony/numbers/unassign", json=unlink, headers=h))
    address = client.post("/e911/addresses", json={**ADDRESS, "tenant_id": tenant.id}, headers=h)
    address_id = address.json()["data"]["id"]
    if address.json()["data"]["status"] == "needs_confirmation":
        accepted = client.post(f"/e911/addresses/{address_id}/accept-suggestion", headers=h)
        assert accepted.status_code == 200, accepted.text
    attach = {"address_id": address_id}
    e911 = f"/telephony/numbers/{number['id']}/e911"
    shaped(Data[ProvisioningOut], client.put(e911, json=attach, headers=h), 200, 202)
    shaped(Data[ProvisioningOut], client.post(f"{e911}/retry", headers=h), 200, 202)
    assert (
        client.put("/billing/card", json={"card_token": "tok_visa"}, headers=h).status_code == 200
    )
    topup = client.post(
        "/billing/wallet/topup", json={"amount": "10.00"}, headers={**h, "Idempotency-Key": "t1"}
    )
    shaped(Data[TopupOut], topup)
    release = {"number_id": number["id"]}
    shaped(
        Data[PhoneNumberOut],
        client.post("/telephony/numbers/release", json=release, headers=h),
        200,
        202,
    )
