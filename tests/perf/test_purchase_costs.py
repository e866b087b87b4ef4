"""Issue 20, item 5 (and issue 19): what one purchase costs the database, counted
on the engine as the API runs it, and that it doesn't grow with the inventory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, text

from conftest import Acct, ledger_ok, search_numbers
from didhub.api.app import create_app
from didhub.carriers.base import NumberOrderResult
from didhub.carriers.stock import StockCarrier, import_csv
from didhub.config import Settings
from didhub.db import Database, autocommits

# What a purchase of one number may cost, through the API with the stock carrier
# (docs/performance.md, "What a purchase costs"): the carrier's look-up (one
# statement in no transaction, Database.lone_read_engine), the debit and the
# order (one transaction), the carrier's order (one), the settlement (one); the
# answer reads nothing (the settlement knows the numbers are new: no agent,
# listing or E911 address yet), and the API key is kept from an earlier
# request, which no purchase empties (issue 19). 19 statements at the time of
# writing on SQLite and PostgreSQL: the look-up 1; the order 11 (the wallet with
# its standing and the revenue book in one, holds, owned, the ledger
# transaction, entries and balance, order, number, history, event; the holds'
# delete only when there were any); the carrier 1; settling 7 (order, numbers,
# history, event, the numbers' new status, order status, routing generation).
# The webhook subscribers and the inherited caller name are kept by the server
# (db.directory_memo). Before issue 20: 9 transactions, 48 statements; before
# issue 19: 6 and 34; then 5 and 24, then 4 and 19.
MAX_TRANSACTIONS = 3
MAX_STATEMENTS = 19


@dataclass
class Count:
    transactions: int = 0
    statements: list[str] = field(default_factory=list)
    # Transactions rolled back: psycopg forgets every statement it prepared on
    # the connection at a ROLLBACK (docs/performance.md, "No rollback").
    rollbacks: int = 0

    @property
    def generation_bumps(self) -> int:
        return sum("UPDATE routing_generation" in s for s in self.statements)


@contextmanager
def counted(db: Database) -> Iterator[Count]:
    """Transactions begun and SQL statements sent on the engine while the block
    runs (SQLite's ``BEGIN [IMMEDIATE]`` is how a transaction begins there, not
    a statement of its own: PostgreSQL's driver sends its BEGIN out of sight)."""
    count = Count()

    def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        if not sql.lstrip().upper().startswith("BEGIN"):
            count.statements.append(" ".join(sql.split()))

    def begin(conn: Any) -> None:
        if not autocommits(conn):  # a statement on its own is in no transaction
            count.transactions += 1

    def rollback(conn: Any) -> None:
        if not autocommits(conn):
            count.rollbacks += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "begin", begin)
    event.listen(db.engine, "rollback", rollback)
    try:
        yield count
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "begin", begin)
        event.remove(db.engine, "rollback", rollback)


def _stock(first: int, count: int) -> str:
    return "number,rate_center,city,state,cost\n" + "".join(
        f"+1312{n:07d},CHICAGO,Chicago,IL,0.50\n" for n in range(first, first + count)
    )


def _generation(db: Database) -> int:
    with db.engine.connect() as conn:
        value: int = conn.execute(
            text("SELECT generation FROM routing_generation WHERE id = 1")
        ).scalar_one()
        return value


def _app(settings: Settings, db: Database, carrier: Any) -> TestClient:
    """The app with its caches polling rarely: their polls (a read of
    routing_generation, from a thread in ``didhub serve``) are not a purchase's
    cost, and a test that counts must not see one land inside by chance."""
    quiet = settings.model_copy(update={"routing_cache_seconds": 60})
    return TestClient(create_app(quiet, db, carrier))


def _buy(client: TestClient, acct: Acct, e164: str) -> dict[str, Any]:
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": e164}, headers=acct.headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_purchase_costs_a_few_transactions_whatever_the_stock(
    db: Database, settings: Settings, make_partner: Any
) -> None:
    buyer = make_partner(balance="100.00")
    client = _app(settings, db, StockCarrier(db))
    import_csv(db, _stock(5550000, 10))
    _buy(client, buyer, "+13125550000")  # the first ever opens the revenue book

    costs: dict[int, Count] = {}
    for size, e164 in ((10, "+13125550001"), (2_000, "+13125550002")):
        if size > 10:
            import_csv(db, _stock(5560000, size - 10))
        before = _generation(db)
        with counted(db) as count:
            answer = _buy(client, buyer, e164)
        assert answer["data"]["phone_number"] == e164
        assert answer["data"]["status"] == "active"
        assert answer["meta"]["charged"] == "2.00"
        # Every transaction of a purchase that succeeds commits.
        assert count.rollbacks == 0, count.statements
        # Route caches are told once: the number went live.
        assert _generation(db) == before + 1
        assert count.generation_bumps == 1, count.statements
        costs[size] = count

    small, large = costs[10], costs[2_000]
    assert small.transactions <= MAX_TRANSACTIONS, small.transactions
    assert len(small.statements) <= MAX_STATEMENTS, "\n".join(small.statements)
    # Flat with the inventory: the same statements at 10 and at 2,000 numbers.
    assert (large.transactions, len(large.statements)) == (
        small.transactions,
        len(small.statements),
    )
    balance = client.get("/billing/wallet", headers=buyer.headers)
    assert balance.status_code == 200, balance.text
    assert ledger_ok(db)


