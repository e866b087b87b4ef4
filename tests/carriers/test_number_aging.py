"""A released number ages before it is sold again (issue 17, item 8): the
sandbox and the stock carrier keep it out of searches and orders for
``DIDHUB_NUMBER_AGING_DAYS`` (45 by default, the FCC's minimum), then offer
it again. Through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, buy, search_numbers
from didhub import clock
from didhub.api.app import create_app
from didhub.carriers.registry import make_carrier
from didhub.carriers.stock import import_csv
from didhub.config import NUMBER_AGING_DAYS, Settings
from didhub.db import Database

STOCK = (
    "number,rate_center,city,state,cost\n"
    "+15013720101,LITTLE ROCK,Little Rock,AR,0.50\n"
    "+15013720102,LITTLE ROCK,Little Rock,AR,0.50\n"
)


def _client(settings: Settings, db: Database, carrier: str, aging_days: int) -> TestClient:
    configured = settings.model_copy(update={"carrier": carrier, "number_aging_days": aging_days})
    if carrier == "stock":
        import_csv(db, STOCK)
    return TestClient(create_app(configured, db, make_carrier(configured, db)))


def _offered(client: TestClient, acct: Acct, e164: str) -> bool:
    found = search_numbers(
        client, acct, administrative_area="AR", pattern=e164[2:], phone_number_type="local"
    )
    return e164 in {n["phone_number"] for n in found}


def _release(client: TestClient, acct: Acct, number_id: str) -> None:
    answer = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=acct.headers
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("carrier", ["sandbox", "stock"])
def test_a_released_number_ages_before_it_is_sold_again(
    settings: Settings, db: Database, make_partner: Callable[..., Acct], carrier: str
) -> None:
    start = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    clock.set_clock(lambda: start)
    client = _client(settings, db, carrier, NUMBER_AGING_DAYS)
    first, second = make_partner("First"), make_partner("Second")
    e164 = search_numbers(client, first, administrative_area="AR", locality="Little Rock")[0][
        "phone_number"
    ]
    bought = buy(client, first, e164)["data"][0]
    _release(client, first, bought["id"])

    # Right after, and a day before the period ends: neither found nor sold.
    for days in (0, NUMBER_AGING_DAYS - 1):
        clock.set_clock(lambda days=days: start + timedelta(days=days))
        assert not _offered(client, second, e164)
        refused = client.post(
            "/telephony/numbers/purchase", json={"phone_number": e164}, headers=second.headers
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "number_unavailable"

    # Once aged it is offered and sold again, to anyone.
    clock.set_clock(lambda: start + timedelta(days=NUMBER_AGING_DAYS, seconds=1))
    assert _offered(client, second, e164)
    again = buy(client, second, e164)["data"][0]
    assert again["phone_number"] == e164 and again["status"] == "active"


@pytest.mark.parametrize("carrier", ["sandbox", "stock"])
def test_no_aging_when_set_to_zero(
    settings: Settings, db: Database, make_partner: Callable[..., Acct], carrier: str
) -> None:
    client = _client(settings, db, carrier, 0)
    acct = make_partner()
    e164 = search_numbers(client, acct, administrative_area="AR", locality="Little Rock")[0][
        "phone_number"
    ]
    _release(client, acct, buy(client, acct, e164)["data"][0]["id"])
    assert _offered(client, acct, e164)
