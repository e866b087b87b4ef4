"""Issue 17, items 9–14, in a real browser: the agent-platform buy flow (any
country the API sells, any type, a Buy button per row, release from Settings),
agents' SIP URIs, tenants by name, the E911 screen, bulk assignment, toll-free
charges, money written one way, Stripe's card element, no console errors, and
people invited with roles. Every test fails on any browser console error."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from conftest import Acct
from didhub.accounts import service as accounts
from didhub.accounts.models import User
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.e911 import service as e911
from didhub.e911.models import Location
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import PARTNER, Scope
from web.test_browser import CHROMIUM_ARGS, PASSWORD, Server, browser, expect, server, wallet

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "server"]  # fixtures, imported for pytest

pytestmark = pytest.mark.browser
assert CHROMIUM_ARGS


class Console:
    """Every console error and uncaught script error of a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None
            ),
        )


def _open(browser: Browser, url: str) -> tuple[Any, Page, Console]:
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    console = Console()
    console.watch(opened)
    return context, opened, console


@pytest.fixture
def console_page(browser: Browser, server: Server) -> Iterator[tuple[Page, Console]]:
    context, opened, console = _open(browser, server.url)
    yield opened, console
    context.close()
    assert console.errors == []


@pytest.fixture
def page(console_page: tuple[Page, Console]) -> Page:
    return console_page[0]


@pytest.fixture
def partner(db: Database, make_partner: Callable[..., Acct]) -> Acct:
    acct = make_partner("Acme Voice", "100.00")
    with db.session() as session:
        accounts.create_user(session, acct.id, "ops@acme.example", PASSWORD)
    return acct


def sign_in(page: Page, email: str = "ops@acme.example", password: str = PASSWORD) -> None:
    page.goto("/dashboard/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/dashboard/(numbers/inventory|dids)$"))


def bought(
    db: Database, carrier: SandboxCarrier, settings: Settings, acct: Acct, **query: Any
) -> list[str]:
    """Buy numbers through the service (as the API does); answers their E.164s."""
    scope = Scope(acct.id, PARTNER)
    count = query.pop("count", 1)
    from didhub.numbers.schemas import SearchRequest

    request = SearchRequest(**query)
    found = numbers.search(db, carrier, scope, request.to_query(), 1, count)
    wanted = [n.phone_number for n in found.data[:count]]
    numbers.purchase(db, carrier, settings, scope, wanted)
    return wanted


def number_id(db: Database, e164: str) -> str:
    with db.session() as session:
        return session.query(PhoneNumber).filter_by(e164=e164).one().id


# ------------------------------------------------------------------ item 9


def test_buy_by_country_and_type_and_release_from_settings(
    page: Page, db: Database, partner: Acct
) -> None:
    check = expect()
    sign_in(page)
    page.goto("/dashboard/numbers/buy")
    page.get_by_role("link", name="By Country").click()
    country = page.get_by_role("combobox", name="Country")
    check(country).to_be_visible()
    assert country.locator("option").all_text_contents() == [
        "United States", "Canada", "United Kingdom", "Australia",
    ]  # fmt: skip
    assert page.get_by_label("Type", exact=True).locator("option").all_text_contents() == [
        "Local", "Mobile", "Toll-free",
    ]  # fmt: skip
    country.select_option(label="United Kingdom")
    page.get_by_label("Type", exact=True).select_option(label="Mobile")
    page.get_by_role("button", name="Search", exact=True).click()
    check(
        page.get_by_role("heading", name=re.compile("available mobile in United Kingdom"))
    ).to_be_visible()
    rows = page.locator("#buy-form tbody tr")
    check(rows.first).to_be_visible()
    for text in rows.locator('[data-testid="type"]').all_inner_texts():
        assert text == "Mobile"
    check(rows.first.locator("td.num").first).to_have_text("$1.00")
    e164 = rows.first.get_attribute("data-number") or ""
    assert e164.startswith("+447")

    # Buy on one row opens the same confirmation as Purchase Selected.
    rows.first.get_by_role("button", name=re.compile("^Buy ")).click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal).to_be_visible()
    check(modal.locator("tbody tr")).to_have_count(1)
    check(modal.get_by_test_id("quote-total")).to_have_text("$2.00")
    modal.get_by_role("button", name="Confirm Purchase").click()
    page.wait_for_url("**/dashboard/numbers/inventory")
    check(page.locator(f'tr[data-number="{e164}"]')).to_contain_text("Mobile")
    assert wallet(db, partner.id) == Decimal("98.00")

    # Settings → Phone Numbers → the number → Release Number.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Phone Numbers"
    ).click()
    row = page.locator(f'tr[data-number="{e164}"]')
    check(row).to_contain_text("Mobile")
    row.get_by_role("button", name=re.compile("^Release Number")).click()
    dialog = page.get_by_role("alertdialog")
    check(dialog).to_be_visible()
    dialog.get_by_role("button", name=re.compile("^Release")).last.click()
    page.wait_for_url("**/dashboard/settings/numbers")
    check(page.get_by_role("status").first).to_contain_text("was released")
    check(page.locator(f'tr[data-number="{e164}"]')).to_have_count(0)
    with db.session() as session:
        assert session.query(PhoneNumber).filter_by(e164=e164).one().status == "released"