@contextmanager
def executed(db: Database) -> Iterator[list[Any]]:
    """The statement objects (or SQL strings) handed to the engine while the
    block runs, one per execution."""
    seen: list[Any] = []

    def note(_conn: Any, statement: Any, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_execute", note)


def test_a_purchase_runs_statements_built_once(
    db: Database, settings: Settings, make_partner: Any
) -> None:
    """Issue 19: no per-request work that could be done once. A statement
    built per call costs SQLAlchemy more to build and to key for its compiled
    cache than to run; a purchase runs the very statement objects the one
    before it ran, with new parameters."""
    buyer = make_partner(balance="100.00")
    client = _app(settings, db, StockCarrier(db))
    import_csv(db, _stock(5550000, 4))
    _buy(client, buyer, "+13125550000")  # the first ever opens the revenue book
    with executed(db) as second:
        _buy(client, buyer, "+13125550001")
    with executed(db) as third:
        _buy(client, buyer, "+13125550002")
    before = {id(s) for s in second if not isinstance(s, str)}
    built = [str(s) for s in third if not isinstance(s, str) and id(s) not in before]
    assert not built, "\n\n".join(built)
    assert len(third) == len(second)


class _SoldMeanwhile(StockCarrier):
    """Stock whose number another seller takes between the look-up and the order."""

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        super().order("ord_elsewhere", phone_numbers)
        return super().order(order_id, phone_numbers)


def test_a_number_the_carrier_could_not_provide_is_refunded_with_one_bump_at_most(
    db: Database, settings: Settings, make_partner: Any
) -> None:
    buyer = make_partner(balance="100.00")
    client = _app(settings, db, _SoldMeanwhile(db))
    import_csv(db, _stock(5550000, 3))
    assert client.get("/billing/wallet", headers=buyer.headers).status_code == 200  # polled
    before = _generation(db)
    with counted(db) as count:
        response = client.post(
            "/telephony/numbers/purchase",
            json={"phone_number": "+13125550001"},
            headers=buyer.headers,
        )
    assert response.status_code == 502, response.text
    assert "2.00 was refunded" in response.json()["error"]["message"]
    assert count.generation_bumps <= 1
    assert _generation(db) <= before + 1
    # One more than a purchase: the other seller's order, inside the carrier.
    assert count.transactions <= MAX_TRANSACTIONS + 1
    wallet = client.get("/billing/wallet", headers=buyer.headers).json()
    assert wallet["data"]["balance"] == "100.00", wallet
    assert ledger_ok(db)


def _auto_recharge(client: TestClient, acct: Acct) -> None:
    h = acct.headers
    card = client.put("/billing/card", json={"card_token": "tok_visa"}, headers=h)
    assert card.status_code == 200, card.text
    auto = {"enabled": True, "threshold": "5.00", "amount": "25.00"}
    assert client.put("/billing/auto-recharge", json=auto, headers=h).status_code == 200


def test_an_empty_wallet_with_auto_recharge_buys_after_one_charge(
    client: TestClient, make_partner: Any, db: Database
) -> None:
    """The order's transaction finds the wallet short, leaves, the card pays,
    and the order is placed again: charged once, bought once."""
    buyer = make_partner("Card", balance="0")
    _auto_recharge(client, buyer)
    number = search_numbers(client, buyer, area_code="312")[0]["phone_number"]
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=buyer.headers
    )
    assert bought.status_code == 200, bought.text
    assert bought.json()["data"]["status"] == "active"
    wallet = client.get("/billing/wallet", headers=buyer.headers).json()["data"]
    # 25.00 charged (the recharge amount covers the 2.00 missing), 2.00 spent;
    # 23.00 is above the 5.00 threshold, so no second charge.
    assert wallet["balance"] == "23.00", wallet
    with db.read_session() as session:
        charges = session.execute(text("SELECT count(*) FROM card_charges")).scalar_one()
    assert charges == 1
    assert ledger_ok(db)


def test_a_purchase_refused_for_a_taken_number_charges_no_card(
    client: TestClient, make_partner: Any, db: Database
) -> None:
    rich = make_partner("Rich", balance="100.00")
    buyer = make_partner("Card", balance="0")
    _auto_recharge(client, buyer)
    number = search_numbers(client, rich, area_code="312")[0]["phone_number"]
    assert (
        client.post(
            "/telephony/numbers/purchase", json={"phone_number": number}, headers=rich.headers
        ).status_code
        == 200
    )
    refused = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=buyer.headers
    )
    assert refused.status_code in (404, 409), refused.text
    wallet = client.get("/billing/wallet", headers=buyer.headers).json()["data"]
    assert wallet["balance"] == "0.00", wallet
    with db.read_session() as session:
        charges = session.execute(text("SELECT count(*) FROM card_charges")).scalar_one()
    assert charges == 0
