"""Shared fixtures: a real database (SQLite by default, PostgreSQL when
``DIDHUB_DATABASE_URL`` says so), migrated once with the project's own Alembic
migrations and emptied after every test; the sandbox carrier; an API client;
and factories for accounts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, make_url, text

import didhub.models  # noqa: F401
from didhub import clock
from didhub.accounts import service as accounts
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings, get_settings
from didhub.db import Base, Database
from didhub.migrate import upgrade


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("DIDHUB_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_root / 'didhub-test.db'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return url
    # pytest-xdist: each worker empties and migrates a database of its own,
    # named after the one given (test → test_gw0, test_gw1…), created here.
    base = make_url(url)
    own = f"{base.database}_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{own}"'))
    admin.dispose()
    return base.set(database=own).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def _migrated(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    with db.engine.begin() as conn:
        if not db.is_sqlite:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(db)
    yield db
    db.dispose()


def _empty(db: Database) -> None:
    # routing_generation keeps its one row: every process's route cache reads it.
    tables = [
        t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "routing_generation"
    ]
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(_migrated: Database) -> Iterator[Database]:
    yield _migrated
    clock.set_clock(None)
    _empty(_migrated)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-only-secret-key-0123456789abcdef",
        # Webhook receivers in tests listen on loopback (a lab's setting);
        # tests/test_webhook_targets.py checks the production rule.
        webhook_allow_private=True,
        # The SIP edge's endpoints are asked from the test client without a
        # token (a lab's setting); tests/test_edge_auth.py checks the token.
        edge_trust_loopback=True,
        edge_token="test-edge-token-0123456789",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def cli_env(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ``didhub`` commands (typer's CliRunner, in this process) on the test
    database, with the test carrier's sandbox seed and no API key of the shell."""
    monkeypatch.setenv("DIDHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("DIDHUB_SANDBOX_SEED", "test")
    monkeypatch.delenv("DIDHUB_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def carrier(db: Database) -> SandboxCarrier:
    return SandboxCarrier(db, seed="test")


@pytest.fixture
def client(settings: Settings, db: Database, carrier: SandboxCarrier) -> TestClient:
    return TestClient(create_app(settings, db, carrier))


@dataclass
class Acct:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def make_partner(db: Database, settings: Settings) -> Callable[..., Acct]:
    def make(name: str = "Acme Voice", balance: str = "100.00") -> Acct:
        with db.session() as session:
            partner = accounts.create_partner(session, name, settings.currency)
            accounts.fund_wallet(session, partner.id, Decimal(balance), settings.currency, "test")
            key = accounts.create_api_key(session, partner.id)
            return Acct(partner.id, key.secret)

    return make


@pytest.fixture
def make_tenant(db: Database, settings: Settings) -> Callable[..., Acct]:
    def make(name: str = "Tenant", partner_id: str | None = None, balance: str = "0") -> Acct:
        with db.session() as session:
            tenant = accounts.create_tenant(session, name, settings.currency, partner_id)
            accounts.fund_wallet(session, tenant.id, Decimal(balance), settings.currency, "test")
            key = accounts.create_api_key(session, tenant.id)
            return Acct(tenant.id, key.secret)

    return make


@pytest.fixture
def partner(make_partner: Callable[..., Acct]) -> Acct:
    return make_partner()


def until(check: Callable[[], Any], limit: float = 5.0) -> bool:
    """Whether ``check()`` came true within ``limit`` seconds (asked every 20 ms)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def search_numbers(client: TestClient, acct: Acct, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/telephony/numbers/search", json=body, headers=acct.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def buy(client: TestClient, acct: Acct, *numbers: str, **headers: str) -> dict[str, Any]:
    response = client.post(
        "/telephony/numbers/purchase",
        json={"phone_numbers": list(numbers)},
        headers={**acct.headers, **headers},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@contextmanager
def sent_statements(
    db: Database, keep: Callable[[str], bool] = lambda statement: True
) -> Iterator[list[str]]:
    """The SQL the engine sends while the block runs (those ``keep`` keeps)."""
    sent: list[str] = []

    def note(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if keep(statement):
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


@contextmanager
def transaction_ends(engine: Any) -> Iterator[list[str]]:
    """How each transaction on ``engine`` ended while the block runs, in order:
    "commit" or "rollback"."""
    ended: list[str] = []

    def committed(_conn: Any) -> None:
        ended.append("commit")

    def rolled_back(_conn: Any) -> None:
        ended.append("rollback")

    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
    try:
        yield ended
    finally:
        event.remove(engine, "commit", committed)
        event.remove(engine, "rollback", rolled_back)


def ledger_ok(db: Database) -> bool:
    from didhub.billing.service import books

    with db.session() as session:
        return books.check(session) == []


def _topup(client: TestClient, acct: Acct, amount: str) -> None:
    """Operator credit to a wallet (the top-up API arrives with billing)."""
    app_ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with app_ctx.db.session() as session:
        accounts.fund_wallet(
            session, acct.id, Decimal(amount), app_ctx.settings.currency, "test top-up"
        )
