"""Numbers → Port Numbers in a real browser (Debian's chromium through
Playwright, the server of tests/web/test_browser.py): a refused number and
its reason, a draft saved, an order's status and next step as the carrier
moves it, and a cancel; a tenant uploading its documents (refused files
explained), downloading one, and submitting with a FOC date, on each
document store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

import test_browser
from conftest import Acct
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.config import Settings
from didhub.db import Database
from portflow import (  # noqa: F401  (documents_in_tmp, s3_server, store_kind: fixtures)
    ADDRESS,
    BELL,
    NOT_PORTABLE,
    documents_in_tmp,
    foc_date,
    ready_order,
    s3_server,
    store_kind,
)
from test_browser import PASSWORD, Screens, Server, expect, open_menu_item, sign_in

# The browser tests' fixtures (a real uvicorn, chromium, a signed-in partner).
browser = test_browser.browser
server = test_browser.server
page = test_browser.page
screens = test_browser.screens
partner_user = test_browser.partner_user

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_port_numbers_screen_shows_status_and_next_step(
    page: Page,
    server: Server,
    screens: Screens,
    settings: Settings,
    db: Database,
    partner_user: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    partner = partner_user()
    tenant = make_tenant("Acme Dental", partner_id=partner.id)
    sign_in(page)
    open_menu_item(page, "Port Numbers")
    page.wait_for_url("**/dashboard/numbers/port")
    expect()(page.get_by_role("heading", name="Port Numbers")).to_be_visible()

    form = page.locator("form[action$='/numbers/port']")
    form.get_by_label("Tenant").select_option(tenant.id)
    form.get_by_label("Numbers (E.164, one per line or comma-separated)").fill(NOT_PORTABLE)
    form.get_by_label("Name on the losing carrier's account").fill("Acme Dental LLC")
    form.get_by_label("Authorized person").fill("Dana Smith")
    form.get_by_label("Losing carrier account number").fill("ACCT-1")
    form.get_by_label("Billing telephone number").fill(NOT_PORTABLE)
    form.get_by_role("button", name="Check and save draft").click()
    expect()(page.get_by_test_id("port-error")).to_contain_text("no_coverage")
    screens(page, "port-refused")

    # An order made ready and submitted through the API, with a PIN the
    # losing carrier will reject.
    api = TestClient(create_app(settings, db, server.carrier))
    order = ready_order(api, partner, tenant.id, [BELL], pin="0000")
    submitted = api.post(
        f"/porting/orders/{order['id']}/submit",
        json={"foc_date": foc_date(api, partner, order["id"])},
        headers=partner.headers,
    )
    assert submitted.status_code == 200, submitted.text
    page.reload()
    row = page.locator(f'tr[data-order="{order["id"]}"]')
    expect()(row.get_by_test_id("port-status")).to_have_text("submitted")
    expect()(row.get_by_test_id("port-next")).to_contain_text("Waiting for the carrier")

    row.get_by_role("button", name="Refresh").click()
    row = page.locator(f'tr[data-order="{order["id"]}"]')
    expect()(row.get_by_test_id("port-status")).to_have_text("exception")
    expect()(row.get_by_test_id("port-reason")).to_contain_text("PIN does not match")
    expect()(row.get_by_test_id("port-next")).to_contain_text("Correct what the losing carrier")
    screens(page, "port-exception", full_page=True)

    row.get_by_role("button", name="Cancel order").click()
    row = page.locator(f'tr[data-order="{order["id"]}"]')
    expect()(row.get_by_test_id("port-status")).to_have_text("cancelled")
    expect()(row.get_by_test_id("port-next")).to_contain_text("nothing was billed")
    screens(page, "port-cancelled")


def _console_errors(page: Page) -> list[str]:
    """Every console error the page logs (the page fixture keeps only CSP ones)."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if msg.type == "error" else None)
    return seen


