"""Bulk assignment to one tenant (issue 17, item 10): one service function,
``assign_tenant_many``, behind the API's ``POST /telephony/numbers/assign-tenant``
and the dashboard's "Assign selected"; all or none."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub.db import Database
from didhub.numbers.models import PhoneNumber


def _bought(client: TestClient, db: Database, partner: Acct, count: int) -> list[str]:
    found = [n["phone_number"] for n in search_numbers(client, partner, administrative_area="AR")]
    buy(client, partner, *found[:count])
    with db.session() as session:
        return [session.query(PhoneNumber).filter_by(e164=e).one().id for e in found[:count]]


def test_many_numbers_go_to_one_tenant_in_one_call(
    client: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", partner.id)
    ids = _bought(client, db, partner, 3)
    answer = client.post(
        "/telephony/numbers/assign-tenant",
        json={"number_ids": ids, "tenant_id": tenant.id},
        headers=partner.headers,
    )
    assert answer.status_code == 200, answer.text
    assert sorted(n["id"] for n in answer.json()["data"]) == sorted(ids)
    assert {n["tenant_id"] for n in answer.json()["data"]} == {tenant.id}
    # The tenant sees them with its own key.
    mine = client.get("/telephony/numbers", headers=tenant.headers).json()["data"]
    assert sorted(n["id"] for n in mine) == sorted(ids)
    assert ledger_ok(db)

    back = client.post(
        "/telephony/numbers/assign-tenant",
        json={"number_ids": ids[:2], "tenant_id": None},
        headers=partner.headers,
    )
    assert back.status_code == 200
    with db.session() as session:
        assert [session.get_one(PhoneNumber, i).tenant_id for i in ids] == [None, None, tenant.id]


def test_one_unknown_number_assigns_none(
    client: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", partner.id)
    ids = _bought(client, db, partner, 2)
    answer = client.post(
        "/telephony/numbers/assign-tenant",
        json={"number_ids": [*ids, "num_nope"], "tenant_id": tenant.id},
        headers=partner.headers,
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["field"] == "number_id"
    with db.session() as session:
        assert [session.get_one(PhoneNumber, i).tenant_id for i in ids] == [None, None]
    empty = client.post(
        "/telephony/numbers/assign-tenant",
        json={"number_ids": [], "tenant_id": tenant.id},
        headers=partner.headers,
    )
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "number_ids"
