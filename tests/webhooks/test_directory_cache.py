"""What a server keeps of the directory tables across transactions
(``db.directory_memo``: an event's webhook subscribers, a number's inherited
caller name): a stream of purchases reads them once; a change made through
this server applies to the very next request, one made by another process
(here a second Database on the same database) within
DIDHUB_ROUTING_CACHE_SECONDS; a transaction that rolls back leaves nothing
kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from conftest import Acct, buy, search_numbers, sent_statements, until
from didhub.accounts import settings as account_settings
from didhub.api.app import create_app
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.routing.cache import RouteCache
from didhub.tenancy import Scope
from didhub.webhooks import service as webhooks
from didhub.webhooks.events import emit
from didhub.webhooks.models import Event, WebhookDelivery
from webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Any:
    server = Receiver()
    yield server
    server.close()


def _deliveries(db: Database) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def _delivered_types(db: Database, number_id: str) -> set[str]:
    with db.read_session() as session:
        return set(
            session.scalars(
                select(Event.type)
                .join(WebhookDelivery, WebhookDelivery.event_seq == Event.seq)
                .where(Event.number_id == number_id)
            )
        )


def _cnam(client: TestClient, acct: Acct, number_id: str) -> dict[str, Any]:
    answer = client.get(f"/telephony/numbers/{number_id}", headers=acct.headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["data"]["cnam"]
    return found


def _polled_by_hand(settings: Settings, db: Database, carrier: SandboxCarrier) -> TestClient:
    """A client of a server whose kept answers hold for a minute, polled by
    hand: what may be kept is used, however slow the machine."""
    client = TestClient(
        create_app(settings.model_copy(update={"routing_cache_seconds": 60}), db, carrier)
    )
    kept = db.directory
    assert isinstance(kept, RouteCache)
    kept.poll()
    return client


def test_purchases_read_them_once_and_a_change_here_applies_at_once(
    settings: Settings, db: Database, carrier: SandboxCarrier, partner: Acct, receiver: Receiver
) -> None:
    client = _polled_by_hand(settings, db, carrier)
    numbers = [n["phone_number"] for n in search_numbers(client, partner, page_size=3)]
    buy(client, partner, numbers[0])
    with sent_statements(db) as seen:
        second = buy(client, partner, numbers[1])["data"][0]
    read = [s for s in seen if "webhook_endpoints" in s or "account_settings" in s]
    assert not read, read
    assert second["cnam"]["source"] == "none"

    hook = client.post("/webhooks", json={"url": receiver.url}, headers=partner.headers)
    assert hook.status_code == 201, hook.text
    named = client.patch("/settings", json={"default_cnam": "ACME DIDS"}, headers=partner.headers)
    assert named.status_code == 200, named.text
    third = buy(client, partner, numbers[2])["data"][0]
    assert (third["cnam"]["name"], third["cnam"]["source"]) == ("ACME DIDS", "partner")
    # The new endpoint heard the very next purchase.
    assert {"number.ordered", "number.purchased"} <= _delivered_types(db, third["id"])


class _SlowCarrier(SandboxCarrier):
    """Takes longer to order than the server's answers are kept for."""

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        time.sleep(0.3)
        return super().order(order_id, phone_numbers)


def test_a_purchase_finding_the_poll_late_polls_instead_of_reading_them(
    settings: Settings, db: Database, partner: Acct
) -> None:
    """The server's last poll went stale while the carrier took its time (as
    when the poll thread waits its turn for Python's lock under load): the
    settlement polls (one statement, on the poll's own connections) instead of
    reading subscribers and caller names again (before this, a quarter to two
    thirds of them were read again at 64 buyers)."""
    fast = settings.model_copy(update={"routing_cache_seconds": 0.2})
    # No lifespan, so no poll thread: only requests poll.
    client = TestClient(create_app(fast, db, _SlowCarrier(db, seed="test")))
    numbers = [n["phone_number"] for n in search_numbers(client, partner, page_size=2)]
    buy(client, partner, numbers[0])  # reads them, and keeps them
    polled: list[str] = []

    def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        polled.append(statement)

    event.listen(db.poll_engine, "before_cursor_execute", note)
    try:
        with sent_statements(db) as seen:
            second = buy(client, partner, numbers[1])["data"][0]
    finally:
        event.remove(db.poll_engine, "before_cursor_execute", note)
    read = [s for s in seen if "webhook_endpoints" in s or "account_settings" in s]
    assert not read, read
    assert any("routing_generation" in s for s in polled), polled  # the settlement polled
    assert second["cnam"]["source"] == "none"


def test_another_process_changing_them_is_seen_within_the_poll(
    client: TestClient, partner: Acct, db: Database, database_url: str
) -> None:
    number_id = buy(
        client, partner, search_numbers(client, partner, page_size=1)[0]["phone_number"]
    )["data"][0]["id"]
    assert _cnam(client, partner, number_id)["source"] == "none"  # now kept
    elsewhere = Database(database_url)
    try:
        with elsewhere.session() as session:
            scope = Scope(partner.id, "partner", frozenset({partner.id}))
            account_settings.write_settings(
                session,
                scope,
                partner.id,
                account_settings.SettingsChange(default_cnam="ELSEWHERE"),
            )
        assert until(lambda: _cnam(client, partner, number_id)["name"] == "ELSEWHERE")
    finally:
        elsewhere.engine.dispose()


def test_a_transaction_that_rolls_back_leaves_nothing_kept(
    settings: Settings, db: Database, carrier: SandboxCarrier, partner: Acct, receiver: Receiver
) -> None:
    client = _polled_by_hand(settings, db, carrier)
    number = search_numbers(client, partner, page_size=1)[0]["phone_number"]
    scope = Scope(partner.id, "partner", frozenset({partner.id}))
    with pytest.raises(RuntimeError, match="rolled back"), db.session() as session:
        webhooks.create_endpoint(session, scope, receiver.url, allow_private=True)
        # Reads the uncommitted endpoint: it must not be kept for others.
        emit(session, "number.ordered", partner.id, {"number": {}})
        raise RuntimeError("rolled back")
    # Were the endpoint kept, this purchase would queue a delivery to an
    # endpoint that doesn't exist (a foreign-key error, a 500).
    buy(client, partner, number)
    assert _deliveries(db) == 0
