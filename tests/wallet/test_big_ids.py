"""The tables that only grow keep working past 2,147,483,647 rows: a purchase
after the ids of ledger entries, events and number events have passed the
32-bit limit is charged, recorded and adds up (on PostgreSQL an INTEGER id,
and a sequence created AS integer, would refuse the insert)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub.db import Database
from didhub.numbers.models import NumberEvent
from didhub.wallet.models import LedgerEntry
from didhub.webhooks.models import Event

PAST_32_BITS = 2**31 + 10
GROWING = {"ledger_entries": "id", "events": "seq", "number_events": "id"}


def _jump_ids(db: Database) -> None:
    """Make the next id of each table land past 2**31."""
    with db.engine.begin() as conn:
        for table, column in GROWING.items():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), :v)"),
                    {"v": PAST_32_BITS},
                )
            else:  # SQLite: the next rowid is one past the largest
                newest = conn.execute(text(f"SELECT max({column}) FROM {table}")).scalar()
                conn.execute(
                    text(f"UPDATE {table} SET {column} = :v WHERE {column} = :old"),
                    {"v": PAST_32_BITS, "old": newest},
                )


def test_a_purchase_past_two_billion_ids_is_charged_and_adds_up(
    client: TestClient, partner: Acct, db: Database
) -> None:
    first, second = search_numbers(client, partner, page_size=2)[:2]
    buy(client, partner, first["phone_number"])  # every table has a row to start from
    _jump_ids(db)
    bought = buy(client, partner, second["phone_number"])
    assert [n["phone_number"] for n in bought["data"]] == [second["phone_number"]]
    with db.session() as session:
        assert session.scalar(select(func.max(LedgerEntry.id))) > PAST_32_BITS
        assert session.scalar(select(func.max(Event.seq))) > PAST_32_BITS
        assert session.scalar(select(func.max(NumberEvent.id))) > PAST_32_BITS
    listed = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    assert {n["phone_number"] for n in listed} >= {first["phone_number"], second["phone_number"]}
    assert ledger_ok(db)
