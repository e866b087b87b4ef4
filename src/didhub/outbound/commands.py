"""``didhub outbound …``: SIP credentials and the operator's outbound trunks."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from didhub.cli_common import Cli, KeyOpt, Shown, Table, command
from didhub.outbound import service as outbound
from didhub.outbound.models import OutboundTrunk

app = typer.Typer(help="Outbound calls: SIP credentials and trunks.", no_args_is_help=True)


@command(app, "credential", json_output=True)
def credential(cli: Cli, agent_id: str, key: KeyOpt) -> Shown:
    """Create or rotate an agent's SIP credential (the password is shown once)."""
    with cli.acting(key) as (scope, session):
        issued = outbound.issue_credential(session, cli.settings, scope, agent_id)
        numbers = [n.e164 for n in outbound.outbound_numbers(session, agent_id)]
    data = {
        "agent_id": issued.agent_id,
        "username": issued.username,
        "realm": issued.realm,
        "password": issued.password,
        "outbound_numbers": numbers,
    }
    return Shown(
        data,
        notes=["The password is shown this once: put it in the agent's SIP client now."],
    )


@command(app, "trunk-add")
def trunk_add(
    cli: Cli,
    name: str,
    host: Annotated[str, typer.Option(help="The carrier's SIP host[:port].")],
    prefix: Annotated[str, typer.Option(help="Destinations it serves (E.164 digits).")] = "",
    tech_prefix: Annotated[str, typer.Option(help="Digits the carrier wants first.")] = "",
    cost: Annotated[str, typer.Option(help="Cost a minute (decides the order).")] = "0",
    emergency: Annotated[bool, typer.Option(help="Carries 911/933 calls.")] = False,
) -> Shown:
    """Add an outbound trunk (operator): calls go out cheapest first."""
    with cli.db.session() as session:
        trunk = outbound.add_trunk(
            session,
            name,
            host,
            prefix=prefix,
            tech_prefix=tech_prefix,
            cost=Decimal(cost),
            emergency=emergency,
        )
        data = _trunk(trunk)
    return Shown(data)


@command(app, "trunks")
def trunks(cli: Cli) -> Shown:
    """The outbound trunks, cheapest first."""
    with cli.db.read_session() as session:
        rows = [_trunk(t) for t in outbound.list_trunks(session)]
    return Shown(rows, table=Table.of(rows, "id name host prefix tech_prefix cost emergency"))


@command(app, "trunk-remove", json_output=False)
def trunk_remove(cli: Cli, trunk_id: str) -> Shown:
    """Remove an outbound trunk."""
    with cli.db.session() as session:
        outbound.remove_trunk(session, trunk_id)
    return Shown(None, lines=[f"{trunk_id} removed"])


def _trunk(t: OutboundTrunk) -> dict[str, str]:
    return {
        "id": t.id,
        "name": t.name,
        "host": t.host,
        "prefix": t.prefix,
        "tech_prefix": t.tech_prefix,
        "cost": str(t.cost),
        "emergency": "yes" if t.emergency else "no",
    }
