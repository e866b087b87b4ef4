"""What every CLI command shares, written once: the settings (or one line saying
what's wrong with them), the database and the refusal to run in another
currency than the ledger's, the caller's key, a didhub error as one line and
exit code 1, and the answer printed as JSON (``--json``) or for a person.

A domain's ``commands.py`` declares a command with :func:`command`: the
function takes a :class:`Cli` first and returns a :class:`Shown`::

    @command(app, "list")
    def numbers_list(cli: Cli, key: KeyOpt, limit: int = 50) -> Shown:
        rows = ...
        return Shown(rows, table=Table.of(rows, "id phone_number:number status"))
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from sqlalchemy import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from didhub.accounts import service as accounts
from didhub.carriers.base import Carrier
from didhub.config import Settings, describe, get_settings
from didhub.db import Database
from didhub.errors import DidhubError, ValidationFailed
from didhub.inputs import check_amount
from didhub.payments.base import PaymentGateway
from didhub.tenancy import Scope
from didhub.wallet import ledger

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KeyOpt = Annotated[
    str,
    typer.Option("--key", envvar="DIDHUB_API_KEY", help="API key to act as (or DIDHUB_API_KEY)."),
]
OptKeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="DIDHUB_API_KEY", help="API key to act as (or DIDHUB_API_KEY)."),
]

F = TypeVar("F", bound=Callable[..., Any])


def settings_or_exit() -> Settings:
    """The settings, or one line naming what's wrong and exit code 1."""
    try:
        return get_settings()
    except (ValidationError, SettingsError) as exc:
        err.print(f"[red]error[/red] {escape(describe(exc))}")
        raise typer.Exit(1) from None


def check_currency(db: Database, currency: str) -> None:
    """Refuse to run in a currency other than the ledger's (docs/billing.md)."""
    try:
        with db.session() as session:
            problem = ledger.currency_problem(session, currency)
    except (OperationalError, ProgrammingError):
        return  # not migrated yet: no books to compare
    if problem is not None:
        err.print(f"[red]error[/red] {escape(problem)}")
        raise typer.Exit(1)


# What every command does to the database before it runs (didhub.cli sets it:
# migrate an embedded SQLite database as ``serve`` does, or return the one
# line saying to run ``didhub migrate``).
def _nothing_to_prepare(db: Database) -> str | None:
    return None


prepare_database: Callable[[Database], str | None] = _nothing_to_prepare


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def database_problem(exc: BaseException, url: str) -> str:
    """A database that can't be reached, in one line naming the setting."""
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if parsed.drivername.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            return (
                f"DIDHUB_DATABASE_URL: the folder {path.parent} doesn't exist; "
                "create it or point the URL at another one"
            )
        return f"DIDHUB_DATABASE_URL: can't use the SQLite database {path}: {first}"
    if "does not exist" in text and "database" in text:
        return (
            f"DIDHUB_DATABASE_URL: the database {parsed.database!r} doesn't exist on {where}; "
            "run `didhub migrate` to create it (or createdb it yourself)"
        )
    if "password authentication failed" in text or "role" in text and "does not exist" in text:
        return (
            f"DIDHUB_DATABASE_URL: PostgreSQL at {where} refused user {parsed.username!r}; "
            "check the URL's user and password"
        )
    if "refused" in text or "timeout" in text or "translate host" in text or "resolve" in text:
        return (
            f"DIDHUB_DATABASE_URL: can't reach PostgreSQL at {where}; "
            "is it running there? check the URL's host and port"
        )
    return f"DIDHUB_DATABASE_URL: the database at {where} answered: {first}"


@contextmanager
def database(settings: Settings, *, check: bool = True, prepare: bool = True) -> Iterator[Database]:
    """The settings' database, prepared (``prepare``) and checked (``check``);
    a database that can't be reached is one line and exit code 1."""
    url = settings.database_url
    path = _sqlite_path(url) if url.startswith("sqlite") else None
    if path is not None and not path.parent.is_dir():
        err.print(f"[red]error[/red] {escape(database_problem(OSError(), url))}")
        raise typer.Exit(1)
    existed = path is not None and path.exists()
    db = Database.from_settings(settings)
    try:
        try:
            _prepare(db, settings, prepare=prepare, check=check)
        except typer.Exit:
            if path is not None and not existed:
                db.dispose()
                for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    made.unlink(missing_ok=True)  # no empty didhub.db left behind
            raise
        try:
            yield db
        except (OperationalError, InterfaceError) as exc:
            err.print(f"[red]error[/red] {escape(database_problem(exc, url))}")
            raise typer.Exit(1) from None
    finally:
        db.dispose()


def _prepare(db: Database, settings: Settings, *, prepare: bool, check: bool) -> None:
    try:
        problem = prepare_database(db) if prepare else None
        if check:
            check_currency(db, settings.currency)
    except (OperationalError, InterfaceError) as exc:
        problem = database_problem(exc, settings.database_url)
    if problem is not None:
        err.print(f"[red]error[/red] {escape(problem)}")
        raise typer.Exit(1)


def fail(exc: DidhubError) -> typer.Exit:
    where = f" ({exc.field})" if exc.field else ""
    err.print(f"[red]error[/red] {exc.code}{where}: {escape(exc.message)}")
    return typer.Exit(1)


