from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub import clock
from didhub.db import Database
from didhub.numbers.schemas import SearchAnswer


def wallet(client: TestClient, acct: Acct) -> Decimal:
    return Decimal(client.get("/billing/wallet", headers=acct.headers).json()["data"]["balance"])


def count_numbers(client: TestClient, acct: Acct, **params: Any) -> int:
    response = client.get(
        "/telephony/numbers", params={"status": "all", **params}, headers=acct.headers
    )
    return len(response.json()["data"])


# ------------------------------------------------------------------ search


def test_search_by_state_and_city_answers_the_seed_shape(client: TestClient, partner: Acct) -> None:
    found = search_numbers(
        client, partner, country_code="US", administrative_area="AR", locality="Little Rock"
    )
    assert len(found) == 20  # default page_size
    for item in found:
        assert item["phone_number"].startswith("+1")
        assert item["phone_number_type"] == "local"
        assert item["locality"] == "Little Rock"
        assert item["administrative_area"] == "AR"
        assert item["rate_center"]
        assert item["cost_information"] == {
            "monthly_cost": "1.00",
            "upfront_cost": "1.00",
            "currency": "USD",
        }
    assert len({i["phone_number"] for i in found}) == 20


def test_a_search_answer_is_exactly_its_documented_model(client: TestClient, partner: Acct) -> None:
    """The search answer is sent without FastAPI checking it against its
    response model (outputs.sent): the check is here, with the model's
    unknown fields refused, for each kind of search."""
    for body in (
        {"area_code": "501", "page_size": 3},
        {"phone_number_type": "toll-free", "pattern": "877-XXX-XXXX", "page_size": 2},
        {"administrative_area": "TX", "page": 2, "page_size": 2},
        {"area_code": "000"},  # nothing found
    ):
        answer = client.post("/telephony/numbers/search", json=body, headers=partner.headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        shown = answer.json()
        assert SearchAnswer.model_validate(shown).model_dump(exclude_unset=True) == shown


def test_search_filters_area_code_nxx_and_rate_center(client: TestClient, partner: Acct) -> None:
    first = search_numbers(client, partner, area_code="501", page_size=1)[0]
    nxx = first["phone_number"][5:8]
    found = search_numbers(
        client, partner, area_code="501", nxx=nxx, rate_center=first["rate_center"]
    )
    assert found
    assert all(i["phone_number"].startswith(f"+1501{nxx}") for i in found)
    assert all(i["rate_center"] == first["rate_center"] for i in found)


def test_toll_free_vanity_search(client: TestClient, partner: Acct) -> None:
    found = search_numbers(
        client, partner, phone_number_type="toll-free", pattern="877-555-XXXX", page_size=50
    )
    assert len(found) == 50
    assert all(i["phone_number"].startswith("+1877555") for i in found)
    assert all(i["cost_information"]["monthly_cost"] == "2.50" for i in found)
    assert all(i["cost_information"]["upfront_cost"] == "5.00" for i in found)
    words = search_numbers(client, partner, phone_number_type="toll-free", pattern="800-FLOWERS")
    assert all(i["phone_number"] == "+18003569377" for i in words)


def test_search_pages_do_not_overlap(client: TestClient, partner: Acct) -> None:
    one = search_numbers(client, partner, area_code="212", page=1, page_size=10)
    two = search_numbers(client, partner, area_code="212", page=2, page_size=10)
    assert len(one) == len(two) == 10
    assert not {i["phone_number"] for i in one} & {i["phone_number"] for i in two}


def test_search_gb_and_au_local_numbers(client: TestClient, partner: Acct) -> None:
    gb = search_numbers(client, partner, country_code="GB", page_size=5)
    au = search_numbers(client, partner, country_code="au", page_size=5)
    assert gb and all(i["phone_number"].startswith("+44") for i in gb)
    assert au and all(i["phone_number"].startswith("+61") for i in au)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"page_size": 500}, "page_size"),
        ({"page": 0}, "page"),
        ({"country_code": "ZZ"}, "country_code"),
        ({"country_code": "Narnia"}, "country_code"),
        ({"phone_number_type": "satellite"}, "phone_number_type"),
        ({"area_code": "5O1"}, "area_code"),
        ({"administrative_area": "Arkansas!"}, "administrative_area"),
        ({"pattern": "877-555-####"}, "pattern"),
        ({"favourite": 1}, "favourite"),
    ],
)
def test_bad_search_input_gets_422_naming_the_field(
    client: TestClient, partner: Acct, body: dict[str, Any], field: str
) -> None:
    response = client.post("/telephony/numbers/search", json=body, headers=partner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == field


def test_city_autocomplete(client: TestClient, partner: Acct) -> None:
    response = client.get(
        "/telephony/localities",
        params={"country_code": "US", "administrative_area": "AR", "q": "lit"},
        headers=partner.headers,
    )
    assert response.status_code == 200
    names = [row["locality"] for row in response.json()["data"]]
    assert "Little Rock" in names
    assert all(row["administrative_area"] == "AR" for row in response.json()["data"])
    assert all("lit" in n.lower() for n in names)


# ------------------------------------------------------------------ quote and holds


def test_quote_totals_and_holds_numbers_from_other_buyers(
    client: TestClient, make_partner: Callable[..., Acct]
) -> None:
    me, other = make_partner("me"), make_partner("other")
    local = search_numbers(client, me, area_code="415", page_size=1)[0]["phone_number"]
    toll = search_numbers(client, me, phone_number_type="toll-free", page_size=1)[0]["phone_number"]
    response = client.post(
        "/telephony/numbers/quote", json={"phone_numbers": [local, toll]}, headers=me.headers
    )
    assert response.status_code == 200, response.text
    q = response.json()["data"]
    assert q["monthly_total"] == "3.50"
    assert q["upfront_total"] == "6.00"
    assert q["total"] == "9.50"
    assert q["wallet_balance"] == "100.00" and q["sufficient_funds"] is True
    # Hidden from other buyers, visible to me; another buyer can't buy it.
    others = search_numbers(client, other, area_code="415", page_size=50)
    assert local not in {i["phone_number"] for i in others}
    mine = search_numbers(client, me, area_code="415", page_size=1)
    assert mine[0]["phone_number"] == local
    taken = client.post(
        "/telephony/numbers/purchase", json={"phone_number": local}, headers=other.headers
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "number_unavailable"
    assert wallet(client, other) == Decimal("100.00")
    # The holder buys it.
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_number": local}, headers=me.headers
    )
    assert bought.status_code == 200


def test_hold_expires_by_itself(client: TestClient, make_partner: Callable[..., Acct]) -> None:
    me, other = make_partner("me"), make_partner("other")
    number = search_numbers(client, me, area_code="415", page_size=1)[0]["phone_number"]
    client.post("/telephony/numbers/quote", json={"phone_numbers": [number]}, headers=me.headers)
    later = clock.now() + timedelta(minutes=11)
    clock.set_clock(lambda: later)
    assert number in {
        i["phone_number"] for i in search_numbers(client, other, area_code="415", page_size=5)
    }
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=other.headers
    )
    assert response.status_code == 200, response.text


