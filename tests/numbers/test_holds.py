"""Holds are a promise to one buyer at everyone else's expense, so an account
holds only what it could pay for, only so many numbers, and each number only
so long however often it quotes again (issue 13, hold squatting)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from conftest import Acct, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.payments.sandbox_gateway import SandboxGateway

T0 = datetime(2027, 3, 1, 12, tzinfo=UTC)


def quote(client: TestClient, acct: Acct, phone_numbers: list[str]) -> dict[str, Any]:
    r = client.post(
        "/telephony/numbers/quote", json={"phone_numbers": phone_numbers}, headers=acct.headers
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def toll_free(client: TestClient, acct: Acct, count: int = 100) -> list[str]:
    found: list[str] = []
    page = 1
    while len(found) < count:
        batch = search_numbers(client, acct, phone_number_type="toll-free", page_size=50, page=page)
        found += [n["phone_number"] for n in batch]
        page += 1
    return found[:count]


def local(client: TestClient, acct: Acct, count: int, area: str = "501") -> list[str]:
    found = search_numbers(client, acct, area_code=area, page_size=count)
    return [n["phone_number"] for n in found]


def test_an_account_without_money_cannot_squat_toll_free_numbers(
    client: TestClient, make_partner: Callable[..., Acct]
) -> None:
    squatter = make_partner("Squatter", balance="0")
    rival = make_partner("Rival", balance="50.00")
    wanted = toll_free(client, squatter)
    assert len(wanted) == 100
    answer = quote(client, squatter, wanted)
    assert answer["total"] == "750.00" and answer["sufficient_funds"] is False
    assert answer["held"] is False and answer["expires_at"] is None
    assert "at most what the account can pay ($0.00)" in answer["hold_refused"]
    assert quote(client, squatter, wanted)["held"] is False  # re-quoting changes nothing
    # Nothing was kept from anyone: the rival finds and buys one of them.
    assert set(wanted) <= set(toll_free(client, rival, 150))
    r = client.post(
        "/telephony/numbers/purchase", json={"phone_number": wanted[0]}, headers=rival.headers
    )
    assert r.status_code == 200, r.text


def test_holds_are_worth_at_most_the_balance_and_count_once_per_number(
    client: TestClient, make_partner: Callable[..., Acct], db: Database
) -> None:
    buyer = make_partner("Buyer", balance="10.00")
    rival = make_partner("Rival", balance="50.00")
    five = local(client, buyer, 6)
    assert quote(client, buyer, five[:2])["held"] is True  # 4.00 of 10.00
    assert quote(client, buyer, five[:2])["held"] is True  # the same two again: still 4.00
    assert quote(client, buyer, five[2:5])["held"] is True  # 10.00 of 10.00
    refused = quote(client, buyer, five[5:6])
    assert refused["held"] is False and "these would make $12.00" in refused["hold_refused"]
    # What is held is hidden from the rival; what isn't, isn't.
    offered = {n["phone_number"] for n in search_numbers(client, rival, area_code="501")}
    assert not offered & set(five[:5]) and five[5] in offered


def test_a_card_with_auto_recharge_counts_as_what_it_can_pay(
    client: TestClient, make_partner: Callable[..., Acct], db: Database, settings: Settings
) -> None:
    buyer = make_partner("Card", balance="0")
    h = buyer.headers
    assert (
        client.put("/billing/card", json={"card_token": "tok_visa"}, headers=h).status_code == 200
    )
    auto = {"enabled": True, "threshold": "5.00", "amount": "25.00"}
    assert client.put("/billing/auto-recharge", json=auto, headers=h).status_code == 200
    assert quote(client, buyer, local(client, buyer, 3))["held"] is True
    # ... up to DIDHUB_HOLD_CARD_ALLOWANCE.
    assert quote(client, buyer, toll_free(client, buyer))["held"] is False  # 750.00 > 500.00


def test_at_most_so_many_numbers_are_held(
    settings: Settings, db: Database, carrier: SandboxCarrier, make_partner: Callable[..., Acct]
) -> None:
    few = settings.model_copy(update={"hold_max_numbers": 3})
    client = TestClient(create_app(few, db, carrier, SandboxGateway(db)))
    buyer = make_partner("Few", balance="100.00")
    wanted = local(client, buyer, 4)
    assert quote(client, buyer, wanted[:2])["held"] is True
    refused = quote(client, buyer, wanted[2:4])
    assert refused["held"] is False
    assert "at most 3 numbers at a time (2 are held already)" in refused["hold_refused"]
    assert quote(client, buyer, wanted[1:3])["held"] is True  # 2 + 1 new = 3


def test_requoting_never_holds_a_number_longer_than_the_maximum(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    buyer = make_partner("Patient", balance="100.00")
    rival = make_partner("Rival", balance="50.00")
    clock.set_clock(lambda: T0)
    [number] = local(client, buyer, 1)

    def at(minutes: float) -> None:
        moment = T0 + timedelta(minutes=minutes)
        clock.set_clock(lambda: moment)

    for minute in (0, 9, 18, 27):
        at(minute)
        held = quote(client, buyer, [number])
        assert held["held"] is True, held
    # Held from minute 0, so at most until minute 30, not 27 + 10.
    assert held["expires_at"] == (T0 + timedelta(minutes=30)).isoformat()
    at(31)
    refused = quote(client, buyer, [number])
    assert (
        refused["held"] is False and "longest time allowed (30 minutes)" in refused["hold_refused"]
    )
    assert number in {n["phone_number"] for n in search_numbers(client, rival, area_code="501")}
    # Letting it lapse and the sweep running don't reset the clock...
    at(45)
    numbers.reconcile(db, carrier, settings)
    assert quote(client, buyer, [number])["held"] is False
    # ... until as long again has passed.
    at(61)
    assert quote(client, buyer, [number])["held"] is True
