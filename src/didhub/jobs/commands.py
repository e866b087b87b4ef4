"""``didhub worker`` and ``didhub jobs …``: the periodic jobs from a terminal."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from sqlalchemy import text

from didhub.cli_common import Cli, Shown, Table, command
from didhub.errors import ValidationFailed
from didhub.jobs.registry import BY_NAME, JOBS, run_round
from didhub.runtime import Runtime, cron_for

app = typer.Typer(help="Periodic jobs: renewals, reconcile, re-pushes, webhooks.")
# Commands at the top level (didhub worker), merged into the root app.
root_app = typer.Typer()


def _runtime(cli: Cli) -> Runtime:
    return Runtime(cli.db, cli.carrier, cli.gateway, cli.settings)


def _schedule(every: float, sqlite: bool) -> str:
    if every <= 0:
        return "off"
    return f"every {every:g}s" if sqlite else f"cron '{cron_for(every)}'"


@command(root_app, "worker", json_output=False)
def worker(
    cli: Cli,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs run at once (default: one per periodic job, so none waits)."),
    ] = None,
) -> Shown:
    """Run the periodic jobs on PostgreSQL's job queue until stopped (Ctrl-C,
    SIGTERM). Run one or more beside the servers; each tick runs once."""
    from didhub.jobs.queue import make_app, run_worker, worker_name

    if cli.db.is_sqlite:
        raise ValidationFailed(
            "didhub worker needs PostgreSQL (DIDHUB_DATABASE_URL); on SQLite "
            "`didhub serve` runs the periodic jobs itself",
            field="DIDHUB_DATABASE_URL",
            code="needs_postgresql",
        )
    rt = _runtime(cli)
    enabled = [job for job in JOBS if job.every(rt.settings) > 0]
    typer.echo(f"didhub worker: {len(enabled)} periodic job(s) on {cli.db.engine.url.database}")
    asyncio.run(
        run_worker(
            make_app(rt, enabled),
            rt,
            name=worker_name("worker"),
            concurrency=concurrency or max(1, len(enabled)),
            install_signal_handlers=True,
        )
    )
    return Shown(None, lines=["didhub worker stopped"])


@command(app, "list", check=False)
def jobs_list(cli: Cli) -> Shown:
    """The periodic jobs and their schedules."""
    rows = [
        {
            "name": job.name,
            "schedule": _schedule(job.every(cli.settings), cli.db.is_sqlite),
            "description": job.description,
        }
        for job in JOBS
    ]
    return Shown(
        rows,
        table=Table.of(rows, "name schedule description:what_it_does"),
    )


@command(app, "run", json_output=False)
def jobs_run(
    cli: Cli,
    names: Annotated[
        list[str] | None, typer.Argument(help="Jobs to run (default: all), e.g. billing.renewals.")
    ] = None,
) -> Shown:
    """Run jobs once now, here, one after another (beside the scheduled runs:
    each is safe to repeat and to run at the same time as another). Exit code 1
    when one failed."""
    unknown = [name for name in names or [] if name not in BY_NAME]
    if unknown:
        raise ValidationFailed(
            f"no job named {', '.join(unknown)} (see `didhub jobs list`)", field="names"
        )
    outcome = run_round(_runtime(cli), names or None)
    return Shown(
        None,
        lines=[
            f"{name}: {'ok' if failure is None else f'failed: {failure}'}"
            for name, failure in outcome.items()
        ],
        exit_code=1 if any(failure is not None for failure in outcome.values()) else 0,
    )


@command(app, "status")
def jobs_status(cli: Cli) -> Shown:
    """What the job queue ran lately (PostgreSQL): per job, runs by outcome in
    the last hour and when it last finished."""
    if cli.db.is_sqlite:
        raise ValidationFailed(
            "on SQLite the jobs run inside `didhub serve` and keep no record; its log "
            "has each failure",
            field="DIDHUB_DATABASE_URL",
            code="needs_postgresql",
        )
    with cli.db.engine.connect() as conn:
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
    out: dict[str, dict[str, Any]] = {}
    for task, status, count, last in rows:
        entry = out.setdefault(task, {"runs": {}, "last_event": None})
        entry["runs"][status] = count
        if last is not None and (entry["last_event"] is None or last > entry["last_event"]):
            entry["last_event"] = last
    shown = [
        {
            "job": task,
            "runs": ", ".join(f"{n} {s}" for s, n in sorted(entry["runs"].items())),
            "last_event": entry["last_event"],
        }
        for task, entry in out.items()
    ]
    return Shown(
        out,
        table=Table.of(shown, "job runs:runs_(last_hour) last_event"),
    )
