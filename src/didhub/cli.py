"""The ``didhub`` command: the root that mounts every domain's commands
(``<domain>/commands.py``), and the two that are the server's own: ``migrate``
and ``serve``."""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from didhub.accounts import commands as accounts_commands
from didhub.billing import commands as billing_commands
from didhub.carriers import commands as carriers_commands
from didhub.cli_common import Cli, Shown, command, console
from didhub.e911 import commands as e911_commands
from didhub.jobs import commands as jobs_commands
from didhub.numbers import commands as numbers_commands
from didhub.outbound import commands as outbound_commands
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
# Top-level commands a domain owns: didhub reconcile, didhub worker.
app.add_typer(numbers_commands.root_app)
app.add_typer(jobs_commands.root_app)


@command(app, "migrate", json_output=False, check=False)
def migrate(cli: Cli) -> Shown:
    """Apply the database migrations."""
    from didhub.migrate import upgrade

    upgrade(cli.db)
    return Shown(None, lines=["database is up to date"])


@command(app, "serve", json_output=False, check=False)
def serve(
    cli: Cli,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (a line per routing lookup too).")
    ] = True,
) -> Shown:
    """Start the API server (SQLite databases are migrated automatically)."""
    import uvicorn

    from didhub.api.app import create_app
    from didhub.cli_common import check_currency
    from didhub.migrate import is_empty, upgrade

    settings, db = cli.settings, cli.db
    if db.is_sqlite or is_empty(db):
        upgrade(db)
    check_currency(db, settings.currency)
    console.print(f"didhub on http://{host}:{port} ({settings.database_url}, {settings.carrier})")
    server = create_app(settings, db, jobs=True)
    # What start-up built (settings, metadata, routes) lives as long as the
    # process: keep it out of full garbage collections' way (see docs/performance.md).
    gc.collect()
    gc.freeze()
    uvicorn.run(server, host=host, port=port, log_level="info", access_log=access_log)
    return Shown(None, lines=[])


if __name__ == "__main__":  # pragma: no cover
    app()
