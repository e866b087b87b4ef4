"""Numbers → Port Numbers in a real browser (Debian's chromium through
Playwright, the server of tests/web/test_browser.py): a refused number and
its reason, a draft saved, an order's status and next step as the carrier
moves it, and a cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

import test_browser
from conftest import Acct
from didhub.api.app import create_app
from didhub.config import Settings
from didhub.db import Database
from portflow import (  # noqa: F401  (documents_in_tmp: an autouse fixture)
    BELL,
    NOT_PORTABLE,
    documents_in_tmp,
    foc_date,
    ready_order,
)
from test_browser import Screens, Server, expect, open_menu_item, sign_in

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
