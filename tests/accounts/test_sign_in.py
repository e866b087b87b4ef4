"""Sign-in that's safe to put on the internet: guessing is limited per email and
per network address with a short lockout, password hashing is limited to a few
at a time, and signing out ends the session on the server, so a copied cookie
is worth nothing afterwards (issue 13, items 4 and 7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import Acct
from dashboard import PASSWORD, csrf_of, sign_in
from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts import throttle
from didhub.cli import app as cli
from didhub.db import Database
from didhub.errors import TooManyRequests
from didhub.web import session as web_session

T0 = datetime(2027, 6, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2 with its cheapest parameters: these tests count attempts, not
    the cost of one (a hash keeps its parameters, so verifying stays cheap)."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    accounts._dummy_hash.cache_clear()
    yield
    accounts._dummy_hash.cache_clear()


@pytest.fixture
def user(db: Database, partner: Acct) -> Acct:
    with db.session() as session:
        accounts.create_user(session, partner.id, "ops@acme.example", PASSWORD)
    return partner


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash verified (the expensive step)."""
    seen: list[str] = []
    real = accounts._hasher

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            seen.append(password)
            return real.verify(stored, password)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(accounts, "_hasher", Counting())
    return seen


def attempt(client: TestClient, email: str, password: str, address: str = "198.51.100.7") -> int:
    """One sign-in through the form, from ``address``; answers the status."""
    browser = TestClient(client.app, client=(address, 50000))
    token = csrf_of(browser.get("/dashboard/login").text)
    answer = browser.post(
        "/dashboard/login",
        data={"csrf_token": token, "email": email, "password": password},
        follow_redirects=False,
    )
    if answer.status_code == 429:
        assert answer.headers["Retry-After"].isdigit()
    return answer.status_code


def test_guessing_one_email_locks_it_out_before_any_hashing(
    client: TestClient, user: Acct, hashes: list[str]
) -> None:
    clock.set_clock(lambda: T0)
    for n in range(5):
        assert attempt(client, "ops@acme.example", f"guess {n}", f"203.0.113.{n}") == 401
    hashed = len(hashes)
    browser = TestClient(client.app, client=("198.51.100.8", 50000))
    token = csrf_of(browser.get("/dashboard/login").text)
    locked = browser.post(
        "/dashboard/login",
        data={"csrf_token": token, "email": "OPS@acme.example", "password": PASSWORD},
    )
    assert locked.status_code == 429
    assert "try again in 15 minute(s)" in locked.text and "for this email" in locked.text
    assert int(locked.headers["Retry-After"]) == 15 * 60 + 1
    assert len(hashes) == hashed  # refused without hashing
    # A quarter of an hour later the right password works, and clears the count.
    clock.set_clock(lambda: T0 + timedelta(minutes=15, seconds=1))
    assert attempt(client, "ops@acme.example", PASSWORD) == 303
    for n in range(4):
        assert attempt(client, "ops@acme.example", f"again {n}", f"203.0.113.{n}") == 401
    assert attempt(client, "ops@acme.example", PASSWORD) == 303


def test_one_address_trying_many_emails_is_locked_out_and_others_are_not(
    client: TestClient, user: Acct
) -> None:
    clock.set_clock(lambda: T0)
    for n in range(20):
        assert attempt(client, f"someone{n}@acme.example", "guess", "192.0.2.66") == 401
    assert attempt(client, "ops@acme.example", PASSWORD, "192.0.2.66") == 429
    assert attempt(client, "ops@acme.example", PASSWORD, "192.0.2.99") == 303


def test_password_hashes_run_a_few_at_a_time(
    db: Database, user: Acct, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = throttle.HashingSlots(1, wait=0.2)
    monkeypatch.setattr(accounts, "HASHING", slots)
    held, release = threading.Event(), threading.Event()

    def occupy() -> None:
        with slots.slot():
            held.set()
            release.wait(5)

    busy = threading.Thread(target=occupy)
    busy.start()
    assert held.wait(5)
    with pytest.raises(TooManyRequests) as crowded:
        accounts.sign_in_throttled(db, "ops@acme.example", PASSWORD, "192.0.2.1")
    assert "too many sign-ins at once" in crowded.value.message
    release.set()
    busy.join()
    assert accounts.sign_in_throttled(db, "ops@acme.example", PASSWORD, "192.0.2.1")


def test_signing_out_ends_the_session_for_a_copied_cookie_too(
    client: TestClient, user: Acct, settings: object, db: Database
) -> None:
    token = sign_in(client, email="ops@acme.example", password=PASSWORD)
    stolen = client.cookies.get(web_session.COOKIE)
    assert stolen
    thief = TestClient(client.app)
    thief.cookies.set(web_session.COOKIE, stolen)
    assert thief.get("/dashboard/numbers/inventory").status_code == 200
    out = client.post("/dashboard/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    after = thief.get("/dashboard/numbers/inventory", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/dashboard/login")


def test_a_new_password_ends_every_session_of_the_user(
    client: TestClient, user: Acct, cli_env: None
) -> None:
    sign_in(client, email="ops@acme.example", password=PASSWORD)
    assert client.get("/dashboard/numbers/inventory").status_code == 200
    reset = CliRunner().invoke(
        cli, ["user", "set-password", "--email", "ops@acme.example", "--password", "a new one 123"]
    )
    assert reset.exit_code == 0, reset.output
    after = client.get("/dashboard/numbers/inventory", follow_redirects=False)
    assert after.status_code == 303
