"""``didhub edge …``: the SIP edge from a terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from didhub.cli_common import Cli, Shown, Table, command
from didhub.routing import edge_check as edge_check_service
from didhub.routing.edge_auth import edge_token

app = typer.Typer(help="The SIP edge (Kamailio).", no_args_is_help=True)


@command(app, "token", json_output=False, check=False)
def edge_token_command(cli: Cli) -> Shown:
    """Print the token the SIP edge presents to didhub (Kamailio's EDGE_TOKEN):
    DIDHUB_EDGE_TOKEN, or the one generated into DIDHUB_EDGE_TOKEN_FILE (now, if
    there is none yet). Run it where `didhub serve` runs, in the same folder."""
    return Shown(edge_token(cli.settings))


@command(app, "check")
def edge_check(
    cli: Cli,
    edge: Annotated[
        str, typer.Option(help="The edge's UDP listener, host:port (run this on that host).")
    ] = "127.0.0.1:5060",
    sample: Annotated[int, typer.Option(min=0, help="Live numbers to compare.")] = 20,
) -> Shown:
    """Does the edge answer, reach didhub, and route numbers as didhub says?
    Exit code 1 on a problem."""
    report = edge_check_service.check(cli.db, cli.settings, edge, sample)
    problems = report.problems
    data = {
        "ok": not problems,
        "edge": report.edge,
        "edge_answers": report.edge_answers,
        "edge_reaches_didhub": report.edge_reaches_didhub,
        "unknown_number_not_found": report.unknown_number_not_found,
        "numbers": [n.__dict__ for n in report.numbers],
        "problems": problems,
    }
    lines = [f"[red]problem[/red] {problem}" for problem in problems] or [
        f"edge OK: {report.edge} answers, reaches didhub, and routes "
        f"{len(report.numbers)} number(s) as didhub does"
    ]
    rows = [{**n.__dict__, "result": n.problem or "ok"} for n in report.numbers]
    table = Table.of(rows, "phone_number:number didhub edge result:")
    return Shown(
        data,
        lines=lines,
        table=table if rows else None,
        exit_code=1 if problems else 0,
    )
