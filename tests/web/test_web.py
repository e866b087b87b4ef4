"""The dashboard without a browser: sessions, CSRF, tenancy, headers, and that its
actions are the services' (idempotent purchase, nothing charged on refusal)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, buy, search_numbers
from dashboard import PASSWORD, csrf_of, sign_in
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers.models import PhoneNumber
from didhub.wallet import ledger
from didhub.wallet.models import CardCharge
from didhub.web import session as web_session


@pytest.fixture
def user(db: Database, partner: Acct) -> Acct:
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", PASSWORD)
    return partner


def test_sign_in_with_a_password_then_out(client: TestClient, user: Acct) -> None:
    login = client.get("/dashboard/login")
    assert login.status_code == 200 and web_session.COOKIE in login.cookies
    flags = login.headers["set-cookie"].lower()
    assert "httponly" in flags and "samesite=lax" in flags and "max-age=43200" in flags
    wrong = client.post(
        "/dashboard/login",
        data={"csrf_token": csrf_of(login.text), "email": "ops@acme.example", "password": "x"},
    )
    assert wrong.status_code == 401 and "The email or password is not right" in wrong.text
    token = sign_in(client, email="OPS@acme.example", password=PASSWORD)
    page = client.get("/dashboard/numbers/inventory")
    assert page.status_code == 200 and "ops@acme.example" in page.text
    out = client.post("/dashboard/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    again = client.get("/dashboard/numbers/inventory", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/dashboard/login?next=/dashboard/numbers/inventory"


def test_a_revoked_key_or_a_tampered_cookie_ends_the_session(
    client: TestClient, db: Database, partner: Acct
) -> None:
    sign_in(client, api_key=partner.key)
    assert client.get("/dashboard/billing").status_code == 200
    with db.session() as session:
        accounts.revoke_api_key(session, accounts.find_key(session, partner.key).id)
    assert client.get("/dashboard/billing", follow_redirects=False).status_code == 303

    sign_in_again = TestClient(client.app)
    fresh = accounts_key(db, partner.id)
    sign_in(sign_in_again, api_key=fresh)
    cookie = sign_in_again.cookies[web_session.COOKIE]
    sign_in_again.cookies.set(
        web_session.COOKIE, cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB")
    )
    assert sign_in_again.get("/dashboard/billing", follow_redirects=False).status_code == 303


def accounts_key(db: Database, account_id: str) -> str:
    with db.session() as session:
        return accounts.create_api_key(session, account_id).secret


def test_the_api_never_takes_the_dashboard_session(client: TestClient, user: Acct) -> None:
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    answer = client.get("/telephony/numbers")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
    assert "Content-Security-Policy" not in answer.headers


def test_every_dashboard_post_checks_the_csrf_token(client: TestClient, user: Acct) -> None:
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    posts = [
        "/dashboard/login",
        "/dashboard/logout",
        "/dashboard/switch",
        "/dashboard/switch/back",
        "/dashboard/numbers/buy/quote",
        "/dashboard/numbers/buy/purchase",
        "/dashboard/numbers/num_x/assign",
        "/dashboard/numbers/num_x/release",
        "/dashboard/numbers/num_x/route",
        "/dashboard/numbers/num_x/edit",
        "/dashboard/tenants",
        "/dashboard/agents",
        "/dashboard/billing/topup",
        "/dashboard/billing/card",
        "/dashboard/billing/card/remove",
        "/dashboard/billing/auto-recharge",
        "/dashboard/settings/account",
        "/dashboard/numbers/num_x/e911/accept",
        "/dashboard/numbers/num_x/e911/retry",
        "/dashboard/numbers/num_x/e911/remove",
        "/dashboard/numbers/num_x/cnam/retry",
    ]
    for path in posts:
        missing = client.post(path, data={"name": "x"})
        assert missing.status_code == 403 and "This form has expired" in missing.text, path
        forged = client.post(path, data={"csrf_token": "forged"}, headers={"HX-Request": "true"})
        assert forged.status_code == 403, path
        assert 'id="messages"' in forged.text, path  # htmx: a message, not a page


def test_pages_answer_with_a_strict_content_security_policy(client: TestClient, user: Acct) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard"
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    for path in [
        "/dashboard/numbers/buy",
        "/dashboard/numbers/buy?tab=toll-free",
        "/dashboard/numbers/inventory",
        "/dashboard/tenants",
        "/dashboard/agents",
        "/dashboard/billing",
        "/dashboard/settings",
    ]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Cache-Control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text, path
    missing = client.get("/dashboard/nowhere")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"


def test_htmx_is_vendored_with_its_version_and_license(client: TestClient) -> None:
    static = Path(__file__).parents[2] / "src/didhub/web/static"
    notes = (static / "VENDORED.md").read_text()
    shipped = re.search(r'version:"(\d+\.\d+\.\d+)"', (static / "htmx.min.js").read_text())
    assert shipped and f"| {shipped.group(1)} |" in notes
    assert "Zero-Clause BSD" in (static / "htmx.LICENSE.txt").read_text()
    assert client.get("/dashboard/static/htmx.min.js").status_code == 200


def test_a_tenant_sees_only_its_own_numbers(
    client: TestClient,
    db: Database,
    partner: Acct,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    mine = make_tenant("Dental Group", partner.id)
    other = make_partner("Rival", "50.00")
    found = search_numbers(client, other, administrative_area="AR", page_size=1)
    theirs = buy(client, other, found[0]["phone_number"])["data"][0]["id"]
    sign_in(client, api_key=mine.key)
    assert (
        client.get("/dashboard/numbers/inventory", follow_redirects=False).headers["location"]
        == "/dashboard/dids"
    )
    assert client.get("/dashboard/tenants", follow_redirects=False).status_code == 303
    assert client.get(f"/dashboard/numbers/{theirs}/assign").status_code == 404
    token = csrf_of(client.get("/dashboard/dids").text)
    refused = client.post(
        f"/dashboard/numbers/{theirs}/release",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 404
    with db.session() as session:
        assert session.get_one(PhoneNumber, theirs).status == "active"


def test_a_partner_in_its_tenants_view_does_not_charge_the_tenants_card(
    client: TestClient,
    db: Database,
    user: Acct,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Dental Group", user.id)
    stranger = make_tenant("Not yours", make_partner("Rival").id)
    client.put(
        "/billing/card", json={"card_token": "tok_visa"}, headers=tenant.headers
    ).raise_for_status()
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    switched = client.post("/dashboard/switch", data={"csrf_token": token, "tenant_id": tenant.id})
    assert "viewing <strong>Dental Group</strong>" in switched.text
    refused = client.post("/dashboard/billing/topup", data={"csrf_token": token, "amount": "25.00"})
    assert refused.status_code == 403 and "card and wallet are its own" in refused.text
    found = search_numbers(client, tenant, administrative_area="AR", page_size=1)
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    wanted = {"phone_numbers": [found[0]["phone_number"]]}
    quote = client.post("/dashboard/numbers/buy/quote", data=wanted, headers=htmx)
    assert quote.status_code == 403 and "are bought by Acme Voice" in quote.text
    bought = client.post("/dashboard/numbers/buy/purchase", data=wanted, headers=htmx)
    assert bought.status_code == 403
    with db.session() as session:
        assert session.query(CardCharge).count() == 0
        assert session.query(PhoneNumber).count() == 0
    client.post("/dashboard/switch/back", data={"csrf_token": token})
    foreign = client.post("/dashboard/switch", data={"csrf_token": token, "tenant_id": stranger.id})
    assert "not found" in foreign.text and "viewing <strong>" not in foreign.text


def test_confirming_one_quote_twice_buys_once(client: TestClient, db: Database, user: Acct) -> None:
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    found = search_numbers(client, user, administrative_area="AR", page_size=2)
    wanted = [n["phone_number"] for n in found]
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    modal = client.post(
        "/dashboard/numbers/buy/quote", data={"phone_numbers": wanted}, headers=htmx
    )
    assert modal.status_code == 200 and "$4.00" in modal.text
    quote_id = re.search(r'name="quote_id" value="([^"]+)"', modal.text)
    assert quote_id
    form = {"quote_id": quote_id.group(1), "phone_numbers": wanted}
    for _ in range(2):
        done = client.post("/dashboard/numbers/buy/purchase", data=form, headers=htmx)
        assert done.headers["HX-Redirect"] == "/dashboard/numbers/inventory"
    with db.session() as session:
        assert ledger.wallet_balance(session, user.id, "USD") == Decimal("96.00")
        assert session.query(PhoneNumber).filter_by(owner_id=user.id).count() == 2
    inventory = client.get("/dashboard/numbers/inventory").text
    assert inventory.count("Unassigned</span>") == 2


def test_sessions_end_after_session_hours(
    client: TestClient, user: Acct, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    assert client.get("/dashboard/agents").status_code == 200
    later = web_session.time.time() + 12 * 3600 + 1
    monkeypatch.setattr(web_session.time, "time", lambda: later)
    assert client.get("/dashboard/agents", follow_redirects=False).status_code == 303


def test_a_generated_secret_key_is_kept_private_and_reused(
    tmp_path: Path, database_url: str, db: Database, carrier: SandboxCarrier
) -> None:
    key_file = tmp_path / "didhub-secret.key"
    settings = Settings(
        database_url=database_url,
        secret_key_file=str(key_file),
        _env_file=None,  # type: ignore[call-arg]
    )
    first = web_session.secret_key(settings)
    assert len(first) >= 32 and key_file.read_text().strip() == first
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert web_session.secret_key(settings) == first
    create_app(settings, db, carrier)  # starts with the generated key


def test_search_problems_read_in_the_forms_words(client: TestClient, user: Acct) -> None:
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    results = "/dashboard/numbers/buy/results"
    no_state = client.get(results, params={"tab": "local", "city": "Little Rock"}).text
    assert "State: choose a state to search in" in no_state
    bad_area = client.get(results, params={"tab": "local", "state": "AR", "area_code": "5a1"})
    assert "Area Code: must be digits only" in bad_area.text
    too_many = client.get(results, params={"tab": "toll-free", "quantity": "500"})
    assert "Quantity: a whole number, 1 to 50" in too_many.text
    regular = client.get(results, params={"tab": "toll-free", "prefix": "888", "quantity": "10"})
    assert regular.text.count('name="phone_numbers" value="+1888') == 10
    cities = client.get("/dashboard/numbers/localities", params={"state": "AR", "city": "litt"})
    assert '<option value="Little Rock">' in cities.text
    assert '<option value="N Little Rock">' in cities.text  # "contains" matches too


def test_top_up_from_the_dashboard_charges_the_card_once(
    client: TestClient, db: Database, user: Acct
) -> None:
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    no_card = client.post("/dashboard/billing/topup", data={"csrf_token": token, "amount": "10"})
    assert no_card.status_code == 422 and "There is no card on file" in no_card.text
    saved = client.post("/dashboard/billing/card", data={"csrf_token": token, "card": "tok_visa"})
    assert "Card Visa ending 4242 is on file" in saved.text
    form_key = re.search(r'name="form_key" value="([^"]+)"', saved.text)
    assert form_key
    form = {"csrf_token": token, "amount": "25.00", "form_key": form_key.group(1)}
    first = client.post("/dashboard/billing/topup", data=form)
    assert "Added $25.00 to your wallet; the balance is $125.00" in first.text
    client.post("/dashboard/billing/topup", data=form)  # the same form, sent again
    with db.session() as session:
        assert ledger.wallet_balance(session, user.id, "USD") == Decimal("125.00")
        assert session.query(CardCharge).count() == 1
    bad = client.post(
        "/dashboard/billing/auto-recharge",
        data={"csrf_token": token, "enabled": "on", "threshold": "five", "amount": "20"},
    )
    assert bad.status_code == 422 and "&#39;five&#39; is not an amount" in bad.text


def test_inventory_filters_by_assignment(
    client: TestClient, db: Database, user: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", user.id)
    found = search_numbers(client, user, administrative_area="AR", page_size=2)
    bought = buy(client, user, *[n["phone_number"] for n in found])["data"]
    client.patch(
        f"/telephony/numbers/{bought[0]['id']}",
        json={"tenant_id": tenant.id},
        headers=user.headers,
    ).raise_for_status()
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    unassigned = client.get("/dashboard/numbers/inventory", params={"assigned": "no"}).text
    assert bought[1]["phone_number"] in unassigned and bought[0]["phone_number"] not in unassigned
    of_tenant = client.get("/dashboard/numbers/inventory", params={"tenant_id": tenant.id}).text
    assert bought[0]["phone_number"] in of_tenant and bought[1]["phone_number"] not in of_tenant
    bad = client.get("/dashboard/numbers/inventory", params={"cursor": "nonsense"})
    assert "Cursor is not one this API gave out" in bad.text


def test_a_partner_sets_a_tenants_settings_and_sees_where_they_come_from(
    client: TestClient, user: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", user.id)
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    page = client.get("/dashboard/settings", params={"account_id": tenant.id}).text
    assert "Caller ID and unrouted calls: Dental Group" in page and 'name="default_cnam"' in page
    assert 'Plays “This number isn&#39;t configured” <span class="muted">(the platform' in page

    bad = client.post(
        "/dashboard/settings/account",
        data={
            "csrf_token": token,
            "account_id": tenant.id,
            "default_cnam": "DENTAL",
            "unassigned_action": "forward",
            "unassigned_destination": "not a number",
        },
    )
    assert bad.status_code == 422 and 'id="ua-forward-error"' in bad.text
    assert 'value="DENTAL"' in bad.text  # what was typed is kept
    assert (
        client.get(f"/tenants/{tenant.id}/settings", headers=user.headers).json()["data"][
            "default_cnam"
        ]
        is None
    )  # nothing saved

    # The partner's own default applies to the tenant until it sets its own.
    client.post(
        "/dashboard/settings/account",
        data={"csrf_token": token, "account_id": user.id, "default_cnam": "ACME VOICE"},
    )
    page = client.get("/dashboard/settings", params={"account_id": tenant.id}).text
    assert '<strong>ACME VOICE</strong> <span class="muted">(the partner' in page

    saved = client.post(
        "/dashboard/settings/account",
        data={
            "csrf_token": token,
            "account_id": tenant.id,
            "default_cnam": "DENTAL",
            "unassigned_action": "forward",
            "unassigned_destination": "sip:desk@pbx.example.com",
        },
    )
    assert "about 24 hours" in saved.text and "Settings saved." in saved.text
    data = client.get(f"/tenants/{tenant.id}/settings", headers=user.headers).json()["data"]
    assert data["default_cnam"] == "DENTAL"
    assert data["unassigned"] == {"action": "forward", "destination": "sip:desk@pbx.example.com"}
    assert "Is forwarded to sip:desk@pbx.example.com" in saved.text


def test_edit_did_refuses_a_zip_of_another_state_next_to_the_state_field(
    client: TestClient, db: Database, user: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", user.id)
    found = search_numbers(client, user, administrative_area="AR", page_size=1)
    number = buy(client, user, found[0]["phone_number"])["data"][0]
    client.patch(
        f"/telephony/numbers/{number['id']}", json={"tenant_id": tenant.id}, headers=user.headers
    ).raise_for_status()
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    form = {
        "csrf_token": token,
        "cnam": "DENTAL",
        "street": "500 President Clinton Ave",
        "city": "Little Rock",
        "state": "TX",
        "postal_code": "72201",
        "caller_name": "Dental Group",
    }
    bad = client.post(f"/dashboard/numbers/{number['id']}/edit", data=form)
    assert bad.status_code == 422
    assert 'id="edit-state" name="state" value="TX"' in bad.text
    assert 'aria-invalid="true" aria-describedby="edit-state-error"' in bad.text
    assert 'id="edit-state-error"' in bad.text and "72201" in bad.text
    shown = client.get(f"/telephony/numbers/{number['id']}", headers=user.headers).json()["data"]
    assert shown["cnam"]["source"] == "none"  # nothing saved
    assert client.get("/e911/addresses", headers=user.headers).json()["data"] == []

    # An address already in standard form with ZIP+4 is validated and attached at once.
    good = {**form, "street": "500 PRESIDENT CLINTON AVE", "city": "LITTLE ROCK", "state": "AR"}
    good["postal_code"] = "72201-1234"
    saved = client.post(
        f"/dashboard/numbers/{number['id']}/edit", data=good, headers={"HX-Request": "true"}
    )
    assert saved.status_code == 200 and saved.headers["HX-Redirect"]
    e911 = client.get(f"/telephony/numbers/{number['id']}/e911", headers=user.headers).json()
    assert e911["data"]["e911_status"] == "provisioned"
    assert e911["data"]["address"]["tenant_id"] == tenant.id
