"""People invited with a role (issue 17, item 14), on both databases: the
one-time link, accepting it (the same ``create_user`` as ``didhub user
create``), and what each role may change in the dashboard."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, buy, search_numbers
from dashboard import PASSWORD, sign_in
from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts.models import Invitation, User
from didhub.db import Database
from didhub.errors import Conflict, DidhubError, NotFound, ValidationFailed
from didhub.numbers.models import PhoneNumber


def test_an_invitation_is_accepted_once_with_its_role(db: Database, partner: Acct) -> None:
    with db.session() as session:
        made = accounts.invite_user(session, partner.id, " Ana@Example.COM ", "billing", "ops")
        token = made.token
    with db.session() as session:
        stored = session.get_one(Invitation, made.invitation.id)
        assert token not in (stored.token_hash, stored.id)  # only a hash is kept
        user = accounts.accept_invitation(session, token, "a long new password")
        assert (user.email, user.role, user.account_id) == (
            "ana@example.com",
            "billing",
            partner.id,
        )
    with db.session() as session, pytest.raises(NotFound, match="used already"):
        accounts.accept_invitation(session, token, "another long password")
    with db.session() as session:
        assert session.query(User).filter_by(email="ana@example.com").count() == 1
        assert accounts.list_invitations(session, partner.id) == []


def test_invitation_errors_name_the_field(db: Database, partner: Acct) -> None:
    with db.session() as session:
        accounts.create_user(session, partner.id, "taken@example.com", PASSWORD)
    with db.session() as session:
        with pytest.raises(ValidationFailed) as bad_role:
            accounts.invite_user(session, partner.id, "x@example.com", "owner")
        assert bad_role.value.field == "role"
        with pytest.raises(Conflict) as taken:
            accounts.invite_user(session, partner.id, "taken@example.com", "admin")
        assert taken.value.field == "email"
        made = accounts.invite_user(session, partner.id, "late@example.com", "read-only")
        session.get_one(Invitation, made.invitation.id).expires_at = clock.now() - timedelta(
            seconds=1
        )
    with db.session() as session, pytest.raises(NotFound, match="expired"):
        accounts.accept_invitation(session, made.token, "a long new password")
    with db.session() as session:
        again = accounts.invite_user(session, partner.id, "x@example.com", "admin")
        with pytest.raises(ValidationFailed) as short:
            accounts.accept_invitation(session, again.token, "short")
        assert short.value.field == "password"


def test_a_new_invitation_replaces_an_open_one(db: Database, partner: Acct) -> None:
    with db.session() as session:
        first = accounts.invite_user(session, partner.id, "bo@example.com", "admin").token
    with db.session() as session:
        second = accounts.invite_user(session, partner.id, "bo@example.com", "read-only").token
    with db.session() as session, pytest.raises(NotFound):
        accounts.accept_invitation(session, first, "a long new password")
    with db.session() as session:
        assert (
            accounts.accept_invitation(session, second, "a long new password").role == "read-only"
        )


def test_two_accepts_at_once_make_one_user(db: Database, partner: Acct) -> None:
    """The invitation row is locked: two clicks of the link racing (on
    PostgreSQL truly at once) create one user, and the other is refused."""
    with db.session() as session:
        token = accounts.invite_user(session, partner.id, "race@example.com", "admin").token
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def accept() -> None:
        start.wait()
        try:
            with db.session() as session:
                accounts.accept_invitation(session, token, "a long new password")
            outcomes.append("ok")
        except DidhubError as exc:
            outcomes.append(type(exc).__name__)
        except Exception as exc:  # SQLite's writer lock: "database is locked"
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("ok") == 1, outcomes
    with db.session() as session:
        assert session.query(User).filter_by(email="race@example.com").count() == 1


def _user(db: Database, acct: Acct, email: str, role: str) -> None:
    with db.session() as session:
        accounts.create_user(session, acct.id, email, PASSWORD, role)


def test_roles_are_enforced_on_dashboard_changes(
    client: TestClient, db: Database, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Dental Group", partner.id)
    e164 = search_numbers(client, partner, administrative_area="AR")[0]["phone_number"]
    buy(client, partner, e164)
    with db.session() as session:
        number_id = session.query(PhoneNumber).filter_by(e164=e164).one().id
    _user(db, partner, "ro@example.com", "read-only")
    _user(db, partner, "bill@example.com", "billing")

    csrf = sign_in(client, email="ro@example.com", password=PASSWORD)
    refused = client.post(
        "/dashboard/numbers/buy/quote",
        data={"one": "+15015550123"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert refused.status_code == 403 and "read-only" in refused.text
    assert client.get("/dashboard/numbers/inventory").status_code == 200  # it sees
    invite = client.post(
        "/dashboard/settings/people/invite", data={"email": "n@example.com", "role": "admin"},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert invite.status_code == 403
    client.post("/dashboard/logout", headers={"X-CSRF-Token": csrf})

    csrf = sign_in(client, email="bill@example.com", password=PASSWORD)
    card = client.post(
        "/dashboard/billing/card",
        data={"card": "4242424242424242"},
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert card.status_code == 303
    assign = client.post(
        f"/dashboard/numbers/{number_id}/assign", data={"tenant_id": tenant.id},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )  # fmt: skip
    assert assign.status_code == 403 and "billing" in assign.text
    with db.session() as session:
        assert session.get_one(PhoneNumber, number_id).tenant_id is None
    bulk = client.post(
        "/dashboard/numbers/assign-many", data={"number_ids": ["x"], "tenant_id": tenant.id},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert bulk.status_code == 403