def test_quote_of_a_sold_or_malformed_number(client: TestClient, partner: Acct) -> None:
    number = search_numbers(client, partner, area_code="312", page_size=1)[0]["phone_number"]
    buy(client, partner, number)
    sold = client.post(
        "/telephony/numbers/quote", json={"phone_numbers": [number]}, headers=partner.headers
    )
    assert sold.status_code == 409
    bad = client.post(
        "/telephony/numbers/quote", json={"phone_numbers": ["+1555"]}, headers=partner.headers
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "phone_numbers"


# ------------------------------------------------------------------ purchase


def test_purchase_single_number_debits_wallet_and_lists_it_unassigned(
    client: TestClient, partner: Acct, db: Database
) -> None:
    number = search_numbers(client, partner, administrative_area="AR", page_size=1)[0]
    response = client.post(
        "/telephony/numbers/purchase",
        json={"phone_number": number["phone_number"]},
        headers=partner.headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["phone_number"] == number["phone_number"]
    assert data["status"] == "active"
    assert data["is_managed"] is True
    assert data["id"].startswith("num_")
    assert data["assigned_to"] == "Unassigned"
    assert data["renews_on"] and data["purchased_at"]
    for stamp in ("created_at", "purchased_at"):  # UTC with its offset, on SQLite too
        assert datetime.fromisoformat(data[stamp]).utcoffset() == timedelta(0)
    assert response.json()["meta"]["charged"] == "2.00"
    assert wallet(client, partner) == Decimal("98.00")
    listed = client.get("/telephony/numbers", headers=partner.headers).json()["data"]
    assert [n["phone_number"] for n in listed] == [number["phone_number"]]
    # A sold number is never offered again.
    again = search_numbers(client, partner, area_code=number["phone_number"][2:5], page_size=50)
    assert number["phone_number"] not in {i["phone_number"] for i in again}
    txns = client.get("/billing/transactions", headers=partner.headers).json()["data"]
    assert [t["amount"] for t in txns] == ["-2.00", "100.00"]
    assert ledger_ok(db)


def test_purchase_several_numbers(client: TestClient, partner: Acct) -> None:
    found = search_numbers(client, partner, area_code="646", page_size=3)
    answer = buy(client, partner, *[f["phone_number"] for f in found])
    assert [n["status"] for n in answer["data"]] == ["active"] * 3
    assert answer["meta"]["charged"] == "6.00"
    assert wallet(client, partner) == Decimal("94.00")


def test_insufficient_funds_is_402_and_changes_nothing(
    client: TestClient, make_partner: Callable[..., Acct], db: Database
) -> None:
    poor = make_partner("poor", balance="6.00")
    toll = search_numbers(client, poor, phone_number_type="toll-free", page_size=2)
    response = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": [t["phone_number"] for t in toll]},
        headers=poor.headers,
    )
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert "15.00" in response.json()["error"]["message"]
    assert wallet(client, poor) == Decimal("6.00")
    assert count_numbers(client, poor) == 0
    assert len(client.get("/billing/transactions", headers=poor.headers).json()["data"]) == 1
    assert ledger_ok(db)


def test_number_taken_is_409(client: TestClient, make_partner: Callable[..., Acct]) -> None:
    a, b = make_partner("a"), make_partner("b")
    number = search_numbers(client, a, area_code="305", page_size=1)[0]["phone_number"]
    buy(client, a, number)
    response = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=b.headers
    )
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "number_unavailable",
        "message": f"{number} is not available",
        "field": "phone_number",
    }
    assert wallet(client, b) == Decimal("100.00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"phone_number": "+1415555"}, "phone_number"),
        ({"phone_number": "+1 999 555 1234"}, "phone_number"),
        ({"phone_numbers": []}, "phone_numbers"),
        ({"phone_number": "+14155550100", "phone_numbers": ["+14155550101"]}, "body"),
    ],
)
def test_bad_purchase_input(
    client: TestClient, partner: Acct, body: dict[str, Any], field: str
) -> None:
    response = client.post("/telephony/numbers/purchase", json=body, headers=partner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert wallet(client, partner) == Decimal("100.00")


def test_purchase_replay_with_idempotency_key_charges_once(
    client: TestClient, partner: Acct, db: Database
) -> None:
    number = search_numbers(client, partner, area_code="617", page_size=1)[0]["phone_number"]
    headers = {**partner.headers, "Idempotency-Key": "order-42"}
    first = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=headers
    )
    second = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=headers
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert wallet(client, partner) == Decimal("98.00")
    other = client.post(
        "/telephony/numbers/purchase", json={"phone_number": "+16175550100"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert ledger_ok(db)


def test_failed_request_frees_its_idempotency_key(
    client: TestClient, make_partner: Callable[..., Acct]
) -> None:
    poor = make_partner("poor", balance="1.00")
    number = search_numbers(client, poor, area_code="617", page_size=1)[0]["phone_number"]
    headers = {**poor.headers, "Idempotency-Key": "try-1"}
    body = {"phone_number": number}
    assert client.post("/telephony/numbers/purchase", json=body, headers=headers).status_code == 402
    from conftest import _topup

    _topup(client, poor, "5.00")
    assert client.post("/telephony/numbers/purchase", json=body, headers=headers).status_code == 200


# ------------------------------------------------------------------ inventory


def test_inventory_filters_and_cursor_pagination(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("T", partner.id)
    found = search_numbers(client, partner, area_code="720", page_size=5)
    ids = [n["id"] for n in buy(client, partner, *[f["phone_number"] for f in found])["data"]]
    toll = search_numbers(client, partner, phone_number_type="toll-free", page_size=1)
    buy(client, partner, toll[0]["phone_number"])
    client.patch(
        f"/telephony/numbers/{ids[0]}", json={"tenant_id": tenant.id}, headers=partner.headers
    )

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/telephony/numbers", params=params, headers=partner.headers).json()
        seen += [n["id"] for n in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6

    def ids_for(**params: Any) -> list[str]:
        return [
            n["id"]
            for n in client.get(
                "/telephony/numbers", params=params, headers=partner.headers
            ).json()["data"]
        ]

    assert ids_for(tenant_id=tenant.id) == [ids[0]]
    assert ids_for(assigned="true") == [ids[0]]
    assert len(ids_for(assigned="false")) == 5
    assert len(ids_for(phone_number_type="toll-free")) == 1
    assert ids_for(q=found[1]["phone_number"][-7:]) == [ids[1]]
    assert ids_for(status="released") == []
    bad = client.get("/telephony/numbers", params={"status": "sold"}, headers=partner.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    bad_cursor = client.get("/telephony/numbers", params={"cursor": "zzz"}, headers=partner.headers)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
    # The tenant sees the number assigned to it, and only that one.
    assert [
        n["id"] for n in client.get("/telephony/numbers", headers=tenant.headers).json()["data"]
    ] == [ids[0]]


def test_get_number_shows_tenant_assignments_prices_and_dates(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental", partner.id)
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    patched = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": tenant.id}, headers=partner.headers
    )
    assert patched.status_code == 200
    assert patched.json()["data"]["assigned_to"] == "Dental"
    got = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert got["tenant_id"] == tenant.id and got["tenant_name"] == "Dental"
    assert got["assignments"] == {"inbound": None, "outbound": None}
    assert got["cost_information"]["monthly_cost"] == "1.00"
    assert got["purchased_at"] is not None
    unassigned = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": None}, headers=partner.headers
    )
    assert unassigned.json()["data"]["assigned_to"] == "Unassigned"


def test_other_accounts_numbers_are_404(
    client: TestClient, make_partner: Callable[..., Acct]
) -> None:
    a, b = make_partner("a"), make_partner("b")
    number = search_numbers(client, a, area_code="303", page_size=1)[0]["phone_number"]
    number_id = buy(client, a, number)["data"][0]["id"]
    assert client.get(f"/telephony/numbers/{number_id}", headers=b.headers).status_code == 404
    for path, body in [
        ("/telephony/numbers/release", {"number_id": number_id}),
        ("/telephony/numbers/unassign", {"number_id": number_id, "assignment_type": "inbound"}),
    ]:
        assert client.post(path, json=body, headers=b.headers).status_code == 404
    patch = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": None}, headers=b.headers
    )
    assert patch.status_code == 404
    assert count_numbers(client, b) == 0


# ------------------------------------------------------------------ agents and routing


def test_assign_inbound_and_outbound_to_different_agents_and_route(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    a1 = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Receptionist"}, headers=partner.headers
    ).json()["data"]
    a2 = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Dialer"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]

    # Not configured yet: the default announcement.
    route = client.get(f"/routing/inbound/{number}")
    assert route.status_code == 200
    assert route.json()["data"]["action"] == "announcement"
    assert route.json()["data"]["text"] == "This number isn't configured"

    inbound = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": a1["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert inbound.status_code == 200, inbound.text
    outbound = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": a2["id"], "assignment_type": "outbound"},
        headers=partner.headers,
    )
    assert outbound.status_code == 200
    got = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert got["tenant_id"] == tenant.id  # followed the agent's tenant
    assert got["assignments"]["inbound"]["agent_id"] == a1["id"]
    assert got["assignments"]["outbound"]["agent_id"] == a2["id"]
    route = client.get(f"/routing/inbound/{number}").json()["data"]
    assert route["action"] == "agent" and route["agent_id"] == a1["id"]

    un = client.post(
        "/telephony/numbers/unassign",
        json={"number_id": number_id, "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert un.status_code == 200
    assert client.get(f"/routing/inbound/{number}").json()["data"]["action"] == "announcement"
    again = client.post(
        "/telephony/numbers/unassign",
        json={"number_id": number_id, "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert again.status_code == 404
    got = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert got["assignments"]["inbound"] is None
    assert got["assignments"]["outbound"]["agent_id"] == a2["id"]


def test_assign_errors(client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]) -> None:
    t1, t2 = make_tenant("One", partner.id), make_tenant("Two", partner.id)
    agent2 = client.post(
        "/agents", json={"tenant_id": t2.id, "name": "x"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code="602", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": t1.id}, headers=partner.headers
    )
    mismatch = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent2["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert mismatch.status_code == 409
    assert mismatch.json()["error"]["code"] == "tenant_mismatch"
    wrong_type = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent2["id"], "assignment_type": "both"},
        headers=partner.headers,
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["field"] == "assignment_type"
    no_agent = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": "agt_nope", "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert no_agent.status_code == 404 and no_agent.json()["error"]["field"] == "agent_id"
    no_tenant = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": "ten_nope"}, headers=partner.headers
    )
    assert no_tenant.status_code == 404 and no_tenant.json()["error"]["field"] == "tenant_id"


def test_routing_unknown_and_malformed_numbers(client: TestClient) -> None:
    unknown = client.get("/routing/inbound/+14155550123")
    assert unknown.status_code == 404
    malformed = client.get("/routing/inbound/12")
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "phone_number"


# ------------------------------------------------------------------ release


def test_release_stops_billing_ends_assignments_keeps_history(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct], db: Database
) -> None:
    tenant = make_tenant("Clinic", partner.id)
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "A"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code="404", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    headers = {**partner.headers, "Idempotency-Key": "rel-1"}
    released = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=headers
    )
    assert released.status_code == 200, released.text
    data = released.json()["data"]
    assert data["status"] == "released"
    assert data["released_at"] is not None and data["renews_on"] is None
    assert data["assignments"] == {"inbound": None, "outbound": None}
    replay = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=headers
    )
    assert replay.status_code == 200 and replay.json() == released.json()
    # History kept, out of the live list, not routable, can't be assigned.
    assert client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).status_code == 200
    assert count_numbers(client, partner, status="released") == 1
    assert client.get("/telephony/numbers", headers=partner.headers).json()["data"] == []
    assert client.get(f"/routing/inbound/{number}").status_code == 404
    assign = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert assign.status_code == 409 and assign.json()["error"]["code"] == "number_not_active"
    patch = client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": tenant.id}, headers=partner.headers
    )
    assert patch.status_code == 409
    twice = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=partner.headers
    )
    assert twice.status_code == 409
    # The carrier can sell it again; wallet only paid once.
    assert wallet(client, partner) == Decimal("98.00")
    assert ledger_ok(db)


