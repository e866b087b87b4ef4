"""CNAM (caller name) per number and inherited from tenant and partner
defaults, its carrier push (failing, unknown, retried, re-pushed by the
sweep), and account settings with the unassigned-number behaviour that
``/routing/inbound`` answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, search_numbers
from didhub import clock
from didhub.carriers.sandbox import SandboxCarrier
from didhub.db import Database
from didhub.jobs.registry import run_round
from didhub.numbers import cnam
from didhub.numbers.models import NumberEvent
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.runtime import Runtime


def buy_one(client: TestClient, acct: Acct, area_code: str = "501") -> tuple[str, str]:
    number = search_numbers(client, acct, area_code=area_code, page_size=1)[0]["phone_number"]
    return buy(client, acct, number)["data"][0]["id"], number


def patch(client: TestClient, acct: Acct, number_id: str, **body: Any) -> Any:
    return client.patch(f"/telephony/numbers/{number_id}", json=body, headers=acct.headers)


def get(client: TestClient, acct: Acct, number_id: str) -> dict[str, Any]:
    response = client.get(f"/telephony/numbers/{number_id}", headers=acct.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def kinds(db: Database, number_id: str) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(NumberEvent.kind)
                .where(NumberEvent.number_id == number_id, NumberEvent.kind.like("cnam.%"))
                .order_by(NumberEvent.id)
            )
        )


# ------------------------------------------------------------------ a number's own CNAM


def test_set_a_numbers_cnam_lists_it_at_the_carrier_and_warns_about_caching(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    number_id, e164 = buy_one(client, partner)
    fresh = get(client, partner, number_id)["cnam"]
    assert fresh == {
        "name": None,
        "source": "none",
        "status": None,
        "reason": None,
        "updated_at": None,
    }

    response = patch(client, partner, number_id, cnam="  Acme Dental ")
    assert response.status_code == 200, response.text
    shown = response.json()["data"]["cnam"]
    assert shown["name"] == "Acme Dental" and shown["source"] == "number"
    assert shown["status"] == "active" and shown["reason"] is None
    assert "24 hours" in response.json()["meta"]["notice"]
    assert carrier.cnam_of(e164) == "Acme Dental"
    assert kinds(db, number_id) == ["cnam.pending", "cnam.active"]
    # The webhook catalogue names it number.cnam.updated.
    types = [e["type"] for e in client.get("/events", headers=partner.headers).json()["data"]]
    assert "number.cnam.updated" in types

    # Same name again: nothing to push.
    assert patch(client, partner, number_id, cnam="Acme Dental").status_code == 200
    assert kinds(db, number_id) == ["cnam.pending", "cnam.active"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("A" * 16, "at most 15"),
        ("Café Bar", "'é'"),
        ("Acme <1>", "'<'"),
        ("   ", "must not be empty"),
    ],
)
def test_invalid_cnam_is_422_naming_the_field(
    client: TestClient, partner: Acct, value: str, fragment: str
) -> None:
    number_id, _ = buy_one(client, partner)
    response = patch(client, partner, number_id, cnam=value)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "cnam" and fragment in error["message"]
    bad_default = client.patch("/settings", json={"default_cnam": value}, headers=partner.headers)
    assert bad_default.status_code == 422
    assert bad_default.json()["error"]["field"] == "default_cnam"


def test_all_allowed_characters_pass(client: TestClient, partner: Acct) -> None:
    number_id, _ = buy_one(client, partner)
    response = patch(client, partner, number_id, cnam="O'Hara, B.&Co-1")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["cnam"]["status"] == "active"


def test_patch_needs_a_field_and_another_accounts_number_is_404(
    client: TestClient, partner: Acct, make_partner: Callable[..., Acct]
) -> None:
    number_id, _ = buy_one(client, partner)
    assert patch(client, partner, number_id).status_code == 422
    other = make_partner("Other")
    assert patch(client, other, number_id, cnam="Nope").status_code == 404
    retry = client.post(f"/telephony/numbers/{number_id}/cnam/retry", headers=other.headers)
    assert retry.status_code == 404


# ------------------------------------------------------------------ carrier failures


def test_a_refused_push_shows_failed_with_the_reason_and_a_retry_recovers(
    client: TestClient, partner: Acct, carrier: SandboxCarrier, db: Database
) -> None:
    number_id, e164 = buy_one(client, partner)
    carrier.inject_fault("fail")
    response = patch(client, partner, number_id, cnam="Acme")
    assert response.status_code == 200, response.text
    shown = response.json()["data"]["cnam"]
    assert shown["status"] == "failed" and "injected failure" in shown["reason"]
    assert carrier.cnam_of(e164) is None

    retried = client.post(f"/telephony/numbers/{number_id}/cnam/retry", headers=partner.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["cnam"]["status"] == "active"
    assert retried.json()["data"]["cnam"]["reason"] is None
    assert carrier.cnam_of(e164) == "Acme"
    assert kinds(db, number_id) == ["cnam.pending", "cnam.failed", "cnam.pending", "cnam.active"]

    # Nothing left to retry.
    again = client.post(f"/telephony/numbers/{number_id}/cnam/retry", headers=partner.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "cnam_not_retryable"


@pytest.mark.parametrize("fault", ["timeout", "unknown"])
def test_an_unknown_outcome_stays_pending_until_the_sweep_pushes_again(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Any,
    fault: str,
) -> None:
    number_id, e164 = buy_one(client, partner)
    carrier.inject_fault(fault)
    response = patch(client, partner, number_id, cnam="Acme")
    assert response.status_code == 202, response.text
    assert response.json()["data"]["cnam"]["status"] == "pending"

    gateway = SandboxGateway(db)
    run_round(Runtime(db, carrier, gateway, settings))  # too young: may still be in flight
    assert get(client, partner, number_id)["cnam"]["status"] == "pending"

    later = clock.now() + timedelta(minutes=2)
    clock.set_clock(lambda: later)
    run_round(Runtime(db, carrier, gateway, settings))
    shown = get(client, partner, number_id)["cnam"]
    assert shown["status"] == "active" and shown["name"] == "Acme"
    assert carrier.cnam_of(e164) == "Acme"


def test_a_newer_change_is_not_overwritten_by_an_older_answer(
    client: TestClient, partner: Acct, carrier: SandboxCarrier
) -> None:
    number_id, e164 = buy_one(client, partner)
    carrier.inject_fault("timeout")
    assert patch(client, partner, number_id, cnam="Old Name").status_code == 202
    assert patch(client, partner, number_id, cnam="New Name").status_code == 200
    shown = get(client, partner, number_id)["cnam"]
    assert shown["name"] == "New Name" and shown["status"] == "active"
    assert carrier.cnam_of(e164) == "New Name"


# ------------------------------------------------------------------ inheritance


def test_numbers_inherit_tenant_then_partner_defaults_and_follow_changes(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    carrier: SandboxCarrier,
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    inheriting, e1 = buy_one(client, partner)
    own, e2 = buy_one(client, partner, "415")
    for number_id in (inheriting, own):
        assert patch(client, partner, number_id, tenant_id=tenant.id).status_code == 200
    assert patch(client, partner, own, cnam="Front Desk").status_code == 200

    # The partner's default reaches its tenant's numbers (the tenant has none).
    response = client.patch(
        "/settings", json={"default_cnam": "Acme Voice"}, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    assert "24 hours" in response.json()["meta"]["notice"]
    shown = get(client, partner, inheriting)["cnam"]
    assert (shown["name"], shown["source"], shown["status"]) == ("Acme Voice", "partner", "active")
    assert carrier.cnam_of(e1) == "Acme Voice"

    # The tenant's default wins over the partner's.
    url = f"/tenants/{tenant.id}/settings"
    assert (
        client.patch(url, json={"default_cnam": "Clinic"}, headers=partner.headers).status_code
        == 200
    )
    shown = get(client, partner, inheriting)["cnam"]
    assert (shown["name"], shown["source"], shown["status"]) == ("Clinic", "tenant", "active")
    assert carrier.cnam_of(e1) == "Clinic"
    assert carrier.cnam_of(e2) == "Front Desk"  # its own name stays
    assert get(client, partner, own)["cnam"]["source"] == "number"

    # The tenant changes its default itself: every inheriting number follows.
    response = client.patch(
        "/settings", json={"default_cnam": "Clinic West"}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert carrier.cnam_of(e1) == "Clinic West"

    # Back to inheriting: the number takes the tenant's default.
    assert patch(client, partner, own, cnam=None).json()["data"]["cnam"]["source"] == "tenant"
    assert carrier.cnam_of(e2) == "Clinic West"

    # The tenant clears its default: the partner's applies again.
    assert (
        client.patch(url, json={"default_cnam": None}, headers=partner.headers).status_code == 200
    )
    for number_id, e164 in ((inheriting, e1), (own, e2)):
        assert get(client, partner, number_id)["cnam"]["source"] == "partner"
        assert carrier.cnam_of(e164) == "Acme Voice"

    # Unassigning a number from the tenant: the partner's name still (no push needed).
    assert (
        patch(client, partner, own, tenant_id=None).json()["data"]["cnam"]["name"] == "Acme Voice"
    )

    # The partner clears its default: the listing is removed.
    client.patch("/settings", json={"default_cnam": None}, headers=partner.headers)
    shown = get(client, partner, inheriting)["cnam"]
    assert (shown["name"], shown["source"], shown["status"]) == (None, "none", "active")
    assert carrier.cnam_of(e1) is None


def test_a_default_change_with_a_failing_carrier_marks_the_number_failed_and_retry_fixes_it(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    carrier: SandboxCarrier,
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    number_id, e164 = buy_one(client, partner)
    patch(client, partner, number_id, tenant_id=tenant.id)
    carrier.inject_fault("fail")
    url = f"/tenants/{tenant.id}/settings"
    response = client.patch(url, json={"default_cnam": "Clinic"}, headers=partner.headers)
    assert response.status_code == 200  # the default is saved either way
    assert response.json()["data"]["default_cnam"] == "Clinic"
    shown = get(client, partner, number_id)["cnam"]
    assert shown["status"] == "failed" and shown["source"] == "tenant"
    retried = client.post(f"/telephony/numbers/{number_id}/cnam/retry", headers=tenant.headers)
    assert retried.status_code == 200 and retried.json()["data"]["cnam"]["status"] == "active"
    assert carrier.cnam_of(e164) == "Clinic"


def test_a_number_bought_or_assigned_later_takes_the_default(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    carrier: SandboxCarrier,
) -> None:
    client.patch("/settings", json={"default_cnam": "Acme Voice"}, headers=partner.headers)
    number_id, e164 = buy_one(client, partner)
    assert get(client, partner, number_id)["cnam"]["status"] == "active"
    assert carrier.cnam_of(e164) == "Acme Voice"

    tenant = make_tenant("Clinic", partner.id)
    client.patch(
        f"/tenants/{tenant.id}/settings", json={"default_cnam": "Clinic"}, headers=partner.headers
    )
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Desk"}, headers=partner.headers
    ).json()["data"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assigned.status_code == 200
    # Given to the agent's tenant, it takes the tenant's name, listed at once
    # (as a tenant assignment from any edge does).
    shown = get(client, partner, number_id)["cnam"]
    assert (shown["name"], shown["status"]) == ("Clinic", "active")
    assert carrier.cnam_of(e164) == "Clinic"


def test_a_purchase_answers_each_number_as_reading_it_back_shows_it(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    """A purchase's answer is built from what its settlement knows, without
    reading the numbers back, when none was listed with a caller name; with a
    default name to list, it reads them after the carrier's answer. Either
    way it shows what ``GET`` shows: tenant, caller name, agents, E911."""
    tenant = make_tenant("Clinic", partner.id, balance="20.00")

    def bought_and_read(acct: Acct, area_code: str) -> tuple[dict[str, Any], dict[str, Any]]:
        number = search_numbers(client, acct, area_code=area_code, page_size=1)[0]
        answer = buy(client, acct, number["phone_number"])["data"][0]
        return answer, get(client, acct, answer["id"])

    for acct, area_code in ((partner, "501"), (tenant, "502")):  # no default name yet
        answer, read = bought_and_read(acct, area_code)
        assert answer == read
        assert answer["cnam"]["source"] == "none" and answer["e911"] is None
    assert read["tenant_name"] == "Clinic"

    listed = client.patch("/settings", json={"default_cnam": "Acme Voice"}, headers=partner.headers)
    assert listed.status_code == 200, listed.text
    for acct, area_code in ((partner, "503"), (tenant, "504")):  # the partner's, inherited
        answer, read = bought_and_read(acct, area_code)
        assert answer == read
        assert (answer["cnam"]["name"], answer["cnam"]["status"]) == ("Acme Voice", "active")


# ------------------------------------------------------------------ settings


def test_settings_show_own_and_effective_values(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    own = client.get("/settings", headers=tenant.headers).json()["data"]
    assert own["account_id"] == tenant.id and own["default_cnam"] is None
    assert own["unassigned"] is None
    assert own["effective"]["unassigned"] == {
        "action": "announcement",
        "text": "This number isn't configured",
        "source": "platform",
    }
    assert own["effective"]["default_cnam"] == {"name": None, "source": "none"}

    client.patch(
        "/settings",
        json={"default_cnam": "Acme", "unassigned": {"action": "reject"}},
        headers=partner.headers,
    )
    seen = client.get(f"/tenants/{tenant.id}/settings", headers=partner.headers).json()["data"]
    assert seen["effective"]["default_cnam"] == {"name": "Acme", "source": "partner"}
    assert seen["effective"]["unassigned"] == {"action": "reject", "source": "partner"}

    # A partial PATCH keeps the other field.
    client.patch(
        "/settings",
        json={"unassigned": {"action": "voicemail", "mailbox": "frontdesk"}},
        headers=tenant.headers,
    )
    mine = client.get("/settings", headers=tenant.headers).json()["data"]
    assert mine["unassigned"] == {"action": "voicemail", "mailbox": "frontdesk"}
    assert mine["effective"]["default_cnam"]["source"] == "partner"


def test_settings_of_another_account_are_404(
    client: TestClient,
    partner: Acct,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    sibling = make_tenant("Other", partner.id)
    other = make_partner("Other")
    url = f"/tenants/{tenant.id}/settings"
    assert client.get(url, headers=other.headers).status_code == 404
    body = {"default_cnam": "X"}
    assert client.patch(url, json=body, headers=other.headers).status_code == 404
    assert client.get(url, headers=sibling.headers).status_code == 404
    assert client.patch("/settings", json={}, headers=partner.headers).status_code == 422
    # A partner is not a tenant.
    assert client.get(f"/tenants/{partner.id}/settings", headers=partner.headers).status_code == 404


@pytest.mark.parametrize(
    ("unassigned", "field"),
    [
        ({"action": "dance"}, "unassigned.action"),
        ({"action": "announcement"}, "unassigned.text"),
        ({"action": "voicemail"}, "unassigned.mailbox"),
        ({"action": "voicemail", "mailbox": "a b"}, "unassigned.mailbox"),
        ({"action": "forward"}, "unassigned.destination"),
        ({"action": "forward", "destination": "12"}, "unassigned.destination"),
        ({"action": "forward", "destination": "sip:"}, "unassigned.destination"),
        ({"action": "reject", "text": "hi"}, "unassigned.text"),
    ],
)
def test_invalid_unassigned_behaviour_is_422(
    client: TestClient, partner: Acct, unassigned: dict[str, str], field: str
) -> None:
    response = client.patch("/settings", json={"unassigned": unassigned}, headers=partner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


# ------------------------------------------------------------------ routing


def test_unassigned_numbers_route_by_tenant_then_partner_then_platform(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    number_id, e164 = buy_one(client, partner)
    patch(client, partner, number_id, tenant_id=tenant.id)

    def route() -> dict[str, Any]:
        response = client.get(f"/routing/inbound/{e164}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    first = route()
    assert first["action"] == "announcement" and first["source"] == "platform"
    assert first["text"] == "This number isn't configured"

    forward = {"action": "forward", "destination": "+1 (415) 555-2671"}
    client.patch("/settings", json={"unassigned": forward}, headers=partner.headers)
    got = route()
    assert (got["action"], got["destination"], got["source"]) == (
        "forward",
        "+14155552671",
        "partner",
    )

    sip = {"action": "forward", "destination": "sip:frontdesk@pbx.example.com"}
    client.patch(
        f"/tenants/{tenant.id}/settings", json={"unassigned": sip}, headers=partner.headers
    )
    got = route()
    assert (got["destination"], got["source"]) == ("sip:frontdesk@pbx.example.com", "tenant")

    voicemail = {"action": "voicemail", "mailbox": "1001"}
    client.patch("/settings", json={"unassigned": voicemail}, headers=tenant.headers)
    got = route()
    assert (got["action"], got["mailbox"]) == ("voicemail", "1001")

    text = {"action": "announcement", "text": "Clinic is closed"}
    client.patch("/settings", json={"unassigned": text}, headers=tenant.headers)
    assert route()["text"] == "Clinic is closed"

    client.patch("/settings", json={"unassigned": {"action": "reject"}}, headers=tenant.headers)
    assert route()["action"] == "reject"

    # Cleared: back to the partner's forward.
    client.patch("/settings", json={"unassigned": None}, headers=tenant.headers)
    assert route()["action"] == "forward" and route()["source"] == "partner"

    # An agent still wins over every unassigned behaviour.
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Desk"}, headers=partner.headers
    ).json()["data"]
    client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert route()["action"] == "agent"


def test_numbers_beyond_the_inline_pushes_are_listed_by_the_sweep(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cnam, "INLINE_PUSHES", 1)
    first, e1 = buy_one(client, partner)
    second, e2 = buy_one(client, partner, "415")
    client.patch("/settings", json={"default_cnam": "Acme Voice"}, headers=partner.headers)
    statuses = {get(client, partner, n)["cnam"]["status"] for n in (first, second)}
    assert statuses == {"active", "pending"}

    later = clock.now() + timedelta(minutes=2)
    clock.set_clock(lambda: later)
    run_round(Runtime(db, carrier, SandboxGateway(db), settings))
    assert {get(client, partner, n)["cnam"]["status"] for n in (first, second)} == {"active"}
    assert carrier.cnam_of(e1) == carrier.cnam_of(e2) == "Acme Voice"
