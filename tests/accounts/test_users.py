"""Dashboard users: argon2-hashed passwords, sign-in, and the CLI that creates them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import Acct
from didhub.accounts import service as accounts
from didhub.accounts.models import User
from didhub.cli import app
from didhub.db import Database
from didhub.errors import Conflict, NotFound, Unauthorized, ValidationFailed

runner = CliRunner()


def test_a_user_signs_in_with_the_right_password_only(db: Database, partner: Acct) -> None:
    with db.session() as session:
        user = accounts.create_user(session, partner.id, " Ops@Acme.example ", "correct horse 1")
    assert user.email == "ops@acme.example"
    with db.session() as session:
        stored = session.get_one(User, user.id)
        assert stored.password_hash.startswith("$argon2id$")
        assert "correct horse" not in stored.password_hash
        scope = accounts.user_scope(session, user.id)
    signed_in = accounts.sign_in_throttled(db, "OPS@acme.example", "correct horse 1", None)
    assert signed_in == user.id
    assert scope.account_id == partner.id and scope.kind == accounts.PARTNER
    for email, password in [
        ("ops@acme.example", "wrong password"),
        ("nobody@acme.example", "correct horse 1"),
    ]:
        with pytest.raises(Unauthorized) as caught:
            accounts.sign_in_throttled(db, email, password, None)
        assert caught.value.message == "the email or password is not right"


def test_user_email_is_unique_and_checked(db: Database, partner: Acct) -> None:
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", "long enough pw")
    with db.session() as session, pytest.raises(Conflict):
        accounts.create_user(session, partner.id, "OPS@acme.example", "long enough pw")
    with db.session() as session:
        with pytest.raises(ValidationFailed) as bad_email:
            accounts.create_user(session, partner.id, "not-an-email", "long enough pw")
        assert bad_email.value.field == "email"
        with pytest.raises(ValidationFailed) as short:
            accounts.create_user(session, partner.id, "a@b.example", "short")
        assert short.value.field == "password"
        with pytest.raises(NotFound):
            accounts.create_user(session, "par_nope", "a@b.example", "long enough pw")


def test_a_revoked_key_ends_its_dashboard_sessions(db: Database, partner: Acct) -> None:
    with db.session() as session:
        key = accounts.find_key(session, partner.key)
        assert accounts.key_scope(session, key.id).account_id == partner.id
        accounts.revoke_api_key(session, key.id)
    with db.session() as session, pytest.raises(Unauthorized):
        accounts.key_scope(session, key.id)


def test_cli_creates_lists_and_resets_users(cli_env: None, db: Database, partner: Acct) -> None:
    created = runner.invoke(
        app,
        ["user", "create", "--account", partner.id, "--email", "ops@acme.example", "--json"],
        input="first password\nfirst password\n",
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.output[created.output.index("{") :])["email"] == "ops@acme.example"
    listed = runner.invoke(app, ["user", "list", "--account", partner.id, "--json"])
    assert [u["email"] for u in json.loads(listed.output)] == ["ops@acme.example"]
    reset = runner.invoke(
        app,
        ["user", "set-password", "--email", "ops@acme.example", "--password", "second password"],
    )
    assert reset.exit_code == 0, reset.output
    assert accounts.sign_in_throttled(db, "ops@acme.example", "second password", None)
    duplicate = runner.invoke(
        app,
        ["user", "create", "--account", partner.id, "--email", "ops@acme.example"]
        + ["--password", "another password"],
    )
    assert duplicate.exit_code == 1 and "conflict (email)" in duplicate.output
