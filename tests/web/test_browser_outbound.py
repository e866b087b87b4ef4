"""An agent's SIP credential in the dashboard, in a real browser: from the
Agents page to the agent's calling-out page, the credential created with the
password shown once, the edge's HA1 made from exactly that password, a
rotation that retires the old one; no console errors on the way."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from conftest import Acct
from didhub.accounts import service as accounts
from didhub.billing.service import assignments
from didhub.config import Settings
from didhub.db import Database
from didhub.numbers import service as numbers
from didhub.outbound import service as outbound
from didhub.outbound.models import SipCredential
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


def _edge_ha1(db: Database, settings: Settings, username: str, number: str) -> str | None:
    """The HA1 the edge would check an INVITE's digest against."""
    return outbound.lookup(db, settings, username, "+15125550199", number).ha1


def test_an_agents_sip_credential_in_the_dashboard(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    settings: Settings,
) -> None:  # fmt: skip
    check = expect()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    partner = partner_user()
    scope = Scope(partner.id, PARTNER)
    with db.session() as session:
        tenant = accounts.create_tenant(session, "Bistro", "USD", partner.id)
        agent = accounts.create_agent(session, scope, tenant.id, "Front desk")
        agent_id = agent.id
    found = numbers.search(db, server.carrier, scope, _query(), 1, 1).data[0].phone_number
    number = numbers.purchase(db, server.carrier, settings, scope, [found]).numbers[0]
    assignments.assign_to_agent(
        db, server.carrier, settings, scope, number.id, agent_id, "outbound"
    )

    sign_in(page)
    page.goto("/dashboard/agents")
    page.get_by_role("link", name="Calling out: SIP credential of Front desk").click()
    page.wait_for_url(f"**/dashboard/agents/{agent_id}/calling")
    check(page.locator("#outbound-numbers")).to_contain_text(found)
    check(page.get_by_text("No credential yet")).to_be_visible()

    page.get_by_role("button", name="Create SIP credential").click()
    check(page.get_by_role("heading", name="Copy the password now")).to_be_visible()
    username = page.locator("#sip-username").inner_text()
    password = page.locator("#sip-password").inner_text()
    realm = page.locator("#sip-realm").inner_text()
    assert len(password) >= 16 and realm == settings.sip_realm
    assert _edge_ha1(db, settings, username, found) == outbound.ha1(username, realm, password)

    # Shown once: the page read again has the username and no password.
    page.goto(f"/dashboard/agents/{agent_id}/calling")
    check(page.get_by_role("button", name="Rotate password")).to_be_visible()
    assert password not in page.content()
    assert username in page.content()

    page.get_by_role("button", name="Rotate password").click()
    check(page.get_by_role("heading", name="Copy the password now")).to_be_visible()
    rotated = page.locator("#sip-password").inner_text()
    assert rotated != password
    now = _edge_ha1(db, settings, username, found)
    assert now == outbound.ha1(username, realm, rotated)
    assert now != outbound.ha1(username, realm, password)
    assert console_errors == []


def test_another_partners_agent_is_not_found(
    page: Page, server: Server, db: Database, partner_user: Callable[..., Acct],
    make_partner: Callable[..., Acct],
) -> None:  # fmt: skip
    partner_user()
    other = make_partner("Other Voice", "10.00")
    with db.session() as session:
        tenant = accounts.create_tenant(session, "Theirs", "USD", other.id)
        agent = accounts.create_agent(session, Scope(other.id, PARTNER), tenant.id, "Secret")
        agent_id = agent.id
    sign_in(page)
    answer = page.goto(f"/dashboard/agents/{agent_id}/calling")
    assert answer is not None and answer.status == 404
    with db.session() as session:
        assert session.get(SipCredential, agent_id) is None
