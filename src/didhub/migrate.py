"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from didhub.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """What Alembic compares with didhub's models: everything but the job
    queue's own tables (Procrastinate's, applied whole by migration 0015)."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command

    config = alembic_config(db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def is_empty(db: Database) -> bool:
    return not inspect(db.engine).get_table_names()


_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*["\']?(\w+)', re.MULTILINE)


@cache
def _revisions() -> dict[str, str | None]:
    """Each shipped revision and the one before it, read from the files (every
    command asks, and importing Alembic costs more than the command)."""
    found: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        names: dict[str, str] = {
            m.group(1): m.group(2) for m in _REVISION.finditer(path.read_text())
        }
        if "revision" in names:
            down = names.get("down_revision")
            found[names["revision"]] = None if down == "None" else down
    return found


def head_revision() -> str:
    revisions = _revisions()
    (head,) = set(revisions) - set(revisions.values())
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""
    try:
        with db.engine.connect() as connection:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" not in str(exc):
            raise  # not a missing table: the database itself is the problem
        return None
    return None if row is None else str(row[0])


def is_known(revision: str) -> bool:
    """Whether this didhub ships ``revision`` (a newer didhub's isn't)."""
    return revision in _revisions()


@dataclass(frozen=True)
class Migrated:
    before: str | None
    after: str | None
    tables: int

    def describe(self) -> str:
        if self.before is None:
            return f"Created the database schema at revision {self.after} ({self.tables} tables)"
        if self.before != self.after:
            return f"Upgraded the database from revision {self.before} to {self.after}"
        return f"Already up to date at revision {self.after}"


def migrate(db: Database) -> Migrated:
    """Bring the database to the newest revision and say what changed."""
    before = current_revision(db)
    upgrade(db)
    return Migrated(before, current_revision(db), len(inspect(db.engine).get_table_names()))


def ensure_up_to_date(db: Database) -> str | None:
    """What every command does first (``didhub serve`` too): an embedded
    SQLite database, or an empty PostgreSQL one, is migrated to the newest
    revision; a PostgreSQL database behind it gives the line saying to run
    ``didhub migrate`` (returned; None when there is nothing to say)."""
    current, head = current_revision(db), head_revision()
    if current == head or (current is not None and not is_known(current)):
        return None  # up to date, or a newer didhub's schema: its own checks apply
    if db.is_sqlite or is_empty(db):
        upgrade(db)
        return None
    return (
        f"the database is at revision {current or 'none'}, this didhub needs {head}: "
        "run `didhub migrate`"
    )


def create_database_if_missing(url: str) -> str | None:
    """On PostgreSQL, create the URL's database when it doesn't exist (as the
    URL's user, connected to the server's ``postgres`` database); the name of
    the database created, or None."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return None
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            ).first()
            if exists:
                return None
            quoted = connection.dialect.identifier_preparer.quote(parsed.database)
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return parsed.database
    finally:
        engine.dispose()
