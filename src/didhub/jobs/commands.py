"""``didhub worker`` and ``didhub jobs …``: the periodic jobs from a terminal."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from didhub.carriers.registry import make_carrier
from didhub.cli_common import check_currency, settings_or_exit
from didhub.db import Database
from didhub.jobs.base import Runtime, cron_for
from didhub.jobs.registry import BY_NAME, JOBS, run_round
from didhub.payments.registry import make_gateway

app = typer.Typer(help="Periodic jobs: renewals, reconcile, re-pushes, webhooks.")
console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _runtime() -> Runtime:
    settings = settings_or_exit()
    db = Database.from_settings(settings)
    check_currency(db, settings.currency)
    return Runtime(db, make_carrier(settings, db), make_gateway(settings, db), settings)


def _schedule(every: float, sqlite: bool) -> str:
    if every <= 0:
        return "off"
    return f"every {every:g}s" if sqlite else f"cron '{cron_for(every)}'"


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs run at once (default: one per periodic job, so none waits)."),
    ] = None,
) -> None:
    """Run the periodic jobs on PostgreSQL's job queue until stopped (Ctrl-C,
    SIGTERM). Run one or more beside the servers; each tick runs once."""
    from didhub.jobs.queue import make_app, run_worker, worker_name

    rt = _runtime()
    if rt.db.is_sqlite:
        err.print(
            "[red]error[/red] didhub worker needs PostgreSQL (DIDHUB_DATABASE_URL); "
            "on SQLite `didhub serve` runs the periodic jobs itself"
        )
        raise typer.Exit(1)
    enabled = [job for job in JOBS if job.every(rt.settings) > 0]
    console.print(
        f"didhub worker: {len(enabled)} periodic job(s) on {rt.db.engine.url.database}",
        highlight=False,
    )
    try:
        asyncio.run(
            run_worker(
                make_app(rt, enabled),
                rt,
                name=worker_name("worker"),
                concurrency=concurrency or max(1, len(enabled)),
                install_signal_handlers=True,
            )
        )
    finally:
        rt.db.dispose()


@app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """The periodic jobs and their schedules."""
    settings = settings_or_exit()
    sqlite = settings.database_url.startswith("sqlite")
    rows = [
        {
            "name": job.name,
            "schedule": _schedule(job.every(settings), sqlite),
            "description": job.description,
        }
        for job in JOBS
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("name", "schedule", "what it does")
    for row in rows:
        table.add_row(row["name"], row["schedule"], row["description"])
    console.print(table)


@app.command("run")
def jobs_run(
    names: Annotated[
        list[str] | None, typer.Argument(help="Jobs to run (default: all), e.g. billing.renewals.")
    ] = None,
) -> None:
    """Run jobs once now, here, one after another (beside the scheduled runs:
    each is safe to repeat and to run at the same time as another)."""
    unknown = [name for name in names or [] if name not in BY_NAME]
    if unknown:
        err.print(f"[red]error[/red] no job named {', '.join(unknown)} (see `didhub jobs list`)")
        raise typer.Exit(1)
    rt = _runtime()
    try:
        outcome = run_round(rt, names or None)
    finally:
        rt.db.dispose()
    for name, failure in outcome.items():
        console.print(f"{name}: {'ok' if failure is None else f'failed: {failure}'}")
    if any(failure is not None for failure in outcome.values()):
        raise typer.Exit(1)


@app.command("status")
def jobs_status(as_json: JsonOpt = False) -> None:
    """What the job queue ran lately (PostgreSQL): per job, runs by outcome in
    the last hour and when it last finished."""
    settings = settings_or_exit()
    db = Database.from_settings(settings)
    try:
        if db.is_sqlite:
            err.print(
                "[red]error[/red] on SQLite the jobs run inside `didhub serve` and keep no "
                "record; its log has each failure"
            )
            raise typer.Exit(1)
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT j.task_name, j.status::text, count(*), max(e.at) "
                    "FROM procrastinate_jobs j "
                    "LEFT JOIN procrastinate_events e ON e.job_id = j.id "
                    "WHERE j.scheduled_at > now() - interval '1 hour' "
                    "   OR e.at > now() - interval '1 hour' "
                    "GROUP BY j.task_name, j.status ORDER BY j.task_name, j.status::text"
                )
            ).all()
    finally:
        db.dispose()
    out: dict[str, dict[str, Any]] = {}
    for task, status, count, last in rows:
        entry = out.setdefault(task, {"runs": {}, "last_event": None})
        entry["runs"][status] = count
        if last is not None and (entry["last_event"] is None or last > entry["last_event"]):
            entry["last_event"] = last
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    table = Table("job", "runs (last hour)", "last event")
    for task, entry in out.items():
        runs = ", ".join(f"{n} {s}" for s, n in sorted(entry["runs"].items()))
        table.add_row(task, runs, str(entry["last_event"] or ""))
    console.print(table)
