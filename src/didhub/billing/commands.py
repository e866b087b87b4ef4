"""``didhub billing …`` and ``didhub ledger check``: renewals, call records and
the books from a terminal."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from didhub import outputs
from didhub.billing.service import books, renewals
from didhub.billing.service import calls as call_records
from didhub.billing.service import usage as billing_usage
from didhub.cli_common import Cli, KeyOpt, Shown, Table, command
from didhub.errors import ValidationFailed

billing_app = typer.Typer(help="Renewals and payments.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
calls_app = typer.Typer(help="Call records: rated calls.", no_args_is_help=True)
APPS = {"billing": billing_app, "ledger": ledger_app, "calls": calls_app}


def _date(value: str | None, field: str = "as_of") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date like 2026-01-31", field=field) from None


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
        Path,
        typer.Argument(
            help="CSV with phone_number, direction, start, duration, call_id, and for"
            " outbound calls optionally destination (rated by the outbound rate table)."
        ),
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


@command(calls_app, "list")
def calls_list(
    cli: Cli,
    key: KeyOpt,
    number: Annotated[str | None, typer.Option(help="An E.164 number or a number id.")] = None,
    direction: Annotated[str | None, typer.Option(help="inbound or outbound.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Calls from this day (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Calls through this day (YYYY-MM-DD).")
    ] = None,
    limit: int = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    csv: Annotated[
        bool, typer.Option("--csv", help="Every matching call as CSV (no pages).")
    ] = False,
) -> Shown:
    """Rated calls, newest first (the same as GET /billing/calls)."""
    scope = cli.scope(key)
    filters = call_records.CallFilter(number, direction, _date(start, "from"), _date(end, "to"))
    if csv:
        for chunk in call_records.export_csv(cli.db, scope, filters):
            sys.stdout.write(chunk)
        return Shown(None, lines=[])
    with cli.db.read_session() as session:
        page = call_records.list_calls(session, scope, filters, limit, cursor)
    rows = [call.shown() for call in page.data]
    lines = [f"next page: --cursor {page.next_cursor}"] if page.next_cursor else []
    return Shown(
        {"data": rows, "meta": {"next_cursor": page.next_cursor, "count": len(rows)}},
        table=Table.of(
            rows,
            "started_at:started phone_number:number direction duration_seconds:seconds "
            "charge currency call_id id",
        ),
        lines=lines or None,
    )
