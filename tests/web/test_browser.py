"""The partner guide in a real browser: Playwright drives Debian's chromium
(headless) against a uvicorn server these tests start on the test database.

Screenshots of every screen go to ``<tmp_path>/screens`` (and to
``$DIDHUB_SCREENSHOTS`` when set, e.g. to keep them from a CI run).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from conftest import Acct
from dashboard import shared_browser
from didhub import clock
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.billing.service import assignments, books
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.e911.models import E911Address
from didhub.numbers import service as numbers
from didhub.numbers.models import CnamListing, PhoneNumber
from didhub.tenancy import PARTNER, Scope
from didhub.wallet import ledger

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    # On a developer's machine without chromium the tests are skipped; in CI
    # (which installs it) a missing browser is a failure, never a silent skip.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    assert sync_playwright
    yield shared_browser(CHROMIUM, CHROMIUM_ARGS)


@dataclass
class Server:
    url: str
    carrier: SandboxCarrier


@pytest.fixture
def server(settings: Settings, db: Database, carrier: SandboxCarrier) -> Iterator[Server]:
    """A real uvicorn on a free port, serving the app on the test database."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, db, carrier)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", carrier)
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


class Screens:
    """Numbered screenshots of each screen, in the test's output folder."""

    def __init__(self, folder: Path, test_name: str) -> None:
        self.folder = folder
        self.extra = (
            Path(os.environ["DIDHUB_SCREENSHOTS"]) if os.environ.get("DIDHUB_SCREENSHOTS") else None
        )
        self.test_name = test_name
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str, full_page: bool = False) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / f"{self.test_name}-{path.name}")
        return path


