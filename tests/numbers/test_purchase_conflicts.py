"""A purchase answers 409 "just bought by someone else" only when the
live-number unique index refused its number, never for another integrity
error (a bug would otherwise read as a sold number): the classifier checked on
the errors each database really raises."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from conftest import Acct
from didhub import clock
from didhub.db import Database, new_id
from didhub.numbers.models import PhoneNumber
from didhub.numbers.service.orders import live_number_taken


def _row(owner: str, e164: str = "+15015550123") -> dict[str, object]:
    return {
        "id": new_id("num"),
        "e164": e164,
        "country_code": "US",
        "phone_number_type": "local",
        "features": [],
        "status": "active",
        "is_managed": True,
        "carrier": "sandbox",
        "owner_id": owner,
        "monthly_cost": Decimal("1.00"),
        "upfront_cost": Decimal("1.00"),
        "currency": "USD",
        "created_at": clock.now(),
    }


def _refused(db: Database, row: dict[str, object]) -> IntegrityError:
    with pytest.raises(IntegrityError) as refused, db.session() as session:
        session.execute(insert(PhoneNumber), [row])
    return refused.value


def test_only_the_live_number_index_reads_as_a_number_taken(db: Database, partner: Acct) -> None:
    with db.session() as session:
        session.execute(insert(PhoneNumber), [_row(partner.id)])
    assert live_number_taken(_refused(db, _row(partner.id)))  # the same number, live twice
    # An owner that doesn't exist: a foreign-key error, not a sale.
    assert not live_number_taken(_refused(db, _row("par_nobody", "+15015550124")))
