from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from conftest import Acct, buy, search_numbers
from didhub.cli import app
from didhub.config import Settings
from didhub.db import Base, Database
from didhub.migrate import include_name
from didhub.wallet import ledger
from didhub.wallet.models import LedgerAccount


def test_migrations_create_exactly_the_models_schema(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_ledger_check_finds_a_cached_balance_that_drifted(
    client: TestClient, partner: Acct, db: Database, cli_env: None
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ledger", "check"]).exit_code == 0
    with db.session() as session:
        session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == ledger.wallet_id(partner.id, "USD"))
            .values(balance=Decimal("100.01"))
        )
    result = runner.invoke(app, ["ledger", "check", "--json"])
    assert result.exit_code == 1
    assert '"wallet_mismatch"' in result.output and "100.01" in result.output


def test_an_unbalanced_transaction_is_refused(db: Database, partner: Acct) -> None:
    with db.session() as session, pytest.raises(ValueError, match="unbalanced"):
        ledger.post(
            session,
            kind="bad",
            description="money from nowhere",
            postings=[ledger.Posting(ledger.wallet_id(partner.id, "USD"), Decimal("5.00"))],
        )
    with db.session() as session:
        assert ledger.wallet_balance(session, partner.id, "USD") == Decimal("100.00")


def test_assign_and_unassign_replays_return_the_first_answer(
    client: TestClient, partner: Acct, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("T", partner.id)
    agent = client.post(
        "/agents", json={"tenant_id": tenant.id, "name": "A"}, headers=partner.headers
    ).json()["data"]
    number = search_numbers(client, partner, area_code="208", page_size=1)[0]["phone_number"]
    number_id = client.post(
        "/telephony/numbers/purchase", json={"phone_number": number}, headers=partner.headers
    ).json()["data"]["id"]
    body = {"number_id": number_id, "agent_id": agent["id"], "assignment_type": "inbound"}
    headers = {**partner.headers, "Idempotency-Key": "assign-1"}
    first = client.post("/telephony/numbers/assign", json=body, headers=headers)
    un = client.post(
        "/telephony/numbers/unassign",
        json={"number_id": number_id, "assignment_type": "inbound"},
        headers={**partner.headers, "Idempotency-Key": "unassign-1"},
    )
    assert un.status_code == 200
    # The replay answers what the first request answered and does not re-assign.
    replay = client.post("/telephony/numbers/assign", json=body, headers=headers)
    assert replay.status_code == 200 and replay.json() == first.json()
    got = client.get(f"/telephony/numbers/{number_id}", headers=partner.headers).json()["data"]
    assert got["assignments"]["inbound"] is None


def test_ledger_check_proves_renewal_rows_against_what_the_wallet_paid(
    client: TestClient, partner: Acct, db: Database, settings: Settings, cli_env: None
) -> None:
    from datetime import timedelta

    from didhub import clock
    from didhub.billing.models import Renewal
    from didhub.billing.service import renewals
    from didhub.carriers.sandbox import SandboxCarrier
    from didhub.payments.sandbox_gateway import SandboxGateway

    picks = search_numbers(client, partner, area_code="512", page_size=2)
    buy(client, partner, *[p["phone_number"] for p in picks])
    month_later = clock.now() + timedelta(days=32)
    clock.set_clock(lambda: month_later)
    report = renewals.run(db, SandboxCarrier(db), SandboxGateway(db), settings)
    assert report.renewals == 2 and report.charged == Decimal("2.00")
    runner = CliRunner()
    assert runner.invoke(app, ["ledger", "check"]).exit_code == 0

    # A renewal row that lost its twin: the rows no longer add up to the debit.
    with db.session() as session:
        row = session.scalars(select(Renewal)).first()
        assert row is not None
        session.delete(row)
    result = runner.invoke(app, ["ledger", "check", "--json"])
    assert result.exit_code == 1
    assert '"renewal_mismatch"' in result.output and "the wallet paid 2.00" in result.output
