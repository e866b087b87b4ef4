"""``didhub e911 …`` and ``didhub compliance e911``: E911 addresses, locations
and numbers from a terminal."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from didhub.cli_common import Cli, KeyOpt, Shown, Table, command
from didhub.e911 import service as e911
from didhub.e911.schemas import address_shape, compliance_shape, location_shape

app = typer.Typer(help="E911 addresses, locations and numbers.", no_args_is_help=True)
address_app = typer.Typer(help="E911 addresses.", no_args_is_help=True)
location_app = typer.Typer(help="Physical locations (sites).", no_args_is_help=True)
compliance_app = typer.Typer(help="Compliance reports.", no_args_is_help=True)
app.add_typer(address_app, name="address")
app.add_typer(location_app, name="location")
APPS = {"e911": app, "compliance": compliance_app}


def _one_line(fields: dict[str, Any]) -> str:
    unit = f" {fields['unit']}" if fields.get("unit") else ""
    return f"{fields['street']}{unit}, {fields['city']} {fields['state']} {fields['postal_code']}"


@command(address_app, "add")
def e911_address_add(
    cli: Cli,
    key: KeyOpt,
    street: Annotated[str, typer.Option(help="House number and street, e.g. 123 Main St.")],
    city: Annotated[str, typer.Option()],
    state: Annotated[str, typer.Option(help="Two letters or the full name.")],
    postal_code: Annotated[str, typer.Option("--zip", help="ZIP or ZIP+4.")],
    caller_name: Annotated[str, typer.Option(help="The name a 911 dispatcher sees.")],
    unit: Annotated[str | None, typer.Option(help="APT 4B, STE 200, FL 3…")] = None,
    country: Annotated[str, typer.Option()] = "US",
    tenant: Annotated[str | None, typer.Option("--tenant", help="A tenant's address.")] = None,
) -> Shown:
    """Normalize an address and validate it with the carrier."""
    fields = {
        "street": street,
        "unit": unit,
        "city": city,
        "state": state,
        "postal_code": postal_code,
        "country": country,
        "caller_name": caller_name,
        "tenant_id": tenant,
    }
    address = e911.create_address(cli.db, cli.carrier, cli.scope(key), fields)
    shaped = address_shape(address)
    lines = [f"{address.id} {address.status}: {_one_line(shaped)}"]
    if address.suggestion:
        lines += [
            f"carrier suggests: {_one_line(address.suggestion)}",
            f"accept with: didhub e911 address accept {address.id}",
        ]
    return Shown(shaped, lines=lines)


@command(address_app, "list")
def e911_address_list(
    cli: Cli, key: KeyOpt, tenant: Annotated[str | None, typer.Option("--tenant")] = None
) -> Shown:
    """Your E911 addresses (a partner: its tenants' too)."""
    with cli.reading(key) as (scope, session):
        rows = [address_shape(a) for a in e911.list_addresses(session, scope, tenant)]
    shown = [{**r, "address": _one_line(r)} for r in rows]
    return Shown(
        rows,
        table=Table.of(shown, "id tenant_id:tenant address caller_name status"),
    )


@command(address_app, "accept", json_output=False)
def e911_address_accept(cli: Cli, address_id: str, key: KeyOpt) -> Shown:
    """Accept the carrier's suggested form of an address (it becomes validated)."""
    with cli.acting(key) as (scope, session):
        address = e911.accept_suggestion(session, scope, address_id)
        line = f"{address.id} {address.status}"
    return Shown(None, lines=[line])


@command(address_app, "remove", json_output=False)
def e911_address_remove(cli: Cli, address_id: str, key: KeyOpt) -> Shown:
    """Delete an address no number or location uses."""
    with cli.acting(key) as (scope, session):
        e911.delete_address(session, scope, address_id)
    return Shown(None, lines=[f"{address_id} removed"])


def _provisioning(result: e911.Provisioning) -> Shown:
    reason = f" ({result.reason})" if result.reason else ""
    return Shown(
        None,
        lines=[f"{result.phone_number} E911 {result.status}{reason}: address {result.address_id}"],
    )


@command(app, "attach", json_output=False)
def e911_attach(cli: Cli, number_id: str, address_id: str, key: KeyOpt) -> Shown:
    """Give a number a validated E911 address and push it to the carrier."""
    return _provisioning(e911.attach(cli.db, cli.carrier, cli.scope(key), number_id, address_id))


@command(app, "retry", json_output=False)
def e911_retry(cli: Cli, number_id: str, key: KeyOpt) -> Shown:
    """Push a number's failed E911 address to the carrier again."""
    return _provisioning(e911.retry(cli.db, cli.carrier, cli.scope(key), number_id))


@command(app, "detach", json_output=False)
def e911_detach(cli: Cli, number_id: str, key: KeyOpt) -> Shown:
    """Remove a number's E911 address (at the carrier too)."""
    e911.detach(cli.db, cli.carrier, cli.scope(key), number_id)
    return Shown(None, lines=[f"{number_id}: E911 address removed"])


@command(app, "repush", json_output=False)
def e911_repush(
    cli: Cli,
    min_age: Annotated[
        int, typer.Option(help="Leave pushes younger than this many seconds alone.")
    ] = 60,
) -> Shown:
    """Push again E911 addresses a lost carrier answer left pending (the
    e911.repush job does this)."""
    done = e911.repush_pending(cli.db, cli.carrier, timedelta(seconds=min_age))
    return Shown(None, lines=[f"provisioned: {', '.join(done) or 'none'}"])


@command(location_app, "add")
def e911_location_add(cli: Cli, name: str, address_id: str, key: KeyOpt) -> Shown:
    """A physical site, at one of your E911 addresses."""
    with cli.acting(key) as (scope, session):
        shaped = location_shape(e911.create_location(session, scope, name, address_id))
    return Shown(shaped, lines=[f"{shaped['id']} {shaped['name']} at {shaped['address_id']}"])


@command(location_app, "list")
def e911_location_list(cli: Cli, key: KeyOpt) -> Shown:
    """Your physical locations."""
    with cli.reading(key) as (scope, session):
        rows = [location_shape(loc) for loc in e911.list_locations(session, scope)]
    return Shown(
        rows,
        table=Table.of(rows, "id tenant_id:tenant name address_id:address"),
    )


@command(compliance_app, "e911")
def compliance_e911(cli: Cli, key: KeyOpt) -> Shown:
    """Locations with no E911-provisioned number (Kari's Law, RAY BAUM'S Act) and
    active numbers with no provisioned E911 address. Exit code 1 when not compliant."""
    with cli.reading(key) as (scope, session):
        report = compliance_shape(e911.compliance_report(session, scope))
    if report["compliant"]:
        lines = ["E911 compliant: every location has a provisioned number, every number an address"]
    else:
        lines = [
            f"[yellow]location[/yellow] {loc['id']} {loc['name']} "
            f"({_one_line(loc['address'])}): no number with this E911 address"
            for loc in report["locations_without_e911"]
        ]
        for num in report["numbers_without_e911"]:
            state = num["e911_status"] or "no address"
            if num["e911_problem"] == e911.OTHER_ACCOUNTS_ADDRESS:
                state = f"address {num['address_id']} is another account's, not the one it serves"
            lines.append(f"[yellow]number[/yellow] {num['phone_number']}: E911 {state}")
    return Shown(report, lines=lines, exit_code=0 if report["compliant"] else 1)
