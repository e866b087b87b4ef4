"""Input no database or Decimal can take (NUL bytes, amounts of 1e28 and more,
integers past BIGINT, ``true`` as a number) is a 422 naming the field, not a
500, on both databases; nothing is written."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct, ledger_ok
from dashboard import PASSWORD, sign_in
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app as cli
from didhub.config import Settings
from didhub.db import Database

NUL = "a\x00b"
HOOK = "https://example.com/hook"
ONE = "+14155550100"


EDGE = {"Authorization": "Bearer edge-token-for-tests"}


@pytest.fixture
def api(settings: Settings, db: Database, carrier: SandboxCarrier) -> TestClient:
    """The app as a caller sees it (a server error is an answer, not a raise),
    with a SIP edge token for the edge's endpoints."""
    with_edge = settings.model_copy(update={"edge_token": "edge-token-for-tests"})
    return TestClient(create_app(with_edge, db, carrier), raise_server_exceptions=False)


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field, error


def _counts(api: TestClient, acct: Acct) -> dict[str, int]:
    paths = ("/tenants", "/agents", "/e911/addresses", "/webhooks", "/e911/locations")
    return {p: len(api.get(p, headers=acct.headers).json()["data"]) for p in paths}


def test_nul_bytes_in_request_bodies_are_refused_naming_the_field(
    api: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("T", partner.id)
    before = _counts(api, partner)
    record = {
        "phone_number": "+14155550100",
        "direction": "inbound",
        "started_at": "2024-01-01T00:00:00Z",
        "duration_seconds": 3,
        "call_id": NUL,
    }
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("post", "/tenants", {"name": NUL}, "name"),
        ("post", "/agents", {"tenant_id": tenant.id, "name": NUL}, "name"),
        ("post", "/agents", {"tenant_id": NUL, "name": "Desk"}, "tenant_id"),
        ("post", "/agents", {"tenant_id": tenant.id, "name": "D", "sip_uri": NUL}, "sip_uri"),
        (
            "post",
            "/e911/addresses",
            {"street": NUL, "city": "San Francisco", "state": "CA", "postal_code": "94105"},
            "street",
        ),
        ("post", "/e911/locations", {"name": NUL, "address_id": "x"}, "name"),
        (
            "post",
            "/webhooks",
            {"url": "https://example.com/hook", "description": NUL},
            "description",
        ),
        ("post", "/webhooks", {"url": "https://example.com/hook", "events": [NUL]}, "events"),
        ("patch", "/settings", {"default_cnam": NUL}, "default_cnam"),
        (
            "patch",
            "/settings",
            {"unassigned": {"action": "announcement", "text": NUL}},
            "unassigned.text",
        ),
        (
            "post",
            "/telephony/numbers/quote",
            {"phone_numbers": [ONE, NUL]},
            "phone_numbers",
        ),
        ("post", "/telephony/numbers/search", {"locality": NUL}, "locality"),
        (
            "post",
            "/telephony/numbers/import",
            {"provider": "twilio", "credentials": {"account_sid": NUL}, "phone_numbers": []},
            "credentials",
        ),
    ]
    for method, path, body, field in cases:
        _refused(api.request(method, path, json=body, headers=partner.headers), field)
    usage = api.post("/billing/usage", json={"records": [record]}, headers=EDGE)
    _refused(usage, "records[0].call_id")
    assert _counts(api, partner) == before


def test_nul_bytes_in_path_and_query_parameters_are_refused_naming_them(
    api: TestClient, partner: Acct
) -> None:
    cases = [
        ("/telephony/numbers/a%00b", "number_id"),
        ("/telephony/numbers/a%00b/e911", "number_id"),
        ("/telephony/numbers?tenant_id=a%00b", "tenant_id"),
        ("/telephony/numbers?q=a%00b", "q"),
        ("/telephony/localities?q=a%00b", "q"),
        ("/agents?tenant_id=a%00b", "tenant_id"),
        ("/e911/addresses/a%00b", "address_id"),
        ("/events?number_id=a%00b", "number_id"),
        ("/events/a%00b", "event_id"),
        ("/webhooks/a%00b", "webhook_id"),
        ("/tenants/a%00b/settings", "tenant_id"),
        ("/billing/invoices/2024-0%00", "month"),
    ]
    for path, field in cases:
        _refused(api.get(path, headers=partner.headers), field)
    _refused(api.get("/routing/inbound/%2B1415555%000100", headers=EDGE), "e164")


