"""The first minutes with didhub, run as a person does: the real ``didhub``
console script in a fresh folder (issue 17, items 1–3). Every failure is one
line on stderr naming the setting and what to do, exit code 1, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from didhub.db import Database
from didhub.migrate import _revisions, alembic_config, head_revision

DIDHUB = str(Path(sys.executable).parent / "didhub")
PG_URL = os.environ.get("DIDHUB_DATABASE_URL", "")
ON_PG = PG_URL.startswith("postgresql")
HEAD = head_revision()
BEFORE_HEAD = _revisions()[HEAD]


def didhub(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIDHUB_")}
    return subprocess.run(
        [DIDHUB, *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def test_a_database_command_in_a_fresh_folder_prepares_the_database(tmp_path: Path) -> None:
    created = didhub(tmp_path, "partner", "create", "Acme Voice", "--balance", "10.00")
    assert created.returncode == 0, created.stderr
    assert "partner par_" in created.stdout and "API key (shown once): dh_" in created.stdout
    # The same didhub.db serve would use, migrated to the newest revision.
    with sqlite3.connect(tmp_path / "didhub.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
    checked = didhub(tmp_path, "ledger", "check")
    assert checked.returncode == 0 and "ledger OK" in checked.stdout
    assert didhub(tmp_path, "migrate").stdout.strip() == f"Already up to date at revision {HEAD}"


def test_a_missing_folder_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    result = didhub(
        tmp_path, "numbers", "list", "--key", "dh_x", DIDHUB_DATABASE_URL="sqlite:///nope/d.db"
    )
    one_line_error(result, "DIDHUB_DATABASE_URL", "nope", "doesn't exist", "create it")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a database URL; write it as sqlite:///"),
        ("mysql://u@localhost/x", "runs on SQLite or PostgreSQL, not mysql"),
        ("postgresql+psycopg2://u@localhost/x", "begin the URL with postgresql+psycopg://"),
        # Nothing listens on port 1: PostgreSQL (postgres:// is taken as it) unreachable.
        ("postgres://postgres@127.0.0.1:1/didhub", "can't reach PostgreSQL at 127.0.0.1:1"),
    ],
)
def test_a_wrong_database_url_is_one_line(tmp_path: Path, url: str, expected: str) -> None:
    for command in (["tenant", "list"], ["migrate"]):
        result = didhub(tmp_path, *command, DIDHUB_DATABASE_URL=url)
        one_line_error(result, "DIDHUB_DATABASE_URL", expected)
    assert not (tmp_path / "didhub.db").exists()


def test_a_bad_value_in_dotenv_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIDHUB_DB_POOL_SIZE=lots\n")
    one_line_error(didhub(tmp_path, "tenant", "list"), "DIDHUB_DB_POOL_SIZE", "integer")
    (tmp_path / ".env").write_text("DIDHUB_PRICES={not json\n")
    one_line_error(didhub(tmp_path, "tenant", "list"), "DIDHUB_PRICES")
    assert not (tmp_path / "didhub.db").exists()


def test_migrate_says_what_it_did_on_sqlite(tmp_path: Path) -> None:
    first = didhub(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(tmp_path / "didhub.db") as conn:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
    assert first.stdout.strip() == (
        f"Created the database schema at revision {HEAD} ({tables[0]} tables)"
    )
    _downgrade(f"sqlite:///{tmp_path / 'didhub.db'}")
    again = didhub(tmp_path, "migrate")
    assert again.stdout.strip() == f"Upgraded the database from revision {BEFORE_HEAD} to {HEAD}"


def _downgrade(url: str) -> None:
    from alembic import command

    db = Database(url)
    try:
        config = alembic_config(url)
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, BEFORE_HEAD or "base")
    finally:
        db.dispose()


@pytest.fixture
def new_pg_database() -> Iterator[str]:
    """A PostgreSQL URL on the tests' server naming a database that doesn't
    exist yet (dropped again afterwards)."""
    if not ON_PG:
        pytest.skip("needs DIDHUB_DATABASE_URL pointing at PostgreSQL")
    name = f"{make_url(PG_URL).database}_first_run_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_URL).set(database=name)
    yield url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgres", 1)
    admin = Database(make_url(PG_URL).render_as_string(hide_password=False))
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgresql_first_run(tmp_path: Path, new_pg_database: str) -> None:
    url, name = new_pg_database, make_url(new_pg_database).database
    # Before migrate: the missing database is named, with what to do.
    missing = didhub(tmp_path, "tenant", "list", DIDHUB_DATABASE_URL=url)
    one_line_error(missing, "DIDHUB_DATABASE_URL", f"'{name}' doesn't exist", "didhub migrate")
    # migrate creates it (a Heroku-style postgres:// URL is PostgreSQL) and its schema.
    created = didhub(tmp_path, "migrate", DIDHUB_DATABASE_URL=url)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert lines[0] == f"Created the PostgreSQL database {name}"
    assert lines[1].startswith(f"Created the database schema at revision {HEAD} (")
    assert didhub(tmp_path, "tenant", "create", "T", DIDHUB_DATABASE_URL=url).returncode == 0
    # Behind the newest revision a command says to migrate; migrate says from where.
    _downgrade(url.replace("postgres://", "postgresql+psycopg://", 1))
    behind = didhub(tmp_path, "tenant", "list", DIDHUB_DATABASE_URL=url)
    one_line_error(behind, f"revision {BEFORE_HEAD}", f"needs {HEAD}", "run `didhub migrate`")
    upgraded = didhub(tmp_path, "migrate", DIDHUB_DATABASE_URL=url)
    assert upgraded.stdout.strip() == (
        f"Upgraded the database from revision {BEFORE_HEAD} to {HEAD}"
    )
    assert didhub(tmp_path, "migrate", DIDHUB_DATABASE_URL=url).stdout.strip() == (
        f"Already up to date at revision {HEAD}"
    )
