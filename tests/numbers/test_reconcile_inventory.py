"""Reconciliation against the carrier's own list of our numbers: a number the
carrier no longer holds stops billing (and is billed again once it is back);
a number it bills us for that we don't sell is reported."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub import clock
from didhub.billing.models import Renewal
from didhub.billing.service import renewals
from didhub.carriers.models import SandboxAllocation
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.wallet.models import AccountEvent


def test_a_number_the_carrier_lost_stops_billing_and_unsold_ones_are_listed(
    client: TestClient, partner: Acct, db: Database, carrier: SandboxCarrier, settings: Settings
) -> None:
    found = search_numbers(client, partner, area_code="512", page_size=2)
    kept, lost = buy(client, partner, *[f["phone_number"] for f in found])["data"]
    with db.session() as session:  # the carrier bills us for a number we never sold
        session.add(
            SandboxAllocation(
                e164="+15125550142", order_id="ord_elsewhere", status="active",
                allocated_at=clock.now(),
            )
        )  # fmt: skip
    carrier.lose(lost["phone_number"])

    report = numbers.reconcile(db, carrier, settings, timedelta(0))
    assert report.missing_at_carrier == [lost["phone_number"]]
    assert report.not_ours == ["+15125550142"]
    shown = client.get(f"/telephony/numbers/{lost['id']}", headers=partner.headers).json()
    assert shown["data"]["carrier_missing_since"] is not None
    with db.session() as session:
        told = session.scalars(
            select(AccountEvent).where(AccountEvent.kind == "number.carrier_missing")
        ).one()
        assert lost["phone_number"] in told.message and told.account_id == partner.id

    # A month later only the number the carrier still holds is billed.
    month_later = clock.now() + timedelta(days=32)
    clock.set_clock(lambda: month_later)
    run = renewals.run(db, carrier, None, settings)
    assert run.renewals == 1 and run.charged == Decimal("1.00")
    with db.session() as session:
        billed = set(session.scalars(select(Renewal.number_id)))
    assert billed == {kept["id"]}

    # The carrier lists it again (a port back, a mistake fixed): billed again.
    with db.session() as session:
        row = session.get_one(SandboxAllocation, lost["phone_number"])
        row.status = "active"
    again = numbers.reconcile(db, carrier, settings, timedelta(0))
    assert again.found_again == [lost["phone_number"]] and again.missing_at_carrier == []
    assert renewals.run(db, carrier, None, settings).renewals == 1
    assert ledger_ok(db)


def test_nothing_is_flagged_when_the_carrier_cannot_list(
    client: TestClient, partner: Acct, db: Database, carrier: SandboxCarrier, settings: Settings
) -> None:
    found = search_numbers(client, partner, area_code="512", page_size=1)
    buy(client, partner, found[0]["phone_number"])

    def down() -> list[str]:
        from didhub.carriers.base import CarrierFailure

        raise CarrierFailure("carrier API down")

    carrier.owned_numbers = down  # type: ignore[method-assign]
    report = numbers.reconcile(db, carrier, settings, timedelta(0))
    assert report.missing_at_carrier is None and report.not_ours is None
