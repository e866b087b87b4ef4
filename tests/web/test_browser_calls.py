"""A number's calls in the dashboard, in a real browser: from the inventory to
the number's page, its calls newest first, the next page, the CSV download;
no console errors on the way."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from conftest import Acct
from didhub import clock
from didhub.billing.service import usage
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.tenancy import PARTNER, Scope
from test_browser import (  # the browser, server and page fixtures, the sign-in
    Server,
    _query,
    browser,
    expect,
    page,
    partner_user,
    server,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
__all__ = ["browser", "page", "partner_user", "server"]


def test_a_numbers_calls_in_the_dashboard(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    settings: Settings,
) -> None:  # fmt: skip
    check = expect()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    partner = partner_user()
    scope = Scope(partner.id, PARTNER)
    then = clock.now() - timedelta(hours=3)
    clock.set_clock(lambda: then)
    try:
        found = numbers.search(db, server.carrier, scope, _query(), 1, 1).data[0].phone_number
        number = numbers.purchase(db, server.carrier, settings, scope, [found]).numbers[0]
    finally:
        clock.set_clock(None)
    start = clock.now() - timedelta(hours=1)
    records = [
        usage.CallRecord(found, "inbound", start + timedelta(minutes=i), 60 + i, f"call-{i:02d}")
        for i in range(55)
    ]
    records.append(usage.CallRecord(found, "outbound", clock.now(), 30, "call-out"))
    report = usage.record(db, settings, records)
    assert report.accepted == 56

    sign_in(page)
    page.get_by_role("link", name=found_text(found)).click()
    page.wait_for_url(f"**/dashboard/numbers/{number.id}/calls")
    check(page.get_by_test_id("number-title")).to_be_visible()
    rows = page.locator("#calls tbody tr")
    check(rows).to_have_count(50)
    check(rows.first).to_contain_text("call-out")
    check(rows.first).to_contain_text("Outbound")
    page.get_by_test_id("older-calls").click()
    check(rows).to_have_count(6)
    check(rows.last).to_contain_text("call-00")

    page.get_by_label("Direction").select_option("outbound")
    page.get_by_role("button", name="Filter").click()
    check(rows).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_test_id("calls-csv").click()
    text = download.value.path().read_text()
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [r["call_id"] for r in exported] == ["call-out"]
    assert exported[0]["phone_number"] == found and exported[0]["direction"] == "outbound"
    assert console_errors == []


def found_text(e164: str) -> str:
    """The number as the inventory writes it: (501) 555-0123."""
    from didhub.web.common import phone

    return phone(e164)
