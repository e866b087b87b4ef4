"""What every CLI command shares: the settings (or one line saying what's
wrong with them), and the refusal to run in another currency than the
ledger's."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError, ProgrammingError

from didhub.billing import ledger
from didhub.config import Settings, describe, get_settings
from didhub.db import Database

console = Console()
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """The settings, or one line naming what's wrong and exit code 1."""
    try:
        return get_settings()
    except (ValidationError, SettingsError) as exc:
        err.print(f"[red]error[/red] {escape(describe(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


def check_currency(db: Database, currency: str) -> None:
    """Refuse to run in a currency other than the ledger's (docs/billing.md)."""
    try:
        with db.session() as session:
            problem = ledger.currency_problem(session, currency)
    except (OperationalError, ProgrammingError):
        return  # not migrated yet: no books to compare
    if problem is not None:
        err.print(f"[red]error[/red] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(1)
