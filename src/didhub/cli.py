"""The ``didhub`` command: the root that mounts every domain's commands
(``<domain>/commands.py``), and the two that are the server's own: ``migrate``
and ``serve``."""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from didhub import cli_common
from didhub.accounts import commands as accounts_commands
from didhub.billing import commands as billing_commands
from didhub.carriers import commands as carriers_commands
from didhub.cli_common import Cli, Shown, command, console
from didhub.db import Database
from didhub.e911 import commands as e911_commands
from didhub.jobs import commands as jobs_commands
from didhub.numbers import commands as numbers_commands
from didhub.outbound import commands as outbound_commands
from didhub.porting import commands as porting_commands
from didhub.routing import commands as routing_commands
from didhub.webhooks import commands as webhooks_commands

app = typer.Typer(
    help="didhub: search, buy, assign and release phone numbers.", no_args_is_help=True
)
for _name, _group in accounts_commands.APPS.items():
    app.add_typer(_group, name=_name)
app.add_typer(numbers_commands.app, name="numbers")
for _name, _group in billing_commands.APPS.items():
    app.add_typer(_group, name=_name)
app.add_typer(webhooks_commands.app, name="webhooks")
for _name, _group in e911_commands.APPS.items():
    app.add_typer(_group, name=_name)
app.add_typer(routing_commands.app, name="edge")
app.add_typer(outbound_commands.app, name="outbound")
app.add_typer(carriers_commands.app, name="stock")
app.add_typer(jobs_commands.app, name="jobs")
app.add_typer(porting_commands.app, name="port")
# Top-level commands a domain owns: didhub reconcile, didhub worker.
app.add_typer(numbers_commands.root_app)
app.add_typer(jobs_commands.root_app)


def _prepare(db: Database) -> str | None:
    from didhub.migrate import ensure_up_to_date

    return ensure_up_to_date(db)


# Every command but migrate finds its database ready, as serve does.
cli_common.prepare_database = _prepare


@command(app, "migrate", json_output=False, check=False, prepare=False)
def migrate(cli: Cli) -> Shown:
    """Create the database (PostgreSQL: if it doesn't exist yet) and apply the
    migrations; says what was done."""
    from didhub.migrate import create_database_if_missing
    from didhub.migrate import migrate as run_migrations

    lines = []
    created = create_database_if_missing(cli.db.url)
    if created is not None:
        lines.append(f"Created the PostgreSQL database {created}")
    lines.append(run_migrations(cli.db).describe())
    return Shown(None, lines=lines)


@command(app, "serve", json_output=False, check=False)
def serve(
    cli: Cli,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool,
        typer.Option(help="Log every request (a line per routing lookup too)."),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes (about one per core; the periodic jobs run in one more).",
        ),
    ] = 1,
) -> Shown:
    """Start the API server (an SQLite or empty PostgreSQL database is migrated
    first)."""
    import uvicorn
    from sqlalchemy import make_url

    from didhub.api.app import create_app

    settings, db = cli.settings, cli.db
    shown_url = make_url(settings.database_url).render_as_string(hide_password=True)
    shown_workers = f", {workers} workers" if workers > 1 else ""
    console.print(
        f"didhub on http://{host}:{port} ({shown_url}, {settings.carrier}{shown_workers})"
    )
    from didhub.logs import uvicorn_config

    if workers > 1:
        from didhub.api.workers import serve as serve_workers

        db.dispose()  # each process opens its own
        serve_workers(host, port, workers, access_log)
        return Shown(None, lines=[])

    server = create_app(settings, db, jobs=True, access_log=access_log)
    # What start-up built (settings, metadata, routes) lives as long as the
    # process: keep it out of full garbage collections' way (see docs/performance.md).
    gc.collect()
    gc.freeze()
    # The access lines are didhub's own (with the request id, didhub.api.observe).
    uvicorn.run(
        server,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=uvicorn_config(settings.log_format, settings.log_level),
    )
    return Shown(None, lines=[])


if __name__ == "__main__":  # pragma: no cover
    app()
