"""Events and webhooks, delivered to a real HTTP server on 127.0.0.1: signed
payloads, retries with backoff on a fake clock, giving up, the events of a real
purchase, assignment, release, renewal run and declined card, subscriptions,
tenancy, and the CLI."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.billing.service import renewals
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app as cli_app
from didhub.config import Settings, get_settings
from didhub.db import Database
from didhub.numbers import lifecycle
from didhub.numbers.models import PhoneNumber
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.webhooks import catalogue, delivery
from didhub.webhooks.delivery import RETRY_SCHEDULE, DeliveryReport, backoff
from didhub.webhooks.events import emit
from didhub.webhooks.models import Event, WebhookDelivery
from didhub.webhooks.signing import signature_header, verify_signature
from webhook_receiver import Receiver

# ------------------------------------------------------------------ a receiver


def deliver_due(db: Database, **options: Any) -> DeliveryReport:
    """The receivers here listen on loopback, which only a lab may target
    (test_webhook_targets.py has the rule itself)."""
    return delivery.deliver_due(db, allow_private=True, **options)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def add_webhook(
    client: TestClient, acct: Acct, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "test"}
    if events is not None:
        body["events"] = events
    response = client.post("/webhooks", json=body, headers=acct.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def feed(client: TestClient, acct: Acct, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/events", params=params, headers=acct.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def deliveries(client: TestClient, acct: Acct, webhook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/webhooks/{webhook_id}/deliveries", headers=acct.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def buy_one(client: TestClient, acct: Acct, area_code: str = "501") -> tuple[str, str]:
    number = search_numbers(client, acct, area_code=area_code, page_size=1)[0]["phone_number"]
    return buy(client, acct, number)["data"][0]["id"], number


# ------------------------------------------------------------------ signatures


def test_signature_verifies_only_the_body_secret_and_time_it_was_made_for() -> None:
    secret, body, t = "whsec_test", b'{"id":"evt_1"}', 1_900_000_000
    header = signature_header(secret, t, body)
    assert header.startswith(f"t={t},v1=")
    assert verify_signature(secret, header, body, now=t + 10)
    assert verify_signature(secret, header, body.decode(), now=t - 10)
    assert not verify_signature("whsec_other", header, body, now=t)
    assert not verify_signature(secret, header, body + b" ", now=t)
    assert not verify_signature(secret, header, body, now=t + 301)  # replayed too late
    assert verify_signature(secret, header, body, tolerance=0, now=t + 10_000)
    assert not verify_signature(secret, None, body)
    assert not verify_signature(secret, "v1=abc", body, now=t)
    assert not verify_signature(secret, "t=x,v1=abc", body, now=t)
    # Several v1 entries: any may match.
    good = header.split("v1=")[1]
    assert verify_signature(secret, f"t={t},v1=deadbeef,v1={good}", body, now=t)


def test_backoff_grows_and_then_repeats_its_last_step() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
    ]
    assert backoff(len(RETRY_SCHEDULE) + 5) == RETRY_SCHEDULE[-1]


# ------------------------------------------------------------------ catalogue


def test_every_status_change_and_feature_kind_has_a_public_name() -> None:
    for source, targets in lifecycle.TRANSITIONS.items():
        for target in targets:
            published = catalogue.number_events(f"status.{target}", None, {"previous": source})
            assert len(published) == 1, (source, target)
            assert published[0].type in catalogue.EVENT_TYPES
    for kind in ("cnam.pending", "cnam.active", "cnam.failed"):
        (one,) = catalogue.number_events(kind, "ten_x", {})
        assert one.type == "number.cnam.updated" and one.details["status"] == kind[5:]
    for kind in ("e911.pending", "e911.provisioned", "e911.failed"):
        (one,) = catalogue.number_events(kind, "ten_x", {})
        assert one.type == "number.e911.updated" and one.details["status"] == kind[5:]
    assert set(catalogue.ACCOUNT_KINDS.values()) <= set(catalogue.EVENT_TYPES)
    assert catalogue.number_events("something.new", None, {}) == []


def test_event_type_catalogue_is_served(client: TestClient) -> None:
    types = [t["type"] for t in client.get("/webhooks/event-types").json()["data"]]
    assert "number.purchased" in types and "billing.payment_failed" in types


# ------------------------------------------------------------------ delivery


def test_a_purchase_is_delivered_signed_and_is_the_event_in_the_feed(
    client: TestClient, partner: Acct, receiver: Receiver, db: Database, http: httpx.Client
) -> None:
    hook = add_webhook(client, partner, receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["events"] is None
    listed = client.get("/webhooks", headers=partner.headers).json()["data"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

    number_id, e164 = buy_one(client, partner)
    report = deliver_due(db, http_client=http)
    assert report.delivered == 2 and report.retrying == 0
    assert sorted(receiver.types()) == ["number.ordered", "number.purchased"]

    got = next(r for r in receiver.received if r.type == "number.purchased")
    assert got.path == "/hooks/didhub"
    assert got.headers["Content-Type"] == "application/json"
    assert verify_signature(hook["secret"], got.headers["Didhub-Signature"], got.body)
    assert not verify_signature("whsec_wrong", got.headers["Didhub-Signature"], got.body)
    event = got.event
    assert got.headers["Didhub-Event-Id"] == event["id"]
    assert got.headers["Didhub-Event-Type"] == "number.purchased"
    assert event["account_id"] == partner.id
    assert event["data"]["number"]["id"] == number_id
    assert event["data"]["number"]["phone_number"] == e164
    assert event["data"]["number"]["status"] == "active"
    assert event["data"]["previous"] == "provisioning"
    # The body is exactly the event the feed shows.
    shown = client.get(f"/events/{event['id']}", headers=partner.headers).json()["data"]
    assert shown == event
    assert [e["type"] for e in feed(client, partner)] == ["number.purchased", "number.ordered"]

    rows = deliveries(client, partner, hook["id"])
    assert {r["status"] for r in rows} == {"delivered"}
    assert all(r["attempts"] == 1 and r["last_status_code"] == 200 for r in rows)
    assert all(r["next_attempt_at"] is None for r in rows)
    # Nothing is sent twice.
    assert deliver_due(db, http_client=http).claimed == 0
    assert len(receiver.received) == 2


def test_a_server_error_is_retried_with_backoff_until_delivered(
    client: TestClient, partner: Acct, db: Database, http: httpx.Client
) -> None:
    server = Receiver([500, 503, 200])
    try:
        start = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
        at(start)
        hook = add_webhook(client, partner, server.url, ["number.purchased"])
        buy_one(client, partner)
        assert deliver_due(db, http_client=http).retrying == 1
        (row,) = deliveries(client, partner, hook["id"])
        assert row["status"] == "pending" and row["attempts"] == 1
        assert row["last_status_code"] == 500
        assert datetime.fromisoformat(row["next_attempt_at"]) == start + timedelta(seconds=30)

        at(start + timedelta(seconds=29))
        assert deliver_due(db, http_client=http).claimed == 0  # not due yet
        at(start + timedelta(seconds=30))
        assert deliver_due(db, http_client=http).retrying == 1
        (row,) = deliveries(client, partner, hook["id"])
        assert row["attempts"] == 2 and row["last_status_code"] == 503
        second_due = start + timedelta(seconds=30) + timedelta(minutes=2)
        assert datetime.fromisoformat(row["next_attempt_at"]) == second_due

        at(second_due)
        assert deliver_due(db, http_client=http).delivered == 1
        detail = client.get(f"/webhooks/deliveries/{row['id']}", headers=partner.headers)
        data = detail.json()["data"]
        assert data["status"] == "delivered" and data["attempts"] == 3
        assert data["delivered_at"] == second_due.isoformat()
        log = data["attempt_log"]
        assert [a["status_code"] for a in log] == [500, 503, 200]
        assert all(a["error"] is None and a["duration_ms"] >= 0 for a in log)
        # Same event every time, signed at the (fake) time of each attempt.
        assert len({r.body for r in server.received}) == 1
        last = server.received[-1]
        assert last.headers["Didhub-Signature"].startswith(f"t={int(second_due.timestamp())},")
        assert verify_signature(
            hook["secret"],
            last.headers["Didhub-Signature"],
            last.body,
            now=second_due.timestamp(),
        )
    finally:
        server.close()


def test_gives_up_after_max_attempts_and_a_manual_retry_sends_again(
    client: TestClient, partner: Acct, db: Database, http: httpx.Client
) -> None:
    server = Receiver([500] * 3)
    try:
        moment = datetime(2031, 5, 1, tzinfo=UTC)
        at(moment)
        hook = add_webhook(client, partner, server.url, ["number.purchased"])
        buy_one(client, partner)
        outcomes = []
        for _ in range(3):
            report = deliver_due(db, http_client=http, max_attempts=3)
            outcomes.append((report.retrying, report.failed))
            moment += timedelta(days=1)
            at(moment)
        assert outcomes == [(1, 0), (1, 0), (0, 1)]
        (row,) = deliveries(client, partner, hook["id"])
        assert row["status"] == "failed" and row["attempts"] == 3
        assert row["next_attempt_at"] is None and row["last_status_code"] == 500
        assert deliver_due(db, http_client=http).claimed == 0  # given up
        failed = client.get(
            f"/webhooks/{hook['id']}/deliveries",
            params={"status": "failed"},
            headers=partner.headers,
        ).json()["data"]
        assert [d["id"] for d in failed] == [row["id"]]

        retried = client.post(f"/webhooks/deliveries/{row['id']}/retry", headers=partner.headers)
        assert retried.status_code == 200
        assert retried.json()["data"]["status"] == "pending"
        assert deliver_due(db, http_client=http, max_attempts=3).delivered == 1
        assert len(server.received) == 4
        assert len({r.headers["Didhub-Event-Id"] for r in server.received}) == 1
    finally:
        server.close()


def test_an_unreachable_endpoint_records_the_error(
    client: TestClient, partner: Acct, db: Database, http: httpx.Client
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = add_webhook(client, partner, f"http://127.0.0.1:{port}/x", ["number.purchased"])
    buy_one(client, partner)
    assert deliver_due(db, http_client=http).retrying == 1
    (row,) = deliveries(client, partner, hook["id"])
    assert row["last_status_code"] is None and row["last_error"]
    detail = client.get(f"/webhooks/deliveries/{row['id']}", headers=partner.headers).json()
    assert detail["data"]["attempt_log"][0]["error"] == row["last_error"]


def test_two_workers_never_send_one_delivery_twice(
    client: TestClient, partner: Acct, receiver: Receiver, db: Database
) -> None:
    add_webhook(client, partner, receiver.url)
    numbers = [n["phone_number"] for n in search_numbers(client, partner, page_size=6)]
    buy(client, partner, *numbers)
    with db.session() as session:
        queued = session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert queued == 12  # ordered + purchased for each of the 6 numbers

    def work() -> None:
        with httpx.Client(timeout=5) as http:
            while deliver_due(db, http_client=http, limit=2).claimed:
                pass

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [r.headers["Didhub-Event-Id"] for r in receiver.received]
    assert len(ids) == 12 and len(set(ids)) == 12


def test_the_server_delivers_by_itself(
    settings: Settings, db: Database, carrier: SandboxCarrier, partner: Acct, receiver: Receiver
) -> None:
    quick = settings.model_copy(update={"sweep_seconds": 0, "webhook_seconds": 0.05})
    with TestClient(create_app(quick, db, carrier, jobs=True)) as client:
        add_webhook(client, partner, receiver.url, ["number.purchased"])
        buy_one(client, partner)
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert receiver.types() == ["number.purchased"]


# ------------------------------------------------------------------ what is published


def test_assign_unassign_and_release_reach_the_partner_and_the_tenant(
    client: TestClient,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    db: Database,
    http: httpx.Client,
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    other = make_tenant("Other", partner.id)
    partner_rx, tenant_rx, other_rx = Receiver(), Receiver(), Receiver()
    try:
        add_webhook(client, partner, partner_rx.url)
        add_webhook(client, tenant, tenant_rx.url)
        add_webhook(client, other, other_rx.url)
        agent = client.post(
            "/agents", json={"tenant_id": tenant.id, "name": "Front desk"}, headers=partner.headers
        ).json()["data"]
        number_id, _ = buy_one(client, partner)
        assigned = client.post(
            "/telephony/numbers/assign",
            json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
            headers=partner.headers,
        )
        assert assigned.status_code == 200, assigned.text
        unassigned = client.post(
            "/telephony/numbers/unassign",
            json={"number_id": number_id, "assignment_type": "inbound"},
            headers=partner.headers,
        )
        assert unassigned.status_code == 200
        moved = client.patch(
            f"/telephony/numbers/{number_id}", json={"tenant_id": other.id}, headers=partner.headers
        )
        assert moved.status_code == 200
        released = client.post(
            "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
        )
        assert released.status_code == 200

        partner_types = [e["type"] for e in reversed(feed(client, partner))]
        assert partner_types == [
            "number.ordered",
            "number.purchased",
            "number.tenant_assigned",  # the agent's tenant
            "number.assigned",
            "number.unassigned",
            "number.tenant_unassigned",  # moved from Clinic ...
            "number.tenant_assigned",  # ... to Other
            "number.releasing",
            "number.released",
        ]
        events = list(reversed(feed(client, partner)))
        assert events[3]["data"]["agent_id"] == agent["id"]
        assert events[3]["data"]["assignment_type"] == "inbound"
        assert events[5]["data"]["tenant_id"] == tenant.id
        assert events[6]["data"]["previous_tenant_id"] == tenant.id
        assert events[-1]["data"]["number"]["status"] == "released"
        # A tenant reads what concerns it, and only that.
        assert [e["type"] for e in reversed(feed(client, tenant))] == [
            "number.tenant_assigned",
            "number.assigned",
            "number.unassigned",
            "number.tenant_unassigned",
        ]
        assert [e["type"] for e in reversed(feed(client, other))] == [
            "number.tenant_assigned",
            "number.releasing",
            "number.released",
        ]
        assert feed(client, partner, type="number.released")[0]["type"] == "number.released"
        assert len(feed(client, partner, type="number.*", number_id=number_id)) == 9
        bad = client.get("/events", params={"type": "number.nope"}, headers=partner.headers)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "type"

        # Webhooks receive exactly what each account's feed shows.
        while deliver_due(db, http_client=http).claimed:
            pass
        assert sorted(partner_rx.types()) == sorted(partner_types)
        assert len(tenant_rx.received) == 4 and len(other_rx.received) == 3
    finally:
        for server in (partner_rx, tenant_rx, other_rx):
            server.close()


def test_a_tenant_buying_its_own_number_is_heard_by_its_partner(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Self-serve", partner.id, balance="20.00")
    number_id, _ = buy_one(client, tenant)
    for acct in (tenant, partner):
        types = [e["type"] for e in feed(client, acct)]
        assert types == ["number.purchased", "number.ordered"]
    assert feed(client, tenant)[0]["account_id"] == tenant.id


def test_a_renewal_run_publishes_one_event_per_account(
    client: TestClient,
    partner: Acct,
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    at(datetime(2031, 1, 15, 12, tzinfo=UTC))
    hook = add_webhook(client, partner, receiver.url, ["billing.*"])
    numbers = [n["phone_number"] for n in search_numbers(client, partner, page_size=3)]
    buy(client, partner, *numbers)
    at(datetime(2031, 2, 15, 12, tzinfo=UTC))
    report = renewals.run(db, carrier, SandboxGateway(db), settings, date(2031, 2, 15))
    assert report.renewals == 3
    with db.session() as session:
        number_events = session.scalar(
            select(func.count()).select_from(Event).where(Event.type.startswith("number."))
        )
    assert number_events == 6  # the purchase's; renewing adds none per number
    (charged,) = feed(client, partner, type="billing.renewal_charged")
    assert charged["data"]["amount"] == "3.00" and charged["data"]["periods"] == 3
    assert charged["data"]["currency"] == "USD" and charged["data"]["as_of"] == "2031-02-15"
    assert sorted(n["phone_number"] for n in charged["data"]["numbers"]) == sorted(numbers)
    assert charged["data"]["numbers"][0]["period_start"] == "2031-02-15"
    assert charged["data"]["numbers_truncated"] is False
    assert deliver_due(db, http_client=http).delivered == 1
    assert receiver.types() == ["billing.renewal_charged"]
    assert receiver.received[0].event == charged
    assert [d["event_type"] for d in deliveries(client, partner, hook["id"])] == [
        "billing.renewal_charged"
    ]


def test_a_declined_card_and_past_due_are_published(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    acct = make_partner("Exactly enough", balance="2.00")
    add_webhook(client, acct, receiver.url, ["billing.payment_failed", "billing.past_due"])
    card = client.put(
        "/billing/card", json={"card_token": "tok_chargeDeclined"}, headers=acct.headers
    )
    assert card.status_code == 200
    topup = client.post("/billing/wallet/topup", json={"amount": "25.00"}, headers=acct.headers)
    assert topup.status_code == 402
    (failed,) = feed(client, acct, type="billing.payment_failed")
    assert failed["data"]["decline_code"] == "card_declined"
    assert "declined" in failed["data"]["message"]

    # The first month and setup take the whole wallet; the renewal can't be paid.
    at(datetime(2031, 1, 10, 12, tzinfo=UTC))
    buy_one(client, acct)
    at(datetime(2031, 2, 10, 12, tzinfo=UTC))
    report = renewals.run(db, carrier, None, settings, date(2031, 2, 10))
    assert report.past_due == [acct.id]
    (past_due,) = feed(client, acct, type="billing.past_due")
    assert past_due["data"]["shortfall"] == "1.00"
    assert past_due["data"]["grace_ends"] == "2031-02-17"
    assert deliver_due(db, http_client=http).delivered == 2
    assert sorted(receiver.types()) == ["billing.past_due", "billing.payment_failed"]


# ------------------------------------------------------------------ subscriptions


def test_subscriptions_filter_by_type_and_group(
    client: TestClient, partner: Acct, db: Database, http: httpx.Client
) -> None:
    released_rx, billing_rx = Receiver(), Receiver()
    try:
        only_released = add_webhook(client, partner, released_rx.url, ["number.released"])
        assert only_released["events"] == ["number.released"]
        add_webhook(client, partner, billing_rx.url, ["billing.*"])
        number_id, _ = buy_one(client, partner)
        client.post(
            "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
        )
        client.put("/billing/card", json={"card_token": "tok_visa"}, headers=partner.headers)
        while deliver_due(db, http_client=http).claimed:
            pass
        assert released_rx.types() == ["number.released"]
        assert billing_rx.types() == ["billing.card_added"]

        # Changing the subscription applies to the events after it; null is everything.
        patched = client.patch(
            f"/webhooks/{only_released['id']}", json={"events": None}, headers=partner.headers
        )
        assert patched.status_code == 200 and patched.json()["data"]["events"] is None
        buy_one(client, partner, "212")
        while deliver_due(db, http_client=http).claimed:
            pass
        assert sorted(released_rx.types()[1:]) == ["number.ordered", "number.purchased"]
    finally:
        released_rx.close()
        billing_rx.close()


def test_a_disabled_endpoint_gets_nothing_new_and_a_removed_one_nothing_at_all(
    client: TestClient, partner: Acct, receiver: Receiver, db: Database, http: httpx.Client
) -> None:
    hook = add_webhook(client, partner, receiver.url, ["number.purchased"])
    off = client.patch(f"/webhooks/{hook['id']}", json={"enabled": False}, headers=partner.headers)
    assert off.status_code == 200 and off.json()["data"]["enabled"] is False
    buy_one(client, partner)
    assert deliveries(client, partner, hook["id"]) == []
    on = client.patch(f"/webhooks/{hook['id']}", json={"enabled": True}, headers=partner.headers)
    assert on.json()["data"]["enabled"] is True
    buy_one(client, partner, "212")
    (queued,) = deliveries(client, partner, hook["id"])
    assert queued["status"] == "pending"

    removed = client.delete(f"/webhooks/{hook['id']}", headers=partner.headers)
    assert removed.status_code == 200
    assert client.get("/webhooks", headers=partner.headers).json()["data"] == []
    assert client.get(f"/webhooks/{hook['id']}", headers=partner.headers).status_code == 404
    with db.session() as session:
        row = session.get_one(WebhookDelivery, queued["id"])
        assert row.status == "failed" and row.last_error == "the endpoint was removed"
    buy_one(client, partner, "303")
    assert deliver_due(db, http_client=http).claimed == 0
    assert receiver.received == []


def test_the_outbox_commits_with_the_change_or_not_at_all(
    client: TestClient, make_partner: Callable[..., Acct], receiver: Receiver, db: Database
) -> None:
    poor = make_partner("Poor", balance="0.50")
    add_webhook(client, poor, receiver.url)
    number = search_numbers(client, poor, page_size=1)[0]["phone_number"]
    refused = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=poor.headers
    )
    assert refused.status_code == 402
    with db.session() as session:
        assert session.scalars(select(PhoneNumber)).first() is None  # nothing was bought
    # An event recorded in a transaction that rolls back is gone with it.
    with pytest.raises(RuntimeError), db.session() as session:
        emit(session, "billing.card_added", poor.id, {"message": "x"})
        raise RuntimeError("rolled back")
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_cnam_and_e911_kinds_are_published(client: TestClient, partner: Acct, db: Database) -> None:
    number_id, _ = buy_one(client, partner)
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_id)
        lifecycle.record(session, number, "cnam.active", partner.id, display_name="ACME")
        lifecycle.record(session, number, "e911.failed", partner.id, reason="address invalid")
    cnam, e911 = (
        feed(client, partner, type="number.cnam.updated"),
        feed(client, partner, type="number.e911.updated"),
    )
    assert cnam[0]["data"]["status"] == "active" and cnam[0]["data"]["display_name"] == "ACME"
    assert e911[0]["data"]["status"] == "failed"
    assert e911[0]["data"]["reason"] == "address invalid"


# ------------------------------------------------------------------ validation and tenancy


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/hook",
        "example.com/hook",
        "http://user:secret@example.com/hook",
        "https://token@example.com/hook",
        "http:///nohost",
        "http://example.com:99999/hook",
        "http://exa mple.com/",
        "https://example.com/" + "a" * 2001,
    ],
)
def test_a_bad_url_is_422_naming_url(client: TestClient, partner: Acct, url: str) -> None:
    response = client.post("/webhooks", json={"url": url}, headers=partner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "url"


def test_other_bad_input_names_its_field(
    client: TestClient, partner: Acct, receiver: Receiver
) -> None:
    def error(body: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/webhooks", json=body, headers=partner.headers)
        assert response.status_code == 422, response.text
        found: dict[str, Any] = response.json()["error"]
        return found

    assert error({})["field"] == "url"
    assert error({"url": receiver.url, "events": ["number.nope"]})["field"] == "events"
    assert error({"url": receiver.url, "events": []})["field"] == "events"
    assert error({"url": receiver.url, "events": ["everything.*"]})["field"] == "events"
    assert error({"url": receiver.url, "secret": "mine"})["field"] == "secret"
    hook = add_webhook(client, partner, receiver.url)
    bad_status = client.get(
        f"/webhooks/{hook['id']}/deliveries", params={"status": "lost"}, headers=partner.headers
    )
    assert bad_status.status_code == 422 and bad_status.json()["error"]["field"] == "status"
    bad_cursor = client.get("/events", params={"cursor": "zzz"}, headers=partner.headers)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
    bad_patch = client.patch(
        f"/webhooks/{hook['id']}", json={"url": "gopher://x"}, headers=partner.headers
    )
    assert bad_patch.status_code == 422 and bad_patch.json()["error"]["field"] == "url"
    assert client.post("/webhooks", json={"url": receiver.url}).status_code == 401


def test_another_accounts_webhooks_deliveries_and_events_are_404(
    client: TestClient, make_partner: Callable[..., Acct], receiver: Receiver, db: Database
) -> None:
    mine, theirs = make_partner("Mine"), make_partner("Theirs")
    hook = add_webhook(client, theirs, receiver.url)
    buy_one(client, theirs)
    (delivery, *_) = deliveries(client, theirs, hook["id"])
    event_id = feed(client, theirs)[0]["id"]
    h = mine.headers
    for response in (
        client.get(f"/webhooks/{hook['id']}", headers=h),
        client.get(f"/webhooks/{hook['id']}/deliveries", headers=h),
        client.patch(f"/webhooks/{hook['id']}", json={"enabled": False}, headers=h),
        client.delete(f"/webhooks/{hook['id']}", headers=h),
        client.get(f"/webhooks/deliveries/{delivery['id']}", headers=h),
        client.post(f"/webhooks/deliveries/{delivery['id']}/retry", headers=h),
        client.get(f"/events/{event_id}", headers=h),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/webhooks", headers=h).json()["data"] == []
    assert feed(client, mine) == []
    assert len(deliveries(client, theirs, hook["id"])) == 2  # untouched


def test_a_partner_sees_its_tenants_endpoints_a_tenant_not_its_partners(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct], receiver: Receiver
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    theirs = add_webhook(client, tenant, receiver.url)
    ours = add_webhook(client, partner, receiver.url)
    listed = {h["id"] for h in client.get("/webhooks", headers=partner.headers).json()["data"]}
    assert listed == {theirs["id"], ours["id"]}
    tenant_list = client.get("/webhooks", headers=tenant.headers).json()["data"]
    assert [h["id"] for h in tenant_list] == [theirs["id"]]
    assert client.get(f"/webhooks/{ours['id']}", headers=tenant.headers).status_code == 404


def test_event_feed_pages_with_a_cursor(client: TestClient, partner: Acct) -> None:
    numbers = [n["phone_number"] for n in search_numbers(client, partner, page_size=3)]
    buy(client, partner, *numbers)  # 6 events
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/events", params=params, headers=partner.headers).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    assert seen == [e["id"] for e in feed(client, partner, limit=50)]


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(  # the shared one (conftest.py), and:
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DIDHUB_WEBHOOK_ALLOW_PRIVATE", "true")  # the receiver is on loopback
    get_settings.cache_clear()
    yield


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_adds_lists_delivers_and_removes(
    cli_env: None, client: TestClient, partner: Acct, receiver: Receiver
) -> None:
    key = partner.key
    added = json.loads(
        cli("webhooks", "add", receiver.url, "--key", key, "--events", "number.*", "--json")
    )
    assert added["secret"].startswith("whsec_") and added["events"] == ["number.*"]
    assert "number.*" in cli("webhooks", "list", "--key", key)
    buy_one(client, partner)
    delivered = json.loads(cli("webhooks", "deliver", "--json"))
    assert delivered == {"attempted": 2, "delivered": 2, "retrying": 0, "failed": 0}
    rows = json.loads(cli("webhooks", "deliveries", added["id"], "--key", key, "--json"))
    assert {r["status"] for r in rows} == {"delivered"} and len(rows) == 2
    assert "delivered" in cli("webhooks", "deliveries", added["id"], "--key", key)
    events = json.loads(cli("webhooks", "events", "--key", key, "--json"))
    assert [e["type"] for e in events] == ["number.purchased", "number.ordered"]
    assert "number.purchased" in cli("webhooks", "events", "--key", key)
    queued = cli("webhooks", "retry", rows[0]["id"], "--key", key)
    assert "queued" in queued
    assert json.loads(cli("webhooks", "deliver", "--json"))["delivered"] == 1
    assert len(receiver.received) == 3
    cli("webhooks", "remove", added["id"], "--key", key)
    assert json.loads(cli("webhooks", "list", "--key", key, "--json")) == []
    bad = cli("webhooks", "add", "ftp://x", "--key", key, code=1)
    assert "url" in bad