def test_tenant_cannot_release_its_partners_number(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("T", partner.id)
    number = search_numbers(client, partner, area_code="702", page_size=1)[0]["phone_number"]
    number_id = buy(client, partner, number)["data"][0]["id"]
    client.patch(
        f"/telephony/numbers/{number_id}", json={"tenant_id": tenant.id}, headers=partner.headers
    )
    response = client.post(
        "/telephony/numbers/release", json={"number_id": number_id}, headers=tenant.headers
    )
    assert response.status_code == 403


def test_platform_tenant_buys_and_assigns_its_own_agents(
    client: TestClient, make_tenant: Callable[..., Acct]
) -> None:
    """The AI-agent seed: a tenant directly under the platform buys with its wallet."""
    tenant = make_tenant("Voice AI Co", None, balance="10.00")
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "Sales bot"}, headers=tenant.headers
    ).json()["data"]
    number = search_numbers(client, tenant, area_code="415", page_size=1)[0]["phone_number"]
    bought = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=tenant.headers
    )
    assert bought.status_code == 200
    number_id = bought.json()["data"]["id"]
    assert bought.json()["data"]["tenant_id"] == tenant.id
    for kind in ("inbound", "outbound"):
        r = client.post(
            "/telephony/numbers/assign",
            json={"number_id": number_id, "agent_id": agent["id"], "assignment_type": kind},
            headers=tenant.headers,
        )
        assert r.status_code == 200
    assert wallet(client, tenant) == Decimal("8.00")