def test_nul_bytes_in_dashboard_forms_get_the_dashboard_error_page(
    api: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("T", partner.id)
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", PASSWORD)
    token = sign_in(api, email="ops@acme.example", password=PASSWORD)
    before = _counts(api, partner)
    forms = [
        ("/dashboard/tenants", {"name": NUL}, "name"),
        ("/dashboard/agents", {"name": NUL, "tenant_id": tenant.id}, "name"),
        ("/dashboard/settings/account", {"default_cnam": NUL}, "default_cnam"),
        (
            "/dashboard/settings/account",
            {"unassigned_action": "announcement", "unassigned_text": NUL},
            "unassigned_text",
        ),
        ("/dashboard/billing/topup", {"amount": NUL}, "amount"),
    ]
    for path, form, field in forms:
        answer = api.post(path, data={"csrf_token": token, **form}, follow_redirects=False)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert "must not contain NUL bytes" in answer.text and field in answer.text
    assert _counts(api, partner) == before


def test_amounts_of_1e28_and_more_are_refused_naming_the_field(
    api: TestClient, partner: Acct, db: Database
) -> None:
    wallet = api.get("/billing/wallet", headers=partner.headers).json()["data"]
    huge: list[Any] = ["1e28", 1e28, "1e309", "-1e28", 10**30]
    for amount in huge:
        cases = [
            ("post", "/billing/wallet/topup", {"amount": amount}, "amount"),
            ("put", "/billing/auto-recharge", {"enabled": False, "threshold": amount}, "threshold"),
            ("put", "/billing/auto-recharge", {"enabled": False, "amount": amount}, "amount"),
            ("put", "/billing/retail-prices", {"monthly": amount}, "monthly"),
            ("put", "/billing/retail-prices", {"monthly": "1", "setup": amount}, "setup"),
            (
                "put",
                "/billing/retail-prices",
                {"monthly": "1", "per_minute_inbound": amount},
                "per_minute_inbound",
            ),
            (
                "put",
                "/billing/retail-prices",
                {"monthly": "1", "per_minute_outbound": amount},
                "per_minute_outbound",
            ),
        ]
        for method, path, body, field in cases:
            _refused(api.request(method, path, json=body, headers=partner.headers), field)
    assert api.get("/billing/wallet", headers=partner.headers).json()["data"] == wallet
    assert api.get("/billing/retail-prices", headers=partner.headers).json()["data"] == []
    assert ledger_ok(db)


def test_integers_past_bigint_and_true_as_a_number_are_refused(
    api: TestClient, partner: Acct
) -> None:
    past = 2**63
    _refused(api.get(f"/billing/transactions?before={past}", headers=partner.headers), "before")
    _refused(api.get(f"/billing/transactions?before={10**30}", headers=partner.headers), "before")
    for seq in (str(past), "9" * 40, "²"):
        cursor = base64.urlsafe_b64encode(f"evt:{seq}".encode()).decode().rstrip("=")
        _refused(api.get(f"/events?cursor={cursor}", headers=partner.headers), "cursor")
    for page in (True, False):
        body = {"area_code": "415", "page": page}
        _refused(api.post("/telephony/numbers/search", json=body, headers=partner.headers), "page")
    body = {"area_code": "415", "page_size": True}
    _refused(api.post("/telephony/numbers/search", json=body, headers=partner.headers), "page_size")
    _refused(
        api.post("/billing/wallet/topup", json={"amount": True}, headers=partner.headers), "amount"
    )
    record = {
        "phone_number": "+14155550100",
        "direction": "inbound",
        "started_at": "2024-01-01T00:00:00Z",
        "call_id": "c1",
    }
    for duration in (past, True):
        body = {"records": [{**record, "duration_seconds": duration}]}
        usage = api.post("/billing/usage", json=body, headers=EDGE)
        _refused(usage, "records[0].duration_seconds")
    # The largest stored integer is still a fine cursor: an empty page.
    last = api.get(f"/billing/transactions?before={past - 1}", headers=partner.headers)
    assert last.status_code == 200 and last.json()["meta"]["next_before"] is None
    cursor = base64.urlsafe_b64encode(f"evt:{past - 1}".encode()).decode().rstrip("=")
    events = api.get(f"/events?cursor={cursor}", headers=partner.headers)
    assert events.status_code == 200 and events.json()["meta"]["next_cursor"] is None


def test_the_cli_refuses_a_balance_of_1e309_naming_it(cli_env: None, db: Database) -> None:
    runner = CliRunner()
    for balance in ("1e309", "1e28", "99999999999999999999999999999"):
        result = runner.invoke(cli, ["partner", "create", "Acme", "--balance", balance])
        assert result.exit_code == 1, result.output
        assert "validation_error (balance)" in result.output, result.output
    listed = runner.invoke(cli, ["partner", "create", "Acme", "--balance", "5", "--json"])
    assert json.loads(listed.output)["balance"] == "5.00"
    assert ledger_ok(db)


@pytest.mark.parametrize(
    ("path", "body", "content_type", "says"),
    [
        # schemathesis's find: a part without a name.
        ("/porting/orders/ord_x/documents", b"--b0\r\n[]--b0--\r\n",
         "multipart/form-data; boundary=b0", "not a valid form"),
        ("/porting/orders/ord_x/documents",
         b"--b0\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0--\r\n",
         "multipart/form-data; boundary=b0", "not a valid form"),
        ("/agents", b"\xff\xfe{", "application/json", "not valid JSON"),
    ],
)  # fmt: skip
def test_a_body_the_framework_cannot_read_is_a_422_naming_the_body(
    api: TestClient, partner: Acct, path: str, body: bytes, content_type: str, says: str
) -> None:
    answer = api.post(
        path,
        content=body,
        headers={**partner.headers, "Content-Type": content_type},
    )
    _refused(answer, "body")
    assert says in answer.json()["error"]["message"]
