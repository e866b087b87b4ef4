"""Property: whatever sequence of purchases, renewals, usage, top-ups, declines
and releases happens, every ledger transaction balances, every wallet's cached
balance equals its entries, and the balance equals what the business tables
say independently (opening credit + card charges − numbers kept − renewals − calls)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from didhub import clock
from didhub.accounts import service as accounts
from didhub.billing.models import Renewal, UsageRecord
from didhub.billing.service import books, renewals, usage
from didhub.carriers.base import SearchQuery
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import DidhubError
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger
from didhub.wallet import service as wallet
from didhub.wallet.models import CardCharge

actions = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.sampled_from(["local", "toll-free"]), st.integers(1, 3)),
        st.tuples(st.just("days"), st.integers(1, 45)),
        st.tuples(st.just("calls"), st.lists(st.integers(0, 900), min_size=1, max_size=5)),
        st.tuples(
            st.just("topup"),
            st.sampled_from(["tok_visa", "tok_chargeDeclined"]),
            st.integers(1, 40),
        ),
        st.tuples(st.just("auto"), st.booleans()),
        st.tuples(st.just("release"), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=14,
)
_calls = itertools.count()


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=actions, opening=st.integers(0, 30))
def test_money_always_adds_up(
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    steps: list[tuple[object, ...]],
    opening: int,
) -> None:
    gateway = SandboxGateway(db)
    today = date(2030, 1, 1)
    clock.set_clock(lambda: datetime(2030, 1, 1, 12, tzinfo=UTC))
    with db.session() as session:
        acct = accounts.create_partner(session, "prop", "USD").id
        accounts.fund_wallet(session, acct, Decimal(opening), "USD", "opening")
    scope = Scope(acct, PARTNER)
    owned: list[str] = []
    for step in steps:
        kind = step[0]
        try:
            if kind == "buy":
                query = SearchQuery(
                    phone_number_type=step[1], area_code=None if step[1] == "toll-free" else "512"
                )
                page = numbers.search(db, carrier, scope, query, page=1, page_size=int(step[2]))
                result = numbers.purchase(
                    db,
                    carrier,
                    settings,
                    scope,
                    [n.phone_number for n in page.data],
                    gateway=gateway,
                )
                owned += [n.id for n in result.numbers if n.status == "active"]
            elif kind == "days":
                today += timedelta(days=int(step[1]))
                moment = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
                clock.set_clock(lambda m=moment: m)
                renewals.run(db, carrier, gateway, settings, today)
            elif kind == "calls" and owned:
                with db.session() as session:
                    e164 = session.get_one(PhoneNumber, owned[0]).e164
                usage.record(
                    db,
                    settings,
                    [
                        usage.CallRecord(e164, "outbound", clock.now(), int(s), f"p{next(_calls)}")
                        for s in step[1]
                    ],
                )
            elif kind == "topup":
                wallet.set_card(db, gateway, acct, str(step[1]))
                wallet.topup(db, gateway, settings, acct, Decimal(int(step[2])), None)
            elif kind == "auto":
                with db.session() as session:
                    if session.get(wallet.PaymentCard, acct) is not None:
                        wallet.set_auto_recharge(
                            session, acct, bool(step[1]), Decimal("5"), Decimal("20")
                        )
            elif kind == "release" and owned:
                number_id = owned.pop(int(step[1]) % len(owned))
                numbers.release(db, carrier, scope, number_id, settings)
        except DidhubError:
            pass  # refused (no funds, declined, taken...): must have changed nothing

    with db.session() as session:
        assert books.check(session) == []
        balance = ledger.wallet_balance(session, acct, "USD")
        charged = session.scalar(
            select(func.coalesce(func.sum(CardCharge.amount), 0)).where(
                CardCharge.account_id == acct, CardCharge.status == "succeeded"
            )
        )
        kept = sum(
            (
                n.monthly_cost + n.upfront_cost
                for n in session.scalars(
                    select(PhoneNumber).where(
                        PhoneNumber.owner_id == acct, PhoneNumber.status != "failed"
                    )
                )
            ),
            Decimal("0"),
        )
        renewed = session.scalar(
            select(func.coalesce(func.sum(Renewal.amount), 0)).where(Renewal.account_id == acct)
        )
        calls = session.scalar(
            select(func.coalesce(func.sum(UsageRecord.amount), 0)).where(
                UsageRecord.account_id == acct, UsageRecord.posted_at.is_not(None)
            )
        )
        assert balance == Decimal(opening) + Decimal(charged) - kept - Decimal(renewed) - Decimal(
            calls
        )
