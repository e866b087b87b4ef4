"""Failure paths found in review: each would have shipped without these."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import DidhubError
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger


def test_a_refused_release_keeps_the_numbers_routing(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
) -> None:
    tenant = make_tenant("T", partner.id)
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Desk"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code="415", page_size=1)[0]["phone_number"]
    number_id = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    ).json()["data"]["id"]
    assigned = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assigned.json()["data"]["agent_name"] == "Desk"
    for fault in ("fail", "timeout"):
        carrier.inject_fault(fault)
        client.post(
            "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
        )
        if fault == "timeout":  # left releasing; a refused retry by reconcile puts it back
            carrier.inject_fault("fail")
            numbers.reconcile(db, carrier, settings, min_age=timedelta(0))
        got = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
        assert got["status"] == "active"
        assert got["assignments"]["inbound"]["agent_id"] == agent["id"]
        route = client.get(f"/routing/inbound/{number}").json()["data"]
        assert route["action"] == "agent" and route["agent_id"] == agent["id"]


def test_buyers_of_the_same_pair_in_opposite_orders_never_deadlock(
    client: TestClient,
    make_partner: Callable[..., Acct],
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
) -> None:
    buyers = [make_partner(f"b{i}") for i in range(8)]
    rounds = 15
    found = search_numbers(client, buyers[0], area_code="512", page_size=2 * rounds)
    pairs = [
        [found[2 * r]["phone_number"], found[2 * r + 1]["phone_number"]] for r in range(rounds)
    ]
    lock = threading.Lock()
    for pair in pairs:
        barrier = threading.Barrier(len(buyers))
        results: list[str] = []

        def buy(
            buyer: Acct,
            order: Sequence[str],
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            barrier.wait()
            try:
                numbers.purchase(db, carrier, settings, Scope(buyer.id, PARTNER), order)
                outcome = "bought"
            except DidhubError as exc:
                outcome = exc.code
            except Exception as exc:  # noqa: BLE001 - a deadlock would land here
                outcome = f"unexpected {type(exc).__name__}: {exc}"
            with lock:
                results.append(outcome)

        threads = [
            threading.Thread(target=buy, args=(b, pair if i % 2 else pair[::-1]))
            for i, b in enumerate(buyers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert Counter(results) == Counter({"bought": 1, "number_unavailable": len(buyers) - 1})
        with db.session() as session:
            owners = session.scalars(
                select(PhoneNumber.owner_id).where(PhoneNumber.e164.in_(pair))
            ).all()
            assert len(owners) == 2 and len(set(owners)) == 1
    assert ledger_ok(db)


def test_a_number_failed_by_reconcile_while_the_carrier_filled_it_is_given_back(
    client: TestClient,
    partner: Acct,
    carrier: SandboxCarrier,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = search_numbers(client, partner, area_code="617", page_size=1)[0]["phone_number"]
    real_order = carrier.order

    def slow_order(order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        # A reconcile runs while the carrier is still working on the order...
        numbers.reconcile(db, carrier, settings, min_age=timedelta(0))
        return real_order(order_id, phone_numbers)  # ...then the carrier fills it.

    monkeypatch.setattr(carrier, "order", slow_order)
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    )
    assert response.status_code == 502
    assert "refunded" in response.json()["error"]["message"]
    assert number in response.json()["error"]["message"]
    with db.session() as session:
        assert ledger.wallet_balance(session, partner.id, "USD") == Decimal("100.00")
    # Nobody pays for it, so it went back to the carrier (where it ages).
    assert not carrier.holds(number)
    assert ledger_ok(db)


def test_unexpected_errors_answer_the_error_shape_and_free_the_key_after_the_lease(
    settings: Settings,
    db: Database,
    carrier: SandboxCarrier,
    partner: Acct,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = TestClient(create_app(settings, db, carrier), raise_server_exceptions=False)
    number = search_numbers(client, partner, area_code="303", page_size=1)[0]["phone_number"]

    def broken(order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        raise RuntimeError("carrier adapter bug")

    monkeypatch.setattr(carrier, "order", broken)
    headers = {**partner.headers, "Idempotency-Key": "k1"}
    body = {"phone_number": number}
    first = client.post("/telephony/numbers/purchase", json=body, headers=headers)
    assert first.status_code == 500
    assert first.json()["error"]["code"] == "internal_error"
    busy = client.post("/telephony/numbers/purchase", json=body, headers=headers)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_in_progress"
    monkeypatch.undo()
    later = clock.now() + timedelta(minutes=6)
    clock.set_clock(lambda: later)
    # The lease is over; the retry runs, and the live-number guard refuses a second sale.
    retry = client.post("/telephony/numbers/purchase", json=body, headers=headers)
    assert retry.status_code == 409 and retry.json()["error"]["code"] == "number_unavailable"
    # Reconcile settles the order the crash left open: refunded, exact.
    numbers.reconcile(db, carrier, settings, min_age=timedelta(0))
    with db.session() as session:
        assert ledger.wallet_balance(session, partner.id, "USD") == Decimal("100.00")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/telephony/numbers/quote", {"phone_numbers": ["+33142685300"]}, "phone_numbers"),
        ("/telephony/numbers/purchase", {"phone_number": "+15012029813;ext=5"}, "phone_number"),
        ("/telephony/numbers/purchase", {"phone_number": "+15012029813\u0000"}, "phone_number"),
        ("/telephony/numbers/search", {"area_code": "\u0665\u0660\u0661"}, "area_code"),
        ("/telephony/numbers/search", {"administrative_area": "\u00c4R"}, "administrative_area"),
        ("/telephony/numbers/search", {"locality": "x" * 101}, "locality"),
        ("/telephony/numbers/search", {"page": 101}, "page"),
    ],
)
def test_more_bad_input_is_422_naming_the_field(
    client: TestClient, partner: Acct, path: str, body: dict[str, object], field: str
) -> None:
    response = client.post(path, json=body, headers=partner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_inventory_text_search_treats_wildcards_as_text(client: TestClient, partner: Acct) -> None:
    number = search_numbers(client, partner, area_code="720", page_size=1)[0]["phone_number"]
    client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    )
    for q in ("%", "_", "\\"):
        found = client.get("/telephony/numbers", params={"q": q}, headers=partner.headers)
        assert found.json()["data"] == [], q


def test_routing_from_another_host_needs_the_edge_token(
    settings: Settings, db: Database, carrier: SandboxCarrier
) -> None:
    remote = TestClient(create_app(settings, db, carrier), client=("203.0.113.9", 5060))
    response = remote.get("/routing/inbound/+14155552671")
    assert response.status_code == 401
    secured = settings.model_copy(update={"edge_token": "s3cret"})
    edge = TestClient(create_app(secured, db, carrier), client=("203.0.113.9", 5060))
    assert edge.get("/routing/inbound/+14155552671").status_code == 401
    ok = edge.get("/routing/inbound/+14155552671", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 404  # authorised; just not a number we hold