@dataclass
class Cli:
    """A command's context: settings, the database, and the caller."""

    settings: Settings
    db: Database
    _carrier: Carrier | None = None
    _gateway: PaymentGateway | None = None

    def scope(self, key: str) -> Scope:
        with self.db.read_session() as session:
            return accounts.authenticate(session, key)

    @contextmanager
    def acting(self, key: str) -> Iterator[tuple[Scope, Session]]:
        """The key's scope and a transaction to act in."""
        scope = self.scope(key)
        with self.db.session() as session:
            yield scope, session

    @contextmanager
    def reading(self, key: str) -> Iterator[tuple[Scope, Session]]:
        """The key's scope and a read-only session (no write lock on SQLite)."""
        scope = self.scope(key)
        with self.db.read_session() as session:
            yield scope, session

    @property
    def carrier(self) -> Carrier:
        if self._carrier is None:
            from didhub.carriers.registry import make_carrier

            self._carrier = make_carrier(self.settings, self.db)
        return self._carrier

    @property
    def gateway(self) -> PaymentGateway:
        if self._gateway is None:
            from didhub.payments.registry import make_gateway

            self._gateway = make_gateway(self.settings, self.db)
        return self._gateway


@dataclass(frozen=True)
class Table:
    """Rows for a person: every column printed whole (an id is never cut, the
    line runs past the terminal's edge instead)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]

    @classmethod
    def of(cls, items: Sequence[Mapping[str, Any]], columns: str) -> Table:
        """``columns``: the fields to show, space-separated, each with an
        optional ``:title`` (underscores read as spaces; by default the field's
        name): ``"id phone_number:number renews_on:renews"``."""
        fields, titles = [], []
        for spec in columns.split():
            name, _, title = spec.partition(":")
            fields.append(name)
            titles.append((title or name).replace("_", " "))
        return cls(
            titles,
            [["" if item.get(c) is None else str(item[c]) for c in fields] for item in items],
        )

    def widths(self) -> list[int]:
        return [
            max([len(header), *(len(row[i]) for row in self.rows)])
            for i, header in enumerate(self.headers)
        ]

    def render(self) -> RichTable:
        table = RichTable(*self.headers)
        for column, width in zip(table.columns, self.widths(), strict=True):
            column.no_wrap = True
            column.min_width = width
        for row in self.rows:
            table.add_row(*(escape(value) for value in row))
        return table

    def print(self) -> None:
        # As wide as the widest row needs, even past the terminal (or a pipe's
        # 80 columns): a cut id is a wrong id.
        needed = sum(w + 3 for w in self.widths()) + 1
        Console(width=max(console.width, needed), soft_wrap=True).print(self.render())


@dataclass
class Shown:
    """A command's answer: ``data`` for ``--json``; for a person, a table and
    then lines, or (neither given) ``data``'s fields one per line; ``notes`` after.
    ``exit_code`` 1 says "not OK" (a check that found problems)."""

    data: Any
    table: Table | None = None
    lines: Sequence[str] | None = None
    notes: Sequence[str] = field(default_factory=list)
    exit_code: int = 0


def _print(shown: Shown, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(shown.data, indent=2, default=str) + "\n")
    elif shown.table is not None or shown.lines is not None:
        if shown.table is not None:
            shown.table.print()
        for line in shown.lines or []:
            console.print(line, highlight=False)
    elif isinstance(shown.data, Mapping):
        for name, value in shown.data.items():
            console.print(f"{name}: {value}", highlight=False)
    elif shown.data is not None:
        console.print(str(shown.data), highlight=False)
    if not as_json:
        for note in shown.notes:
            console.print(note, highlight=False)


def command(
    group: typer.Typer,
    name: str | None = None,
    *,
    json_output: bool = True,
    check: bool = True,
    prepare: bool = True,
) -> Callable[[F], F]:
    """Register ``fn(cli, …) -> Shown`` as a command of ``group``: the
    settings and database are opened for it (``prepare``: migrated as
    :data:`prepare_database` says; ``check``: refuse another currency than the
    ledger's), a didhub error is one line and exit code 1, and ``--json``
    (with ``json_output``) prints the answer's data."""

    def register(fn: F) -> F:
        # Evaluated here (the domain module's names): typer takes a given
        # __signature__ as it is.
        signature = inspect.signature(fn, eval_str=True)
        params = list(signature.parameters.values())[1:]  # without cli
        if json_output:
            params.append(
                inspect.Parameter(
                    "as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt
                )
            )

        @functools.wraps(fn)
        def run(**options: Any) -> None:
            as_json = bool(options.pop("as_json", False))
            settings = settings_or_exit()
            with database(settings, check=check, prepare=prepare) as db:
                try:
                    shown = fn(Cli(settings, db), **options)
                except DidhubError as exc:
                    raise fail(exc) from None
            _print(shown, as_json)
            if shown.exit_code:
                raise typer.Exit(shown.exit_code)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        group.command(name, help=help_text(fn.__doc__))(run)
        return fn

    return register


def help_text(doc: str | None) -> str:
    """A docstring as ``--help`` shows it: each paragraph one line (the
    terminal wraps it), and reStructuredText's double backticks as one."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(doc or ""))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs).replace("``", "`")


def money(value: str, field: str) -> Decimal:
    """An amount typed on the command line, or a 422-style error naming ``field``."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValidationFailed(f"{value!r} is not an amount", field=field) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed("amount must be zero or more", field=field)
    return check_amount(amount, field)


def pairs(values: Sequence[str] | None, field: str) -> dict[str, str]:
    """``key=value`` options as a mapping."""
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep:
            raise ValidationFailed(f"{value!r}: use key=value", field=field)
        out[key.strip()] = rest.strip()
    return out
