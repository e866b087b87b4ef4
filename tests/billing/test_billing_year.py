"""A year of clock time over numbers bought on the 31st and on Feb 29th, one
released mid-period, a wallet that runs dry, a declined card and a recovery:
every balance checked to the cent, and re-running any day bills nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, ledger_ok, search_numbers
from didhub import clock
from didhub.accounts import service as accounts
from didhub.billing.models import Renewal
from didhub.billing.service import renewals
from didhub.carriers.base import CarrierOutcomeUnknown
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.wallet import ledger


def at(day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    clock.set_clock(lambda: moment)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def test_a_year_of_renewals_declines_and_recovery(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    gateway = SandboxGateway(db)
    acct = make_partner("Year", balance="12.00")
    h = acct.headers

    def balance() -> Decimal:
        with db.session() as session:
            return ledger.wallet_balance(session, acct.id, "USD")

    def buy(area: str) -> tuple[str, str]:
        number = search_numbers(client, acct, area_code=area, page_size=1)[0]["phone_number"]
        r = client.post("/telephony/numbers/purchase", json={"phone_number": number}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["data"]["id"], number

    def route(number: str) -> str:
        action: str = client.get(f"/routing/inbound/{number}").json()["data"]["action"]
        return action

    def standing() -> str:
        state: str = client.get("/billing/wallet", headers=h).json()["data"]["standing"]
        return state

    def bill_through(end: date, start: date) -> None:
        for day in days(start, end):
            at(day)
            renewals.run(db, carrier, gateway, settings, day)
            again = renewals.run(db, carrier, gateway, settings, day)
            assert again.renewals == 0 and again.charged == 0, day

    at(date(2028, 1, 31))
    a_id, a = buy("501")
    assert balance() == Decimal("10.00")
    number_a = client.get(f"/telephony/numbers/{a_id}", headers=h).json()["data"]
    assert number_a["renews_on"] == "2028-02-29"  # the 31st becomes February's last day

    at(date(2028, 2, 29))
    b_id, b = buy("212")
    assert balance() == Decimal("8.00")
    bill_through(date(2028, 2, 29), date(2028, 2, 1))
    assert balance() == Decimal("7.00")  # A's second month
    number_a = client.get(f"/telephony/numbers/{a_id}", headers=h).json()["data"]
    assert number_a["renews_on"] == "2028-03-31"  # and back to the 31st

    bill_through(date(2028, 6, 15), date(2028, 3, 1))
    # B on 3/29, 4/29, 5/29; A on 3/31, 4/30, 5/31.
    assert balance() == Decimal("1.00")
    released = client.post("/telephony/numbers/release", json={"number_id": a_id}, headers=h)
    assert released.status_code == 200
    assert balance() == Decimal("1.00")  # no refund for the partial month (the policy)

    bill_through(date(2028, 7, 28), date(2028, 6, 16))
    assert balance() == Decimal("0.00")  # B on 6/29; A not billed after release
    assert standing() == "good"

    bill_through(date(2028, 7, 29), date(2028, 7, 29))
    assert standing() == "past_due"
    assert route(b) == "announcement"  # still in service during the grace period
    bill_through(date(2028, 8, 4), date(2028, 7, 30))
    assert standing() == "past_due"
    bill_through(date(2028, 8, 5), date(2028, 8, 5))  # 7 days of grace are over
    assert standing() == "suspended"
    assert route(b) == "suspended"
    got = client.get(f"/telephony/numbers/{b_id}", headers=h).json()["data"]
    assert got["status"] == "suspended"
    # Suspended accounts can't buy more.
    more = search_numbers(client, acct, area_code="303", page_size=1)[0]["phone_number"]
    refused = client.post("/telephony/numbers/purchase", json={"phone_number": more}, headers=h)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "account_past_due"

    at(date(2028, 8, 10))
    assert (
        client.put(
            "/billing/card", json={"card_token": "tok_chargeDeclined"}, headers=h
        ).status_code
        == 200
    )
    auto = {"enabled": True, "threshold": "2.00", "amount": "10.00"}
    assert client.put("/billing/auto-recharge", json=auto, headers=h).status_code == 200
    bill_through(date(2028, 8, 10), date(2028, 8, 6))
    assert standing() == "suspended" and balance() == Decimal("0.00")
    kinds = [e["kind"] for e in client.get("/billing/events", headers=h).json()["data"]]
    assert "payment.failed" in kinds

    at(date(2028, 8, 12))
    declined = client.post("/billing/wallet/topup", json={"amount": "5.00"}, headers=h)
    assert declined.status_code == 402 and declined.json()["error"]["code"] == "payment_declined"
    assert balance() == Decimal("0.00")
    assert (
        client.put(
            "/billing/card", json={"card_token": "4242 4242 4242 4242"}, headers=h
        ).status_code
        == 200
    )
    topup = client.post("/billing/wallet/topup", json={"amount": "5.00"}, headers=h)
    assert topup.status_code == 200, topup.text
    assert topup.json()["data"]["renewals_paid"] == 1  # B's 7/29 month
    assert balance() == Decimal("4.00")
    assert standing() == "good" and route(b) == "announcement"

    # 8/29 → 3, 9/29 → 2, 10/29 → 1 then below the 2.00 threshold: +10, 11/29, 12/29, 1/29.
    bill_through(date(2029, 1, 31), date(2028, 8, 13))
    assert balance() == Decimal("8.00")

    with db.session() as session:
        periods = session.execute(
            select(Renewal.number_id, Renewal.period_start).order_by(Renewal.period_start)
        ).all()
    a_periods = [p for n, p in periods if n == a_id]
    b_periods = [p for n, p in periods if n == b_id]
    assert a_periods == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30), date(2028, 5, 31)]
    assert b_periods == [date(2028, m, 29) for m in range(3, 13)] + [date(2029, 1, 29)]
    kinds = [
        t["kind"] for t in client.get("/billing/transactions?limit=200", headers=h).json()["data"]
    ]
    assert kinds.count("auto_recharge") == 1 and kinds.count("card_topup") == 1
    assert ledger_ok(db)


def test_unpaid_numbers_are_released_after_the_second_period(
    client: TestClient,
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    gateway = SandboxGateway(db)
    acct = make_partner("Lapsed", balance="2.00")
    at(date(2028, 3, 15))
    number = search_numbers(client, acct, area_code="415", page_size=1)[0]["phone_number"]
    number_id = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=acct.headers
    ).json()["data"]["id"]
    report = renewals.run(db, carrier, gateway, settings, date(2028, 4, 15))
    assert report.past_due == [acct.id]
    assert renewals.run(db, carrier, gateway, settings, date(2028, 4, 22)).suspended == [acct.id]
    assert renewals.run(db, carrier, gateway, settings, date(2028, 5, 21)).released == []
    at(date(2028, 5, 22))
    report = renewals.run(db, carrier, gateway, settings, date(2028, 5, 22))
    assert report.released == [number]
    got = client.get(f"/telephony/numbers/{number_id}", headers=acct.headers).json()["data"]
    assert got["status"] == "released"
    assert client.get(f"/routing/inbound/{number}").status_code == 404
    assert not carrier.holds(number)  # given back to the carrier (where it ages)
    events = [e["kind"] for e in client.get("/billing/events", headers=acct.headers).json()["data"]]
    assert events[:3] == [
        "numbers.released_for_nonpayment",
        "account.suspended",
        "account.past_due",
    ]
    with db.session() as session:
        assert ledger.wallet_balance(session, acct.id, "USD") == Decimal("0.00")
    assert ledger_ok(db)


def test_release_refund_policy_none_keeps_the_month_prorated_returns_unused_days(
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
) -> None:
    from didhub.api.app import create_app

    def release_ten_days_in(policy: str) -> tuple[Decimal, list[dict[str, str]]]:
        client = TestClient(
            create_app(settings.model_copy(update={"release_refund": policy}), db, carrier)
        )
        acct = make_partner(f"Refunds {policy}", balance="10.00")
        at(date(2027, 1, 31))  # bought on the 31st: the first period ends Feb 28
        number = search_numbers(client, acct, area_code="512", page_size=1)[0]["phone_number"]
        bought = client.post(
            "/telephony/numbers/purchase", json={"phone_number": number}, headers=acct.headers
        )
        assert bought.status_code == 200, bought.text
        at(date(2027, 2, 10))
        released = client.post(
            "/telephony/numbers/release",
            json={"number_id": bought.json()["data"]["id"]},
            headers=acct.headers,
        )
        assert released.status_code == 200, released.text
        lines = client.get("/billing/transactions", headers=acct.headers).json()["data"]
        with db.session() as session:
            return ledger.wallet_balance(session, acct.id, "USD"), lines

    balance, _ = release_ten_days_in("none")
    assert balance == Decimal("8.00")  # 1.00 setup + 1.00 month, nothing back

    balance, lines = release_ten_days_in("prorated")
    # Paid Jan 31 → Feb 28 (28 days); released Feb 10: 18 unused days of 1.00/28.
    assert balance == Decimal("8.64")
    refund = [line for line in lines if line["kind"] == "refund"]
    assert [r["amount"] for r in refund] == ["0.64"]
    assert "18 of 28" in refund[0]["description"]
    assert ledger_ok(db)


def test_reconcile_finishes_a_release_under_the_policy_of_the_release_it_finishes(
    make_partner: Callable[..., Acct],
    db: Database,
    carrier: SandboxCarrier,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release whose carrier answer was lost is finished by reconcile with
    the refund the release itself would have given: none for a release for
    non-payment, the configured policy (here prorated) for the owner's own."""
    from didhub.api.app import create_app
    from didhub.numbers import service as numbers

    prorated = settings.model_copy(
        update={"release_refund": "prorated", "grace_days": 0, "release_after_days": 0}
    )
    client = TestClient(create_app(prorated, db, carrier))
    acct = make_partner("Lapsed", balance="4.00")

    def balance() -> Decimal:
        with db.session() as session:
            return ledger.wallet_balance(session, acct.id, "USD")

    def buy(number: str) -> str:
        r = client.post(
            "/telephony/numbers/purchase", json={"phone_number": number}, headers=acct.headers
        )
        assert r.status_code == 200, r.text
        return str(r.json()["data"]["id"])

    def status(number_id: str) -> str:
        shown = client.get(f"/telephony/numbers/{number_id}", headers=acct.headers).json()
        return str(shown["data"]["status"])

    real_release = carrier.release

    def answer_lost_for(e164: str) -> None:
        def release(phone_number: str) -> None:
            if phone_number == e164:
                raise CarrierOutcomeUnknown("sandbox: the answer was lost")
            real_release(phone_number)

        monkeypatch.setattr(carrier, "release", release)

    found = [n["phone_number"] for n in search_numbers(client, acct, area_code="512", page_size=3)]
    at(date(2027, 1, 1))
    first = buy(found[0])
    at(date(2027, 1, 20))  # paid through Feb 20
    later = buy(found[1])
    assert balance() == Decimal("0.00")
    at(date(2027, 2, 1))  # the first number's renewal can't be paid: past due, suspended
    renewals.run(db, carrier, None, prorated)
    assert status(later) == "suspended"
    at(date(2027, 2, 2))  # released for non-payment; the later number's answer is lost
    answer_lost_for(found[1])
    renewals.run(db, carrier, None, prorated)
    assert (status(first), status(later)) == ("released", "releasing")

    monkeypatch.setattr(carrier, "release", real_release)
    report = numbers.reconcile(db, carrier, prorated, min_age=timedelta(0))
    assert report.released == [found[1]] and status(later) == "released"
    assert balance() == Decimal("0.00")  # non-payment: its 18 paid days are not refunded

    # The owner's own release, finished by reconcile: prorated, as release does.
    with db.session() as session:
        accounts.fund_wallet(session, acct.id, Decimal("2.00"), "USD", "test")
    third = buy(found[2])  # Feb 2: paid through Mar 2 (28 days)
    at(date(2027, 2, 12))
    answer_lost_for(found[2])
    lost = client.post(
        "/telephony/numbers/release", json={"number_id": third}, headers=acct.headers
    )
    assert lost.status_code == 202 and status(third) == "releasing"
    monkeypatch.setattr(carrier, "release", real_release)
    numbers.reconcile(db, carrier, prorated, min_age=timedelta(0))
    assert status(third) == "released"
    assert balance() == Decimal("0.64")  # 18 of 28 unused days of 1.00, rounded down
    lines = client.get("/billing/transactions", headers=acct.headers).json()["data"]
    assert [line["amount"] for line in lines if line["kind"] == "refund"] == ["0.64"]
    assert ledger_ok(db)
