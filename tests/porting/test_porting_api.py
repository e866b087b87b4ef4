"""Porting through the API, on the sandbox carrier (its timeline at speed 0):
an exception corrected and completed, a cancel, a refusal, a port-out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, ledger_ok
from didhub import clock
from didhub.carriers.models import SandboxPortOrder
from didhub.carriers.sandbox import SandboxCarrier
from didhub.carriers.sandbox_porting import PIN_MISMATCH
from didhub.cli import app as cli
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.porting import service as porting
from didhub.wallet import ledger
from portflow import (  # noqa: F401  (documents_in_tmp, s3_server, store_kind: fixtures)
    BELL,
    NOT_PORTABLE,
    WIRELESS,
    documents_in_tmp,
    event_types,
    foc_date,
    ready_order,
    refresh,
    s3_server,
    store_kind,
)


def _balance(db: Database, settings: Settings, account_id: str) -> Decimal:
    with db.read_session() as session:
        return ledger.wallet_balance(session, account_id, settings.currency)


@pytest.mark.usefixtures("store_kind")
def test_exception_corrected_then_ported_numbers_active_billed_and_routed(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Acme Dental", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL, WIRELESS], pin="0000")
    assert order["status"] == "draft"
    assert order["account_number"] == "…8899"  # never shown whole
    loa = client.get(f"/porting/orders/{order['id']}/loa.pdf", headers=partner.headers)
    assert loa.status_code == 200 and loa.content.startswith(b"%PDF")

    chosen = foc_date(client, partner, order["id"])
    before = _balance(db, settings, partner.id)
    submitted = client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    assert submitted.status_code == 200, submitted.text
    data = submitted.json()["data"]
    assert data["status"] == "submitted"
    # Split by losing carrier, each tracked.
    assert sorted(c["losing_carrier"] for c in data["carrier_orders"]) == [
        "Sandbox Bell",
        "Sandbox Wireless",
    ]

    # The losing carrier rejects the PIN: in its words.
    data = refresh(client, partner, order["id"])
    assert data["status"] == "exception"
    assert data["reason"] == PIN_MISMATCH
    assert "Correct" in data["next_step"]
    assert "port.exception" in event_types(client, partner)

    fixed = client.patch(
        f"/porting/orders/{order['id']}", json={"pin": "1234"}, headers=partner.headers
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["data"]["status"] == "corrected"
    again = client.post(f"/porting/orders/{order['id']}/resubmit", headers=partner.headers)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["status"] == "resubmitted"

    # Before the FOC date: confirmed, nothing in the inventory, nothing billed.
    data = refresh(client, partner, order["id"])
    assert data["status"] == "foc_confirmed" and data["foc_date"] == chosen
    assert client.get(f"/routing/inbound/{BELL}").status_code == 404
    assert _balance(db, settings, partner.id) == before

    # The FOC date comes: ported.
    port_day = date.fromisoformat(chosen)
    clock.set_clock(lambda: datetime(port_day.year, port_day.month, port_day.day, 17, tzinfo=UTC))
    data = refresh(client, partner, order["id"])
    assert data["status"] == "ported" and data["ported_on"] == chosen
    kinds = event_types(client, partner)
    assert {"port.submitted", "port.foc_confirmed", "port.completed", "number.ported_in"} <= set(
        kinds
    )

    listed = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    ours = {n["phone_number"]: n for n in listed}
    for e164 in (BELL, WIRELESS):
        number = ours[e164]
        assert number["status"] == "active"
        assert number["tenant_id"] == tenant.id
        assert number["purchased_at"].startswith(chosen)
        renews = numbers.add_months(port_day, 1).isoformat()
        assert number["renews_on"] == renews
    monthly = settings.prices["local"].monthly
    assert _balance(db, settings, partner.id) == before - 2 * monthly
    assert ledger_ok(db)

    route = client.get(f"/routing/inbound/{BELL}")
    assert route.status_code == 200, route.text
    assert route.json()["data"]["sip_uri"] == "sip:desk@192.0.2.10"
    e911 = client.get(f"/telephony/numbers/{ours[BELL]['id']}/e911", headers=partner.headers)
    assert e911.status_code == 200 and e911.json()["data"]["e911_status"] == "provisioned"


def test_cancelled_port_bills_nothing(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Bakery", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    before = _balance(db, settings, partner.id)
    chosen = foc_date(client, partner, order["id"])
    client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    cancelled = client.post(f"/porting/orders/{order['id']}/cancel", headers=partner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    # Even past the FOC date nothing arrives.
    clock.set_clock(lambda: datetime.now(UTC) + timedelta(days=30))
    assert refresh(client, partner, order["id"])["status"] == "cancelled"
    assert client.get(f"/routing/inbound/{BELL}").status_code == 404
    assert client.get("/telephony/numbers", headers=partner.headers).json()["data"] == []
    assert _balance(db, settings, partner.id) == before
    assert "port.cancelled" in event_types(client, partner)
    again = client.post(f"/porting/orders/{order['id']}/cancel", headers=partner.headers)
    assert again.status_code == 409


def test_not_portable_number_refused_with_its_reason(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Florist", partner_id=partner.id)
    check = client.post(
        "/porting/portability",
        json={"phone_numbers": [BELL, NOT_PORTABLE]},
        headers=partner.headers,
    )
    assert check.status_code == 200, check.text
    results = {r["phone_number"]: r for r in check.json()["data"]}
    assert results[BELL]["portable"] is True
    assert results[NOT_PORTABLE] == {
        "phone_number": NOT_PORTABLE,
        "portable": False,
        "fast_portable": False,
        "reason": "no_coverage",
        "losing_carrier": None,
    }
    refused = client.post(
        "/porting/orders",
        json={
            "tenant_id": tenant.id,
            "phone_numbers": [BELL, NOT_PORTABLE],
            "entity_name": "Florist",
            "authorized_person": "Sam",
            "account_number": "1",
            "billing_phone_number": BELL,
        },
        headers=partner.headers,
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "phone_numbers[1]"
    assert "no_coverage" in error["message"]
    assert client.get("/porting/orders", headers=partner.headers).json()["data"] == []


def test_submission_needs_e911_and_documents_and_an_allowed_date(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Gym", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    cleared = client.patch(
        f"/porting/orders/{order['id']}", json={"e911_address_id": None}, headers=partner.headers
    )
    assert cleared.status_code == 200, cleared.text
    chosen = foc_date(client, partner, order["id"])
    no_e911 = client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    assert no_e911.status_code == 422
    assert no_e911.json()["error"]["field"] == "e911_address_id"
    assert (
        client.get(f"/porting/orders/{order['id']}", headers=partner.headers).json()["data"][
            "status"
        ]
        == "draft"
    )


@pytest.mark.usefixtures("store_kind")
def test_documents_only_for_the_owner_and_its_partner(
    client: TestClient,
    partner: Acct,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    doc = order_docs = client.get(f"/porting/orders/{order['id']}", headers=partner.headers)
    order_docs = doc.json()["data"]["documents"]
    url = f"/porting/orders/{order['id']}/documents/{order_docs[0]['id']}"
    mine = client.get(url, headers=partner.headers)
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF")
    assert client.get(url, headers=tenant.headers).status_code == 200
    other = make_partner("Other Voice")
    assert client.get(url, headers=other.headers).status_code == 404
    assert client.get(f"/porting/orders/{order['id']}", headers=other.headers).status_code == 404
    stranger = make_tenant("Stranger", partner_id=other.id)
    assert client.get(url, headers=stranger.headers).status_code == 404


def test_port_out_noticed_by_reconcile_stops_billing_and_tells_the_owner(
    client: TestClient,
    db: Database,
    settings: Settings,
    carrier: SandboxCarrier,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Cafe", partner_id=partner.id)
    found = client.post(
        "/telephony/numbers/search",
        json={"area_code": "501", "page_size": 1},
        headers=partner.headers,
    ).json()["data"]
    bought = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [found[0]["phone_number"]]},
        headers=partner.headers,
    ).json()["data"][0]
    e164 = bought["phone_number"]
    agent = client.post(
        "/agents",
        json={"tenant_id": tenant.id, "name": "Bar", "sip_uri": "sip:bar@192.0.2.20"},
        headers=partner.headers,
    ).json()["data"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": bought["id"], "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert client.get(f"/routing/inbound/{e164}").status_code == 200

    carrier.porting.port_away(e164, on=clock.now().date())
    report = numbers.reconcile(db, carrier, settings, timedelta(0))
    assert report.ported_out == [e164]
    assert report.missing_at_carrier == []  # ported out, not "missing"

    shown = client.get(f"/telephony/numbers/{bought['id']}", headers=partner.headers)
    assert shown.json()["data"]["status"] == "ported_out"
    assert shown.json()["data"]["renews_on"] is None
    assert client.get(f"/routing/inbound/{e164}").status_code == 404
    assert "number.ported_out" in event_types(client, partner)
    # Billing stopped: a renewal run a month on charges nothing for it.
    balance = _balance(db, settings, partner.id)
    from didhub.billing.service import renewals

    clock.set_clock(lambda: datetime.now(UTC) + timedelta(days=40))
    renewals.run(db, carrier, None, settings)
    assert _balance(db, settings, partner.id) == balance
    # Reported again: nothing changes twice.
    assert numbers.reconcile(db, carrier, settings, timedelta(0)).ported_out == []


def test_twilio_and_bandwidth_refuse_with_a_reason() -> None:
    from didhub.carriers.bandwidth import BandwidthCarrier
    from didhub.carriers.base import CarrierFailure, porting_of
    from didhub.carriers.twilio import TwilioCarrier

    for cls in (TwilioCarrier, BandwidthCarrier):
        try:
            porting_of(cls.__new__(cls))
        except CarrierFailure as exc:
            assert "not supported yet" in str(exc) and "import" in str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"{cls.__name__} should refuse porting")


def test_a_refresh_the_carrier_cannot_answer_says_so_and_changes_nothing(
    client: TestClient,
    db: Database,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    cli_env: None,
) -> None:
    """The carrier no longer knows one of the order's carrier orders: a person's
    refresh (API, CLI) is a 502 naming it, not the old status shown as if
    fresh; the periodic job just asks again later."""
    tenant = make_tenant("Acme Dental", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    chosen = foc_date(client, partner, order["id"])
    submitted = client.post(
        f"/porting/orders/{order['id']}/submit", json={"foc_date": chosen}, headers=partner.headers
    )
    assert submitted.status_code == 200, submitted.text
    lost = submitted.json()["data"]["carrier_orders"][0]["carrier_order_id"]
    with db.session() as session:
        session.delete(session.get_one(SandboxPortOrder, lost))

    answer = client.post(f"/porting/orders/{order['id']}/refresh", headers=partner.headers)
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "carrier_error" and lost in error["message"]
    shown = CliRunner().invoke(cli, ["port", "refresh", order["id"], "--key", partner.key])
    assert shown.exit_code == 1 and lost in shown.output
    after = client.get(f"/porting/orders/{order['id']}", headers=partner.headers).json()["data"]
    assert after["status"] == "submitted"
    # The sweep doesn't fail over it.
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    assert porting.sync_open(ctx.db, ctx.carrier, ctx.settings).checked >= 1