@pytest.mark.usefixtures("store_kind")
def test_tenant_uploads_documents_and_submits_from_port_numbers(
    page: Page,
    server: Server,
    screens: Screens,
    settings: Settings,
    db: Database,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
) -> None:
    partner = make_partner("Acme Voice")
    tenant = make_tenant("Acme Dental", partner_id=partner.id, balance="50.00")
    with db.session() as session:
        accounts.create_user(session, tenant.id, "dana@acme-dental.example", PASSWORD)
    # The tenant's own draft, with its E911 address, made through the API.
    api = TestClient(create_app(settings, db, server.carrier))
    address = api.post("/e911/addresses", json=ADDRESS, headers=tenant.headers)
    assert address.status_code == 201, address.text
    created = api.post(
        "/porting/orders",
        json={
            "phone_numbers": [BELL],
            "entity_name": "Acme Dental LLC",
            "authorized_person": "Dana Smith",
            "account_number": "ACCT-778899",
            "pin": "4321",
            "billing_phone_number": BELL,
            "e911_address_id": address.json()["data"]["id"],
        },
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["data"]["id"]

    errors = _console_errors(page)
    # A tenant's user lands on its DIDs.
    page.goto("/dashboard")
    page.get_by_label("Email", exact=True).fill("dana@acme-dental.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard/dids")
    open_menu_item(page, "Port Numbers")
    page.wait_for_url("**/dashboard/numbers/port")
    docs = page.locator(f'section[data-order-documents="{order_id}"]')
    expect()(docs.get_by_test_id("port-no-documents")).to_be_visible()

    # Submitting too early: the service's own refusal, on the page.
    page.locator(f'tr[data-order="{order_id}"]').get_by_role("link", name="Submit…").click()
    page.wait_for_url(f"**/numbers/port/{order_id}/submit")
    expect()(page.get_by_test_id("port-checklist")).to_contain_text("Recent bill: missing")
    page.get_by_role("button", name="Submit to the carrier").click()
    expect()(page.get_by_test_id("port-error")).to_contain_text("Upload a recent bill")
    page.get_by_role("link", name="Back to Port Numbers").click()
    page.wait_for_url("**/dashboard/numbers/port")

    # Bad files: each a clear message, nothing listed.
    form = page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id("port-upload")
    form.get_by_role("button", name="Upload").click()
    expect()(page.get_by_test_id("port-error")).to_contain_text("Choose a file to upload")
    form = page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id("port-upload")
    form.get_by_label("File (PDF, PNG or JPEG, at most 10 MB)").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"call me"}
    )
    form.get_by_role("button", name="Upload").click()
    expect()(page.get_by_test_id("port-error")).to_contain_text("must be a PDF, PNG or JPEG")
    form = page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id("port-upload")
    form.get_by_label("File (PDF, PNG or JPEG, at most 10 MB)").set_input_files(
        {
            "name": "huge.pdf",
            "mimeType": "application/pdf",
            "buffer": b"%PDF" + b"0" * (10 * 1024 * 1024),
        }
    )
    form.get_by_role("button", name="Upload").click()
    expect()(page.get_by_test_id("port-error")).to_contain_text("over 10 MB")
    expect()(
        page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id(
            "port-no-documents"
        )
    ).to_be_visible()
    screens(page, "port-upload-refused")
    # The refusals were answered 422 (the browser logs each as a failed load); nothing else.
    assert all("status of 422" in e for e in errors), errors
    errors.clear()

    bill = b"%PDF-1.4\n% Sandbox Bell bill, March\n"
    for kind, name, content in (
        ("bill", "march-bill.pdf", bill),
        ("loa", "loa-signed.pdf", b"%PDF-1.4\n% signed by Dana Smith\n"),
    ):
        form = page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id(
            "port-upload"
        )
        form.get_by_label("Document").select_option(kind)
        form.get_by_label("File (PDF, PNG or JPEG, at most 10 MB)").set_input_files(
            {"name": name, "mimeType": "application/pdf", "buffer": content}
        )
        form.get_by_role("button", name="Upload").click()
        expect()(page.locator("#messages")).to_contain_text("Uploaded the")
        expect()(page.locator("#messages")).to_contain_text(name)
    listed = page.locator(f'section[data-order-documents="{order_id}"]').get_by_test_id(
        "port-documents"
    )
    expect()(listed.locator("tbody tr")).to_have_count(2)
    expect()(listed).to_contain_text("march-bill.pdf")
    expect()(listed).to_contain_text("Signed LOA")
    with page.expect_download() as download:
        listed.get_by_role("link", name="march-bill.pdf").click()
    assert Path(download.value.path()).read_bytes() == bill
    screens(page, "port-documents", full_page=True)

    page.locator(f'tr[data-order="{order_id}"]').get_by_role("link", name="Submit…").click()
    expect()(page.get_by_test_id("port-checklist")).to_contain_text("Signed LOA: uploaded")
    chosen = page.get_by_label("Requested FOC date (the carrier's allowed dates)")
    first = chosen.locator("option").first.get_attribute("value")
    assert first is not None
    chosen.select_option(first)
    page.get_by_role("button", name="Submit to the carrier").click()
    page.wait_for_url("**/dashboard/numbers/port")
    row = page.locator(f'tr[data-order="{order_id}"]')
    expect()(row.get_by_test_id("port-status")).to_have_text("submitted")
    expect()(page.locator("#messages")).to_contain_text(f"Port order {order_id} submitted")
    # Submitted: no more uploads for it.
    expect()(page.locator(f'section[data-order-documents="{order_id}"]')).to_have_count(0)
    row.get_by_role("button", name="Refresh").click()
    row = page.locator(f'tr[data-order="{order_id}"]')
    expect()(row.get_by_test_id("port-status")).to_have_text("foc confirmed")
    screens(page, "port-submitted")

    # The same order through the API: what the dashboard did.
    answer = api.get(f"/porting/orders/{order_id}", headers=tenant.headers).json()["data"]
    assert answer["status"] == "foc_confirmed" and answer["foc_date_requested"] == first
    assert sorted(d["filename"] for d in answer["documents"]) == [
        "loa-signed.pdf",
        "march-bill.pdf",
    ]
    assert errors == []
