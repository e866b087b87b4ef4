from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from conftest import Acct


def test_requests_without_a_key_or_with_a_bad_key_get_401(
    client: TestClient, partner: Acct
) -> None:
    for headers in ({}, {"Authorization": "Bearer dh_nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/tenants", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_x_api_key_header_is_accepted(client: TestClient, partner: Acct) -> None:
    assert client.get("/tenants", headers={"X-API-Key": partner.key}).status_code == 200


def test_partner_creates_and_lists_its_tenants_and_agents(
    client: TestClient, partner: Acct
) -> None:
    created = client.post("/tenants", json={"name": "  Dental Group "}, headers=partner.headers)
    assert created.status_code == 201
    tenant = created.json()["data"]
    assert tenant["name"] == "Dental Group"
    assert tenant["partner_id"] == partner.id
    assert tenant["id"].startswith("ten_")

    listed = client.get("/tenants", headers=partner.headers).json()["data"]
    assert [t["id"] for t in listed] == [tenant["id"]]

    agent = client.post(
        "/agents", json={"tenant_id": tenant["id"], "name": "Front desk"}, headers=partner.headers
    )
    assert agent.status_code == 201
    assert agent.json()["data"]["tenant_id"] == tenant["id"]
    agents = client.get("/agents", headers=partner.headers).json()["data"]
    assert [a["name"] for a in agents] == ["Front desk"]


def test_another_accounts_ids_read_as_not_found(
    client: TestClient, make_partner: Callable[..., Acct]
) -> None:
    a, b = make_partner("A"), make_partner("B")
    tenant_b = client.post("/tenants", json={"name": "B's"}, headers=b.headers).json()["data"]
    response = client.post(
        "/agents", json={"tenant_id": tenant_b["id"], "name": "x"}, headers=a.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "tenant_id"
    assert client.get("/tenants", headers=a.headers).json()["data"] == []
    assert client.get(f"/agents?tenant_id={tenant_b['id']}", headers=a.headers).status_code == 404


def test_a_tenant_key_acts_only_on_its_own_tenant(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    mine = make_tenant("Mine", partner.id)
    sibling = make_tenant("Sibling", partner.id)
    assert [t["id"] for t in client.get("/tenants", headers=mine.headers).json()["data"]] == [
        mine.id
    ]
    ok = client.post("/agents", json={"tenant_id": mine.id, "name": "Bot"}, headers=mine.headers)
    assert ok.status_code == 201
    denied = client.post(
        "/agents", json={"tenant_id": sibling.id, "name": "Bot"}, headers=mine.headers
    )
    assert denied.status_code == 404
    # A tenant can't create tenants.
    forbidden = client.post("/tenants", json={"name": "x"}, headers=mine.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"


def test_bad_bodies_name_the_field(client: TestClient, partner: Acct) -> None:
    empty = client.post("/tenants", json={"name": ""}, headers=partner.headers)
    assert empty.status_code == 422
    assert empty.json()["error"]["field"] == "name"
    unknown = client.post("/tenants", json={"name": "x", "colour": "red"}, headers=partner.headers)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "colour"
    garbage = client.post(
        "/tenants",
        content=b"{not json",
        headers={**partner.headers, "Content-Type": "application/json"},
    )
    assert garbage.status_code == 422
    assert garbage.json()["error"]["field"] == "body"
    missing = client.post("/agents", json={"name": "x"}, headers=partner.headers)
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "tenant_id"


def test_unknown_route_answers_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "field": None}
    }


def test_revoked_key_gets_401(client: TestClient, partner: Acct, db: object) -> None:
    from didhub.accounts import service as accounts
    from didhub.db import Database

    assert isinstance(db, Database)
    with db.session() as session:
        keys = accounts.list_api_keys(session, partner.id)
        assert len(keys) == 1 and partner.key.startswith(keys[0].prefix)
        assert keys[0].secret_hash != partner.key  # stored hashed
        accounts.revoke_api_key(session, keys[0].id)
    assert client.get("/tenants", headers=partner.headers).status_code == 401


def test_an_agents_sip_uri_is_checked_changed_and_cleared(
    client: TestClient, partner: Acct, make_partner: Callable[..., Acct]
) -> None:
    tenant = client.post("/tenants", json={"name": "Desk Co"}, headers=partner.headers)
    tenant_id = tenant.json()["data"]["id"]
    bad = client.post(
        "/agents",
        json={"tenant_id": tenant_id, "name": "Desk", "sip_uri": "desk@pbx.example.com"},
        headers=partner.headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sip_uri"
    made = client.post(
        "/agents",
        json={"tenant_id": tenant_id, "name": "Desk", "sip_uri": "SIP:desk@pbx.example.com:5060"},
        headers=partner.headers,
    )
    assert made.status_code == 201, made.text
    agent = made.json()["data"]
    assert agent["sip_uri"] == "sip:desk@pbx.example.com:5060"  # scheme lower-cased

    url = f"/agents/{agent['id']}"
    port = client.patch(
        url, json={"sip_uri": "sip:desk@pbx.example.com:70000"}, headers=partner.headers
    )
    assert port.status_code == 422 and port.json()["error"]["field"] == "sip_uri"
    moved = client.patch(url, json={"sip_uri": "sips:queue@10.0.0.5"}, headers=partner.headers)
    assert moved.json()["data"]["sip_uri"] == "sips:queue@10.0.0.5"
    renamed = client.patch(url, json={"name": "Front desk"}, headers=partner.headers)
    assert renamed.json()["data"] == {**moved.json()["data"], "name": "Front desk"}
    cleared = client.patch(url, json={"sip_uri": None}, headers=partner.headers)
    assert cleared.json()["data"]["sip_uri"] is None

    stranger = make_partner("Stranger")
    assert client.patch(url, json={"name": "x"}, headers=stranger.headers).status_code == 404
