"""``didhub billing …`` and ``didhub ledger check``: renewals, call records and
the books from a terminal."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from didhub import outputs
from didhub.billing.service import books, renewals
from didhub.billing.service import usage as billing_usage
from didhub.cli_common import Cli, Shown, command
from didhub.errors import ValidationFailed

billing_app = typer.Typer(help="Renewals and payments.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
APPS = {"billing": billing_app, "ledger": ledger_app}


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date like 2026-01-31", field="as_of") from None


@command(billing_app, "run")
def billing_run(
    cli: Cli,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Bill what is due on this date (YYYY-MM-DD).")
    ] = None,
) -> Shown:
    """Charge every renewal due by the date once; move unpaid accounts along.
    Exit code 1 when an account couldn't be billed (the others were)."""
    report = renewals.run(cli.db, cli.carrier, cli.gateway, cli.settings, _date(as_of))
    out = {
        "as_of": report.as_of.isoformat(),
        "accounts": report.accounts,
        "renewals": report.renewals,
        "charged": outputs.money(report.charged),
        "past_due": report.past_due,
        "suspended": report.suspended,
        "released": report.released,
        "restored": report.restored,
        # account -> why it couldn't be billed (the others were)
        "failed": report.failed,
    }
    return Shown(out, exit_code=1 if report.failed else 0)


@command(billing_app, "import-cdrs")
def billing_import_cdrs(
    cli: Cli,
    file: Annotated[
        Path, typer.Argument(help="CSV with phone_number, direction, start, duration, call_id.")
    ],
) -> Shown:
    """Rate call records from a CSV file; call ids seen before are skipped."""
    report = billing_usage.record(cli.db, cli.settings, billing_usage.read_csv(file))
    return Shown(
        {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "charged": outputs.money(report.charged),
        }
    )


@command(ledger_app, "check")
def ledger_check(cli: Cli) -> Shown:
    """Prove the books: balanced transactions, cached balances equal entries.
    Exit code 1 when they don't."""
    with cli.db.read_session() as session:
        problems = books.check(session)
    lines = [f"[red]{p.kind}[/red] {p.subject}: {p.detail}" for p in problems] or [
        "ledger OK: every transaction balances, every wallet matches its entries"
    ]
    return Shown(
        {"ok": not problems, "problems": [p.__dict__ for p in problems]},
        lines=lines,
        exit_code=1 if problems else 0,
    )