@pytest.fixture
def screens(tmp_path: Path, request: pytest.FixtureRequest) -> Screens:
    return Screens(tmp_path / "screens", request.node.name)


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on(
        "console",
        lambda msg: (
            errors.append(f"{opened.url}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield opened
    context.close()
    # No script errors and nothing the page loads refused by its CSP.
    assert errors == []


@pytest.fixture
def partner_user(db: Database, make_partner: Callable[..., Acct]) -> Callable[..., Acct]:
    def make(balance: str = "100.00", email: str = "ops@acme.example") -> Acct:
        partner = make_partner("Acme Voice", balance)
        with db.session() as session:
            accounts.create_user(session, partner.id, email, PASSWORD)
        return partner

    return make


def wallet(db: Database, account_id: str) -> Decimal:
    with db.session() as session:
        return ledger.wallet_balance(session, account_id, "USD")


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def sign_in(page: Page, email: str = "ops@acme.example") -> None:
    page.goto("/dashboard")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard/numbers/inventory")


def open_menu_item(page: Page, item: str) -> None:
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_text("Numbers", exact=True).click()
    nav.get_by_role("link", name=item, exact=True).click()


def search_local(page: Page, state: str, city_typed: str, city: str) -> Locator:
    """Fill the Local Numbers search, picking the city from the autocomplete."""
    page.get_by_role("combobox", name="State").select_option(state)
    city_box = page.get_by_role("combobox", name="City")
    city_box.press_sequentially(city_typed, delay=30)
    expect()(page.locator(f'#city-options option[value="{city}"]')).to_have_count(1)
    city_box.fill(city)
    page.get_by_role("button", name="Search", exact=True).click()
    rows = page.locator("#buy-form tbody tr")
    expect()(rows.first).to_be_visible()
    return rows


def row_of(page: Page, e164: str) -> Locator:
    return page.locator(f'tr[data-number="{e164}"]')


def ticked_numbers(page: Page, count: int, skip: int = 0) -> list[str]:
    boxes = page.locator("#buy-form input[data-pick]")
    chosen = []
    for i in range(skip, skip + count):
        boxes.nth(i).check()
        chosen.append(boxes.nth(i).get_attribute("value") or "")
    return chosen


def test_partner_guide_end_to_end(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    make_tenant: Callable[..., Acct], screens: Screens,
) -> None:  # fmt: skip
    check = expect()
    partner = partner_user()
    tenant = make_tenant("Dental Group", partner.id)

    page.goto("/dashboard")
    check(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screens(page, "sign-in")
    sign_in(page)

    # Numbers → Buy DIDs: the Local Numbers tab is selected by default.
    open_menu_item(page, "Buy DIDs")
    check(page.get_by_role("link", name="Local Numbers")).to_have_attribute("aria-current", "page")
    rows = search_local(page, "AR", "Litt", "Little Rock")
    check(page.get_by_role("heading", name=re.compile("available in Little Rock"))).to_be_visible()
    for city in rows.locator("td:nth-child(4)").all_inner_texts():
        assert city == "Little Rock, AR"
    check(rows.first.locator("td.num").first).to_have_text("$1.00")
    screens(page, "buy-local-results")

    # Tick two, Purchase Selected: the modal shows the total and the wallet.
    bought = ticked_numbers(page, 2)
    check(page.locator("#selected-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Purchase Selected").click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal).to_be_visible()
    check(modal.get_by_test_id("quote-total")).to_have_text("$4.00")
    check(modal.get_by_test_id("wallet-balance")).to_have_text("$100.00")
    check(modal).to_contain_text("One-time setup")
    screens(page, "confirm-purchase")
    modal.get_by_role("button", name="Confirm Purchase").click()

    # The numbers are in the DID Inventory, Unassigned, and paid for.
    page.wait_for_url("**/dashboard/numbers/inventory")
    check(page.get_by_role("status").first).to_contain_text("Bought")
    for e164 in bought:
        check(row_of(page, e164)).to_contain_text("Unassigned")
    assert wallet(db, partner.id) == Decimal("96.00")
    screens(page, "inventory-after-purchase")

    # Assign the first to a tenant.
    first, second = bought
    row_of(page, first).get_by_role("button", name=re.compile("^Assign")).click()
    assign = page.get_by_role("dialog", name=re.compile("^Assign"))
    assign.get_by_label("Tenant").select_option(label="Dental Group")
    screens(page, "assign-modal")
    assign.get_by_role("button", name="Assign", exact=True).click()
    check(row_of(page, first)).to_contain_text("Dental Group")
    check(row_of(page, second)).to_contain_text("Unassigned")
    with db.session() as session:
        number = session.query(PhoneNumber).filter_by(e164=first, status="active").one()
        assert number.tenant_id == tenant.id

    # Edit DID: CNAM and the E911 address. A PO box is refused next to the
    # street field, and nothing is saved, not even the CNAM typed with it.
    row_of(page, first).get_by_role("button", name=re.compile("^Edit DID")).click()
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    check(edit.get_by_test_id("e911-now")).to_contain_text("no address")
    edit.get_by_label("Name shown when calling from this number").fill("DENTAL GROUP")
    edit.get_by_label("Street address").fill("PO Box 12")
    edit.get_by_label("City").fill("Little Rock")
    edit.get_by_label("State").fill("AR")
    edit.get_by_label("ZIP code").fill("72201")
    check(edit.get_by_label("Name the 911 dispatcher sees")).to_have_value("Dental Group")
    edit.get_by_role("button", name="Save").click()
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    street = edit.get_by_label("Street address")
    check(street).to_have_attribute("aria-invalid", "true")
    check(edit.locator("#edit-street-error")).to_contain_text("PO box")
    check(edit.get_by_label("Name shown when calling from this number")).to_have_value(
        "DENTAL GROUP"
    )
    screens(page, "edit-did-po-box-refused")
    with db.session() as session:
        assert session.query(E911Address).count() == 0
        assert session.query(CnamListing).count() == 0

    # A real street: the carrier adds the ZIP+4, the user takes its suggestion.
    street.fill("500 President Clinton Ave")
    edit.get_by_label("Suite, unit or floor").fill("Suite 200")
    edit.get_by_role("button", name="Save").click()
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    suggestion = edit.get_by_test_id("suggestion")
    check(suggestion).to_contain_text(
        re.compile(r"500 PRESIDENT CLINTON AVE STE 200, LITTLE ROCK, AR 72201-\d{4}")
    )
    check(edit).to_contain_text("about 24 hours")  # the CNAM is saved already
    screens(page, "edit-did-suggestion")
    suggestion.get_by_role("button", name="Use suggested address").click()
    page.wait_for_url("**/dashboard/numbers/inventory")
    check(page.get_by_role("status").first).to_contain_text("E911 address of")
    check(row_of(page, first).locator('td[data-col="cnam"]')).to_contain_text("DENTAL GROUP")
    check(row_of(page, first).locator('td[data-col="cnam"]')).to_contain_text("Active")
    check(row_of(page, first).locator('td[data-col="e911"]')).to_contain_text("Provisioned")
    check(row_of(page, first).locator('td[data-col="e911"]')).to_contain_text("STE 200")
    check(row_of(page, second).locator('td[data-col="e911"]')).to_contain_text("None")
    screens(page, "inventory-cnam-e911")
    assert server.carrier.cnam_of(first) == "DENTAL GROUP"
    assert server.carrier.e911[first].postal_code.startswith("72201-")

    # The tenant's defaults, on the Settings page: a default CNAM and what an
    # unrouted number does.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Settings of").select_option(label="Dental Group")
    page.get_by_role("button", name="Show").click()
    check(page.get_by_role("heading", name=re.compile("Dental Group"))).to_be_visible()
    check(page.get_by_test_id("effective")).to_contain_text("the platform's default")
    page.get_by_label("Default CNAM").fill("DENTAL")
    page.get_by_label("Play an announcement").check()
    page.get_by_label("Text to play").fill("We're closed, call back tomorrow")
    page.get_by_role("button", name="Save settings").click()
    check(page.get_by_role("status").first).to_contain_text("Settings saved")
    effective = page.get_by_test_id("effective")
    check(effective).to_contain_text("DENTAL (the tenant's setting)")
    check(effective).to_contain_text(
        "Plays “We're closed, call back tomorrow” (the tenant's setting)"
    )
    screens(page, "tenant-settings-saved")
    open_menu_item(page, "DID Inventory")
    check(row_of(page, first).locator('td[data-col="cnam"]')).to_contain_text("DENTAL GROUP")

    # Toll-free: a vanity search with X wildcards.
    open_menu_item(page, "Buy DIDs")
    page.get_by_role("link", name="Toll-Free").click()
    check(page.get_by_label("Quantity")).to_have_value("10")
    page.get_by_label("Pattern").fill("877-555-XXXX")
    page.get_by_role("search", name="Vanity").get_by_role("button", name="Search").click()
    results = page.locator("#buy-form input[data-pick]")
    check(results.first).to_be_visible()
    for value in [results.nth(i).get_attribute("value") for i in range(results.count())]:
        assert value is not None and value.startswith("+1877555")
    check(page.locator("#buy-form tbody tr").first.locator("td.num").first).to_have_text("$2.50")
    screens(page, "buy-toll-free-vanity")

    # Release the second number.
    open_menu_item(page, "DID Inventory")
    row_of(page, second).get_by_role("button", name=re.compile("^Release")).click()
    release = page.get_by_role("alertdialog", name=re.compile("^Release"))
    check(release).to_contain_text("billing stops")
    screens(page, "release-confirm")
    release.get_by_role("button", name="Release", exact=True).click()
    check(page.get_by_role("status").first).to_contain_text("released")
    check(row_of(page, second)).to_have_count(0)
    check(row_of(page, first)).to_contain_text("Dental Group")
    with db.session() as session:
        assert session.query(PhoneNumber).filter_by(e164=second).one().status == "released"
    screens(page, "inventory-after-release")


def test_a_tenant_routes_its_numbers(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    make_tenant: Callable[..., Acct], settings: Settings, screens: Screens,
) -> None:  # fmt: skip
    """The partner switches into its tenant's view: the DIDs page, an agent,
    inbound and outbound routing; the tenant's settings page."""
    check = expect()
    partner = partner_user()
    tenant = make_tenant("Dental Group", partner.id)
    scope = Scope(partner.id, PARTNER)
    found = numbers.search(db, server.carrier, scope, _query(), 1, 1).data[0].phone_number
    number = numbers.purchase(db, server.carrier, settings, scope, [found]).numbers[0]
    assignments.assign_tenant(db, server.carrier, settings, scope, number.id, tenant.id)

    sign_in(page)
    page.get_by_role("link", name="Tenants").click()
    check(page.get_by_role("row", name=re.compile("Dental Group"))).to_contain_text("1")
    screens(page, "tenants")
    page.get_by_role("button", name="Switch to Dental Group's view").click()
    page.wait_for_url("**/dashboard/dids")
    check(page.get_by_role("region", name="Tenant view")).to_contain_text("Dental Group")
    check(row_of(page, found)).to_contain_text("This number isn't configured")

    page.get_by_role("link", name="Agents").click()
    page.get_by_label("Name").fill("Front desk")
    page.get_by_role("button", name="Create agent").click()
    check(page.get_by_role("row", name=re.compile("Front desk"))).to_be_visible()

    open_menu_item(page, "DIDs")
    row_of(page, found).get_by_role("button", name=re.compile("^Route")).click()
    route = page.get_by_role("dialog", name=re.compile("^Route"))
    route.get_by_label("Inbound calls go to").select_option(label="Front desk")
    route.get_by_label("Outbound calls from").select_option(label="Front desk")
    route.get_by_role("button", name="Save routing").click()
    check(row_of(page, found)).to_contain_text("Front desk")
    check(row_of(page, found)).not_to_contain_text("isn't configured")
    screens(page, "tenant-dids-routed")
    with db.session() as session:
        live = numbers.live_assignments(session, [number.id])[number.id]
    assert set(live) == {"inbound", "outbound"}

    # In the tenant's view the Settings page edits the tenant's own settings.
    page.get_by_role("link", name="Settings").click()
    check(page.get_by_role("heading", name=re.compile("Dental Group"))).to_be_visible()
    check(page.get_by_role("group", name=re.compile("no inbound agent"))).to_be_visible()
    page.get_by_label("Default CNAM").fill("DENTAL")
    page.get_by_label("Send it to voicemail").check()
    page.get_by_label("Mailbox").fill("1001")
    page.get_by_role("button", name="Save settings").click()
    check(page.get_by_role("status").first).to_contain_text("Settings saved")
    effective = page.get_by_test_id("effective")
    check(effective).to_contain_text("DENTAL (the tenant's setting)")
    check(effective).to_contain_text("Goes to voicemail box 1001 (the tenant's setting)")
    screens(page, "tenant-settings")
    open_menu_item(page, "DIDs")
    check(row_of(page, found).locator('td[data-col="cnam"]')).to_contain_text("DENTAL")
    check(row_of(page, found).locator('td[data-col="cnam"]')).to_contain_text("tenant default")

    page.get_by_role("link", name="Billing").click()
    check(page.get_by_role("heading", name="Top up")).to_have_count(0)  # the tenant's own card
    page.get_by_role("button", name="Back to Acme Voice").click()
    page.wait_for_url("**/dashboard/tenants")
    check(page.get_by_role("region", name="Tenant view")).to_have_count(0)


def _query() -> Any:
    from didhub.carriers.base import SearchQuery

    return SearchQuery(administrative_area="AR", locality="Little Rock")


def test_failed_purchases_charge_nothing(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    make_partner: Callable[..., Acct], settings: Settings, screens: Screens,
) -> None:  # fmt: skip
    check = expect()
    partner = partner_user(balance="3.00")
    sign_in(page)

    # Not enough in the wallet: the modal warns, the purchase answers 402.
    open_menu_item(page, "Buy DIDs")
    search_local(page, "AR", "Little", "Little Rock")
    ticked_numbers(page, 2)
    page.get_by_role("button", name="Purchase Selected").click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal).to_contain_text("less than this purchase")
    modal.get_by_role("button", name="Confirm Purchase").click()
    alert = page.locator("#messages").get_by_role("alert")
    check(alert).to_contain_text("costs $4.00 but the wallet holds $3.00")
    check(alert).to_contain_text("No charge was made")
    check(page.get_by_role("dialog")).to_have_count(0)
    assert wallet(db, partner.id) == Decimal("3.00")
    screens(page, "insufficient-funds")

    # Taken by someone else between the search and Purchase Selected.
    page.get_by_role("button", name="Search", exact=True).click()
    check(page.locator("#buy-form")).to_be_visible()
    # (Not one of the two just quoted: the quote holds those for us.)
    [wanted] = ticked_numbers(page, 1, skip=2)
    rival = make_partner("Rival Telecom", "50.00")
    with db.session() as session:
        rival_scope = accounts.authenticate(session, rival.key)
    numbers.purchase(db, server.carrier, settings, rival_scope, [wanted])
    page.get_by_role("button", name="Purchase Selected").click()
    alert = page.locator("#messages").get_by_role("alert")
    check(alert).to_contain_text("is not available")
    check(alert).to_contain_text("No charge was made")
    assert wallet(db, partner.id) == Decimal("3.00")
    screens(page, "number-taken")

    # Taken between Purchase Selected and Confirm: the quote's hold ran out
    # (the modal stayed open past it) and another buyer was faster.
    page.locator("#buy-form input[data-pick]:checked").uncheck()
    [late] = ticked_numbers(page, 1, skip=3)
    page.get_by_role("button", name="Purchase Selected").click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal.get_by_test_id("quote-total")).to_have_text("$2.00")
    later = datetime.now(UTC) + timedelta(minutes=settings.hold_minutes + 1)
    clock.set_clock(lambda: later)
    numbers.purchase(db, server.carrier, settings, rival_scope, [late])
    modal.get_by_role("button", name="Confirm Purchase").click()
    alert = page.locator("#messages").get_by_role("alert")
    check(alert).to_contain_text(f"{late} is not available")
    check(alert).to_contain_text("No charge was made")
    assert wallet(db, partner.id) == Decimal("3.00")
    clock.set_clock(None)

    # A declined card: auto-recharge tries the card on file, which declines.
    page.get_by_role("link", name="Billing").click()
    page.get_by_label("Card number or payment token").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Save card").click()
    check(page.get_by_role("status").first).to_contain_text("ending 0002")
    page.get_by_label("Charge the card when the wallet runs low").check()
    page.get_by_label("When below").fill("1.00")
    page.get_by_label("Add", exact=True).fill("20.00")
    page.get_by_role("button", name="Save", exact=True).click()
    check(page.get_by_role("status").first).to_contain_text("Auto-recharge is on")
    screens(page, "billing", full_page=True)
    open_menu_item(page, "Buy DIDs")
    search_local(page, "AR", "Little", "Little Rock")
    ticked_numbers(page, 2)
    page.get_by_role("button", name="Purchase Selected").click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal).to_contain_text("auto-recharge charges your Visa ending 0002")
    modal.get_by_role("button", name="Confirm Purchase").click()
    alert = page.locator("#messages").get_by_role("alert")
    check(alert).to_contain_text("card was declined")
    check(alert).to_contain_text("No charge was made")
    assert wallet(db, partner.id) == Decimal("3.00")
    with db.session() as session:
        assert session.query(PhoneNumber).filter_by(owner_id=partner.id).count() == 0
        assert books.check(session) == []
    screens(page, "card-declined")


_UNNAMED = re.compile(
    r"^\s*- (textbox|combobox|checkbox|radio|spinbutton|button|link)\s*(\[.*\])?:?\s*$"
)


def _unnamed_controls(page: Page) -> list[str]:
    snapshot = page.locator("body").aria_snapshot()
    return [line for line in snapshot.splitlines() if _UNNAMED.match(line)]


def tab_to(page: Page, target: Locator, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the focus, as a keyboard user would."""
    check = expect()
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        try:
            check(target).to_be_focused(timeout=100)
            return
        except AssertionError:
            continue
    raise AssertionError(f"Tab never reached {target}")


def test_keyboard_only_and_labelled(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    make_tenant: Callable[..., Acct], settings: Settings, screens: Screens,
) -> None:  # fmt: skip
    """Sign in with an API key, search, tick and open the purchase modal with
    the keyboard alone; Escape closes it and focus goes back. Every control on
    every page has a name a screen reader reads."""
    check = expect()
    partner = partner_user()
    make_tenant("Dental Group", partner.id)
    keyboard = page.keyboard

    page.goto("/dashboard/login")
    assert _unnamed_controls(page) == []
    check(page.get_by_label("Email", exact=True)).to_be_focused()
    tab_to(page, page.get_by_label("API key", exact=True))
    keyboard.type(partner.key)
    keyboard.press("Enter")
    page.wait_for_url("**/dashboard/numbers/inventory")

    page.goto("/dashboard/numbers/buy")
    keyboard.press("Tab")
    check(page.get_by_role("link", name="Skip to content")).to_be_focused()
    state = page.get_by_role("combobox", name="State")
    tab_to(page, state)
    keyboard.type("Arkansas")
    check(state).to_have_value("AR")
    keyboard.press("Tab")
    check(page.get_by_label("Area Code")).to_be_focused()
    keyboard.type("501")
    keyboard.press("Enter")  # submits the search form
    first_box = page.locator("#buy-form input[data-pick]").first
    check(first_box).to_be_visible()
    tab_to(page, first_box)
    keyboard.press("Space")
    check(first_box).to_be_checked()
    purchase = page.get_by_role("button", name="Purchase Selected")
    tab_to(page, purchase, backwards=True)
    keyboard.press("Enter")
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal).to_be_visible()
    check(modal.get_by_role("button", name="Confirm Purchase")).to_be_focused()
    screens(page, "keyboard-modal")
    keyboard.press("Escape")
    check(modal).to_have_count(0)
    check(purchase).to_be_focused()

    for path in [
        "/dashboard/numbers/buy",
        "/dashboard/numbers/buy?tab=toll-free",
        "/dashboard/numbers/inventory",
        "/dashboard/tenants",
        "/dashboard/agents",
        "/dashboard/billing",
        "/dashboard/settings",
    ]:
        page.goto(path)
        assert _unnamed_controls(page) == [], path
        # The Numbers menu opens from the keyboard too.
        page.get_by_role("navigation", name="Main").get_by_text("Numbers", exact=True).focus()
        keyboard.press("Enter")
        nav = page.get_by_role("navigation", name="Main")
        check(nav.get_by_role("link", name="Buy DIDs")).to_be_visible()
        keyboard.press("Escape")

    # The Edit DID modal: opened from the keyboard, the CNAM field has the
    # focus, every control is named, Escape gives the focus back.
    scope = Scope(partner.id, PARTNER)
    found = numbers.search(db, server.carrier, scope, _query(), 1, 1).data[0].phone_number
    numbers.purchase(db, server.carrier, settings, scope, [found])
    page.goto("/dashboard/numbers/inventory")
    edit_button = row_of(page, found).get_by_role("button", name=re.compile("^Edit DID"))
    tab_to(page, edit_button)
    keyboard.press("Enter")
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    check(edit.get_by_label("Name shown when calling from this number")).to_be_focused()
    assert _unnamed_controls(page) == []
    screens(page, "keyboard-edit-did")
    keyboard.press("Escape")
    check(edit).to_have_count(0)
    check(edit_button).to_be_focused()