def test_each_country_the_api_sells_is_searchable(page: Page, partner: Acct) -> None:
    check = expect()
    sign_in(page)
    for code, prefix in (("US", "+1"), ("CA", "+1"), ("AU", "+61")):
        page.goto(f"/dashboard/numbers/buy?tab=country&country={code}&type=local&search=1")
        rows = page.locator("#buy-form tbody tr")
        check(rows.first).to_be_visible()
        assert (rows.first.get_attribute("data-number") or "").startswith(prefix)


# ------------------------------------------------------------------ item 10


def test_agents_tenants_e911_and_bulk_assign(
    page: Page, db: Database, carrier: SandboxCarrier, settings: Settings, partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:  # fmt: skip
    check = expect()
    tenant = make_tenant("Dental Group", partner.id)
    picked = bought(db, carrier, settings, partner, administrative_area="AR", count=3)
    sign_in(page)

    # Tenants: names, no raw ids.
    page.goto("/dashboard/tenants")
    check(page.get_by_role("rowheader", name="Dental Group")).to_be_visible()
    assert tenant.id not in page.locator("main").inner_text()

    # Bulk assign: tick two, one tenant, one click.
    page.goto("/dashboard/numbers/inventory")
    for e164 in picked[:2]:
        page.locator(f'tr[data-number="{e164}"] input[type=checkbox]').check()
    page.get_by_label("Assign selected to").select_option(label="Dental Group")
    page.get_by_role("button", name="Assign selected").click()
    check(page.get_by_role("status").first).to_contain_text(
        "2 numbers now assigned to Dental Group"
    )
    for e164 in picked[:2]:
        check(page.locator(f'tr[data-number="{e164}"]')).to_contain_text("Dental Group")
    check(page.locator(f'tr[data-number="{picked[2]}"]')).to_contain_text("Unassigned")

    # Agents: created with a SIP URI, then changed; a bad one is refused by name.
    page.goto("/dashboard/agents")
    page.get_by_label("Tenant").select_option(label="Dental Group")
    page.get_by_label("Name").fill("Front desk")
    page.get_by_label("SIP URI", exact=True).fill("sip:desk@pbx.example.com")
    page.get_by_role("button", name="Create agent").click()
    field = page.get_by_role("textbox", name="SIP URI of Front desk")
    check(field).to_have_value("sip:desk@pbx.example.com")
    field.fill("sip:ai@voice.example.net")
    page.get_by_role("form", name="SIP URI of Front desk").get_by_role(
        "button", name="Save"
    ).click()
    check(page.get_by_role("status").first).to_contain_text("now go to sip:ai@voice.example.net")
    with db.session() as session:
        agent = accounts.list_agents(session, Scope(partner.id, PARTNER))[0]
        assert agent.sip_uri == "sip:ai@voice.example.net"

    # E911: the compliance report lists the numbers without an address; a
    # location is added on an address and listed as not reachable.
    e911.create_address(
        db, carrier, Scope(partner.id, PARTNER),
        {"street": "500 President Clinton Ave", "city": "Little Rock", "state": "AR",
         "postal_code": "72201-1234", "country": "US", "caller_name": "Dental Group",
         "tenant_id": tenant.id},
    )  # fmt: skip
    page.get_by_role("navigation", name="Main").get_by_role("link", name="E911").click()
    report = page.get_by_test_id("compliance")
    for e164 in picked:
        check(report.locator(f'tr[data-number="{e164}"]')).to_contain_text("No E911 address")
    page.get_by_label("Name").fill("Main office")
    page.get_by_label("Address").select_option(index=1)
    page.get_by_role("button", name="Add location").click()
    check(page.get_by_role("status").first).to_contain_text("Location Main office added")
    check(report).to_contain_text("Main office")
    check(report).to_contain_text("500 PRESIDENT CLINTON AVE")
    with db.session() as session:
        assert session.query(Location).filter_by(name="Main office").count() == 1


# ------------------------------------------------------------------ item 11


def test_toll_free_charges_money_one_way_and_billing_lines(
    page: Page, db: Database, carrier: SandboxCarrier, settings: Settings,
    make_partner: Callable[..., Acct],
) -> None:  # fmt: skip
    check = expect()
    acct = make_partner("Acme Voice", "3.00")
    with db.session() as session:
        accounts.create_user(session, acct.id, "ops@acme.example", PASSWORD)
    sign_in(page)
    page.goto("/dashboard/numbers/buy?tab=toll-free")
    page.get_by_role("button", name="Search").first.click()
    note = page.locator("#results").get_by_test_id("toll-free-charges")
    check(note).to_contain_text("per-minute inbound charges apply: $0.0250 a minute")

    # The confirmation says it too; the wallet is short and the warning is one block.
    page.locator("#buy-form tbody tr").first.get_by_role("button", name=re.compile("^Buy ")).click()
    modal = page.get_by_role("dialog", name="Confirm purchase")
    check(modal.get_by_test_id("toll-free-charges")).to_contain_text(
        "Per-minute inbound charges apply"
    )
    warning = modal.get_by_test_id("low-balance")
    check(warning).to_contain_text("Your wallet holds $3.00, less than this purchase")
    # One icon and one paragraph: the text and its link flow as one column.
    assert warning.evaluate("el => el.children.length") == 2
    link_box = warning.get_by_role("link", name="Billing").bounding_box()
    text_box = warning.locator("p").bounding_box()
    assert link_box and text_box and link_box["x"] >= text_box["x"]
    assert "USD" not in modal.inner_text()
    modal.get_by_role("button", name="Cancel").click()

    # A purchase and a top-up: lines name the number and say what they are.
    e164 = bought(db, carrier, settings, acct, administrative_area="AR")[0]
    page.goto("/dashboard/billing")
    page.get_by_label("Card number or payment token").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Save card").click()
    check(page.get_by_label("Amount", exact=True)).to_have_value("$25.00")
    page.get_by_role("button", name="Add funds").click()
    check(page.get_by_role("status").first).to_contain_text(
        "Added $25.00 to your wallet; the balance is $26.00"
    )
    lines = page.get_by_role("table", name=re.compile("Wallet transactions"))
    check(lines).to_contain_text(f"Purchase of {e164}: first month and setup")
    check(lines).to_contain_text("Card Visa ending 4242: top-up")
    body = page.locator("main").inner_text()
    assert "number(s)" not in body and "auto_recharge" not in body and "topup" not in body
    assert not re.search(r"\d\.\d\d USD", body)
    for value in page.locator("td.num").all_inner_texts():
        assert re.fullmatch(r"[+−]?\$[\d,]+\.\d{2,4}", value), value


# ------------------------------------------------------------------ item 12


def test_sandbox_gateway_shows_its_hint(page: Page, partner: Acct) -> None:
    check = expect()
    sign_in(page)
    page.goto("/dashboard/billing")
    check(page.get_by_test_id("sandbox-hint")).to_contain_text("4242 4242 4242 4242 succeeds")
    check(page.get_by_test_id("stripe-card-element")).to_have_count(0)


FAKE_STRIPE = """
window.Stripe = function (key) {
  window.__stripeKey = key;
  return {
    elements: function () {
      return { create: function (kind) {
        return { mount: function (where) {
          var frame = document.createElement("div");
          frame.setAttribute("data-mounted", kind);
          document.querySelector(where).appendChild(frame);
        }, on: function () {} };
      } };
    },
    createPaymentMethod: function () {
      return Promise.resolve({ paymentMethod: { id: "pm_card_visa" } });
    }
  };
};
"""


def test_stripe_gateway_uses_stripes_card_element(
    browser: Browser, settings: Settings, db: Database, carrier: SandboxCarrier, partner: Acct
) -> None:
    check = expect()
    configured = settings.model_copy(
        update={
            "payment_gateway": "stripe",
            "stripe_api_key": "sk_test_dummy",
            "stripe_publishable_key": "pk_test_51dummy",
        }
    )
    with serving(configured, db, carrier) as url:
        context, page, console = _open(browser, url)
        # No network here: js.stripe.com answers with a stand-in of Stripe.js,
        # so what is checked is that the page asks Stripe for it, that its CSP
        # lets it run, and that the card element is mounted with the key.
        asked: list[str] = []

        def fulfil(route: Any) -> None:
            asked.append(route.request.url)
            route.fulfill(status=200, content_type="application/javascript", body=FAKE_STRIPE)

        page.route("https://js.stripe.com/**", fulfil)
        sign_in(page)
        answer = page.goto("/dashboard/billing")
        assert answer is not None
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self' https://js.stripe.com;" in csp
        assert "frame-src https://js.stripe.com" in csp
        assert asked == ["https://js.stripe.com/v3/"]
        check(
            page.get_by_test_id("stripe-card-element").locator('[data-mounted="card"]')
        ).to_have_count(1)
        assert page.evaluate("window.__stripeKey") == "pk_test_51dummy"
        check(page.get_by_test_id("sandbox-hint")).to_have_count(0)
        check(page.get_by_label("Card number or payment token")).to_have_count(0)
        assert "4242" not in page.locator("main").inner_text()
        # Another page keeps the strict policy: Stripe is allowed only where it is needed.
        other = page.goto("/dashboard/agents")
        assert other is not None
        context.close()
        assert console.errors == []


class serving:  # noqa: N801 - a context manager, used as `with serving(...)`
    """A uvicorn on a free port with other settings than the ``server`` fixture."""

    def __init__(self, settings: Settings, db: Database, carrier: SandboxCarrier) -> None:
        self.app = create_app(settings, db, carrier)

    def __enter__(self) -> str:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        self.uv = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.uv.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uv.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


# ------------------------------------------------------------------ item 13


def test_no_console_errors_typing_fast_and_taking_a_suggestion(
    page: Page, db: Database, carrier: SandboxCarrier, settings: Settings, partner: Acct
) -> None:
    check = expect()
    e164 = bought(db, carrier, settings, partner, administrative_area="AR")[0]
    sign_in(page)
    page.goto("/dashboard/numbers/buy")
    page.get_by_role("combobox", name="State").select_option("AR")
    city = page.get_by_role("combobox", name="City")
    # A slow answer: each suggestion request is held until released, so the
    # next keystrokes' request is issued while the previous one is in flight
    # (what typing fast on a slow line does).
    held: list[Any] = []
    page.route("**/dashboard/numbers/localities**", lambda route: held.append(route))
    city.press_sequentially("Litt", delay=20)
    page.wait_for_timeout(400)
    assert len(held) >= 1  # the first request is in flight
    city.press_sequentially("le R", delay=20)
    page.wait_for_timeout(400)
    deadline = time.monotonic() + 8
    options = page.locator('#city-options option[value="Little Rock"]')
    while options.count() == 0 and time.monotonic() < deadline:
        while held:
            held.pop(0).continue_()
        page.wait_for_timeout(100)
    page.unroute("**/dashboard/numbers/localities**")
    check(options).to_have_count(1)
    check(city).to_have_value("Little R")

    page.goto("/dashboard/numbers/inventory")
    page.locator(f'tr[data-number="{e164}"]').get_by_role(
        "button", name=re.compile("^Edit DID")
    ).click()
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    edit.get_by_label("Street address").fill("500 President Clinton Ave")
    edit.get_by_label("City").fill("Little Rock")
    edit.get_by_label("State").fill("AR")
    edit.get_by_label("ZIP code").fill("72201")
    edit.get_by_role("button", name="Save").click()
    edit = page.get_by_role("dialog", name=re.compile("^Edit DID"))
    edit.get_by_test_id("suggestion").get_by_role("button", name="Use suggested address").click()
    page.wait_for_url("**/dashboard/numbers/inventory")
    check(page.locator(f'tr[data-number="{e164}"] td[data-col="e911"]')).to_contain_text(
        "Provisioned"
    )
    # (the fixture asserts that the console stayed clean)


# ------------------------------------------------------------------ item 14


def test_invited_people_sign_in_with_their_role(
    browser: Browser, server: Server, page: Page, db: Database, carrier: SandboxCarrier,
    settings: Settings, partner: Acct, make_tenant: Callable[..., Acct],
) -> None:  # fmt: skip
    check = expect()
    make_tenant("Dental Group", partner.id)
    e164 = bought(db, carrier, settings, partner, administrative_area="AR")[0]
    sign_in(page)
    page.goto("/dashboard/settings")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="People").click()
    links = {}
    for email, role in (("viewer@acme.example", "Read-only"), ("money@acme.example", "Billing")):
        page.get_by_label("Email").fill(email)
        page.get_by_label(re.compile(f"^{role}:")).check()
        page.get_by_role("button", name="Create invitation link").click()
        link = page.get_by_test_id("invite-link")
        check(link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/dashboard/invite/"))
        links[email] = link.input_value()
    check(page.get_by_test_id("pending-invitation")).to_have_count(2)

    def accept(email: str) -> tuple[Any, Page, Console]:
        context, other, console = _open(browser, server.url)
        other.goto(links[email])
        check(other.get_by_test_id("invited-email")).to_have_text(email)
        other.get_by_label("Password", exact=True).fill("a long new password")
        other.get_by_label("Password again").fill("a long new password")
        other.get_by_role("button", name="Set password and sign in").click()
        other.wait_for_url("**/dashboard/numbers/inventory")
        check(other.get_by_role("status").first).to_contain_text(f"signed in as {email}")
        return context, other, console

    # Read-only: sees the inventory, can't buy.
    context, viewer, console = accept("viewer@acme.example")
    viewer.goto("/dashboard/numbers/buy?tab=country&country=US&type=local&search=1")
    viewer.locator("#buy-form tbody tr").first.get_by_role(
        "button", name=re.compile("^Buy ")
    ).click()
    check(viewer.get_by_role("alert").first).to_contain_text("read-only")
    check(viewer.get_by_role("dialog", name="Confirm purchase")).to_have_count(0)
    # The link worked once.
    viewer.goto(links["viewer@acme.example"])
    check(viewer.get_by_role("alert").first).to_contain_text("used already")
    context.close()
    # The refused Buy (403) and the used link (404) are the console lines expected.
    assert [e for e in console.errors if not re.search(r"status of (403|404)", e)] == []

    # Billing: tops up, can't assign.
    context, money, console = accept("money@acme.example")
    money.goto("/dashboard/billing")
    money.get_by_label("Card number or payment token").fill("4242 4242 4242 4242")
    money.get_by_role("button", name="Save card").click()
    money.get_by_role("button", name="Add funds").click()
    check(money.get_by_role("status").first).to_contain_text("Added $25.00 to your wallet")
    money.goto("/dashboard/numbers/inventory")
    money.locator(f'tr[data-number="{e164}"]').get_by_role(
        "button", name=re.compile("^Assign")
    ).click()
    dialog = money.get_by_role("dialog", name=re.compile("^Assign"))
    dialog.get_by_label("Tenant").select_option(label="Dental Group")
    dialog.get_by_role("button", name="Assign", exact=True).click()
    check(money.get_by_role("alert").first).to_contain_text("billing: top-ups")
    context.close()
    assert [e for e in console.errors if "403" not in e] == []
    with db.session() as session:
        roles = {u.email: u.role for u in session.query(User).all()}
        assert roles == {
            "ops@acme.example": "admin",
            "viewer@acme.example": "read-only",
            "money@acme.example": "billing",
        }
        assert session.query(PhoneNumber).filter_by(e164=e164).one().tenant_id is None
    assert wallet(db, partner.id) == Decimal("123.00")
