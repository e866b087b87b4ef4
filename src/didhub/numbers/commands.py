"""``didhub numbers …`` and ``didhub reconcile``: the number lifecycle from a
terminal, through the same services as the API."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from didhub import outputs
from didhub.billing.service import assignments
from didhub.carriers import byo as byo_providers
from didhub.cli_common import Cli, KeyOpt, Shown, Table, command, pairs
from didhub.e911 import service as e911
from didhub.errors import ValidationFailed
from didhub.numbers import byo, cnam
from didhub.numbers import schemas as number_schemas
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.numbers.schemas import SearchRequest
from didhub.tenancy import Scope
from didhub.wallet import service as billing_wallet

app = typer.Typer(help="Phone numbers.", no_args_is_help=True)
# Commands at the top level (didhub reconcile), merged into the root app.
root_app = typer.Typer()

SEARCH_COLUMNS = (
    "phone_number:number phone_number_type:type locality:city administrative_area:state "
    "rate_center monthly_cost:monthly upfront_cost:setup"
)
INVENTORY_COLUMNS = "id phone_number:number status assigned_to inbound outbound renews_on:renews"


@command(app, "search")
def numbers_search(
    cli: Cli,
    key: KeyOpt,
    country_code: Annotated[str, typer.Option("--country")] = "US",
    state: Annotated[str | None, typer.Option("--state")] = None,
    area_code: Annotated[str | None, typer.Option("--area-code")] = None,
    nxx: Annotated[str | None, typer.Option("--nxx")] = None,
    city: Annotated[str | None, typer.Option("--city")] = None,
    rate_center: Annotated[str | None, typer.Option("--rate-center")] = None,
    pattern: Annotated[str | None, typer.Option("--pattern", help="e.g. 877-555-XXXX")] = None,
    number_type: Annotated[
        str | None,
        typer.Option("--type", help="local|toll-free|mobile (default: what --pattern implies)"),
    ] = None,
    page: int = 1,
    page_size: int = 20,
) -> Shown:
    """Search available numbers."""
    try:
        request = SearchRequest(
            country_code=country_code,
            administrative_area=state,
            area_code=area_code,
            nxx=nxx,
            locality=city,
            rate_center=rate_center,
            pattern=pattern,
            phone_number_type=number_type,
            page=page,
            page_size=page_size,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise ValidationFailed(first["msg"], field=where) from None
    scope = cli.scope(key)
    found = numbers.search(
        cli.db, cli.carrier, scope, request.to_query(), request.page, request.page_size
    )
    rows = [number_schemas.available(cli.settings, n) for n in found.data]
    flat = [{**r, **r["cost_information"]} for r in rows]
    return Shown(
        rows,
        table=Table.of(flat, SEARCH_COLUMNS),
    )


@command(app, "buy")
def numbers_buy(
    cli: Cli,
    phone_numbers: Annotated[list[str], typer.Argument(help="E.164 numbers to buy.")],
    key: KeyOpt,
) -> Shown:
    """Buy numbers, paid from the wallet."""
    scope = cli.scope(key)
    result = numbers.purchase(
        cli.db, cli.carrier, cli.settings, scope, phone_numbers, gateway=cli.gateway
    )
    with cli.db.read_session() as session:
        shaped = number_schemas.phone_numbers(session, result.numbers, fresh=result.fresh)
    out = {
        "order_id": result.order_id,
        "charged": outputs.money(result.charged),
        "refunded": outputs.money(result.refunded),
        "numbers": shaped,
    }
    lines = [f"{n['phone_number']}  {n['status']}  id={n['id']}" for n in shaped]
    lines.append(f"order {out['order_id']}: charged {out['charged']}, refunded {out['refunded']}")
    return Shown(out, lines=lines)


@command(app, "list")
def numbers_list(
    cli: Cli,
    key: KeyOpt,
    status: Annotated[str | None, typer.Option(help="a status or 'all'")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    q: Annotated[str | None, typer.Option("--search")] = None,
    limit: int = 50,
) -> Shown:
    """List the numbers you hold."""
    scope = cli.scope(key)
    filters = numbers.InventoryFilter(status=status, tenant_id=tenant, q=q)
    with cli.db.read_session() as session:
        page = numbers.list_numbers(session, scope, filters, limit)
        rows = number_schemas.phone_numbers(session, page.data)
    flat = [
        {
            **r,
            "inbound": (r["assignments"]["inbound"] or {}).get("agent_name"),
            "outbound": (r["assignments"]["outbound"] or {}).get("agent_name"),
        }
        for r in rows
    ]
    return Shown(
        rows,
        table=Table.of(flat, INVENTORY_COLUMNS),
    )


NumberArg = Annotated[str, typer.Argument(help="The number's id, or the number itself (+1…).")]


def _number_id(cli: Cli, scope: Scope, value: str) -> str:
    with cli.db.read_session() as session:
        return numbers.resolve_number_id(session, scope, value)


@command(app, "assign", json_output=False)
def numbers_assign(
    cli: Cli,
    number: NumberArg,
    key: KeyOpt,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Assign to this tenant.")] = None,
    unassign_tenant: Annotated[bool, typer.Option("--unassign-tenant")] = False,
    agent: Annotated[str | None, typer.Option("--agent", help="Assign to this agent.")] = None,
    direction: Annotated[str, typer.Option("--type", help="inbound|outbound")] = "inbound",
) -> Shown:
    """Assign a number to a tenant, or to an agent for one direction."""
    scope = cli.scope(key)
    number_id = _number_id(cli, scope, number)
    if agent is not None:
        assignments.assign_to_agent(
            cli.db, cli.carrier, cli.settings, scope, number_id, agent, direction
        )
        notes = []
        if direction == "outbound":
            # The API's warning, said here too: calling out with no E911 address.
            with cli.db.read_session() as session:
                notes = [
                    f"[yellow]warning[/yellow] {w['code']}: {escape(w['message'])}"
                    for w in e911.outbound_warnings(session, number_id)
                ]
        return Shown(None, lines=[f"{number_id} {direction} -> agent {agent}"], notes=notes)
    if tenant is None and not unassign_tenant:
        raise ValidationFailed("give --tenant, --unassign-tenant or --agent", field="tenant")
    assignments.assign_tenant(cli.db, cli.carrier, cli.settings, scope, number_id, tenant)
    return Shown(None, lines=[f"{number_id} -> {tenant or 'Unassigned'}"])


@command(app, "release", json_output=False)
def numbers_release(cli: Cli, number: NumberArg, key: KeyOpt) -> Shown:
    """Release a number: back to the carrier, billing stops."""
    scope = cli.scope(key)
    number_id = _number_id(cli, scope, number)
    released = numbers.release(cli.db, cli.carrier, scope, number_id, cli.settings)
    return Shown(None, lines=[f"{released.e164} {released.status}"])


def _byo_credentials(provider: str) -> dict[str, str]:
    """The provider credentials for one command: ``DIDHUB_BYO_<KEY>`` from the
    environment (DIDHUB_BYO_API_KEY, DIDHUB_BYO_AUTH_TOKEN…), else a prompt
    (hidden input). Used for the call only, never stored."""
    name = byo.check_provider(provider)
    out: dict[str, str] = {}
    for credential in byo_providers.CREDENTIAL_KEYS[name]:
        value = os.environ.get(f"DIDHUB_BYO_{credential.upper()}")
        if not value:
            value = typer.prompt(f"{name} {credential}", hide_input=True)
        out[credential] = value
    return out


@command(app, "import")
def numbers_import(
    cli: Cli,
    key: KeyOpt,
    provider: Annotated[str, typer.Option(help="telnyx, twilio or bandwidth")],
    phone_numbers: Annotated[
        list[str], typer.Option("--numbers", help="E.164 numbers (repeat or comma-separate)")
    ],
    voice: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            help="Your route to the edge: connection_id=… (telnyx), trunk_sid=… (twilio), "
            "site_id=… and sip_peer_id=… (bandwidth). Repeat for several.",
        ),
    ] = None,
) -> Shown:
    """Bring your own numbers: verified at your provider, routed to the edge,
    no monthly fee. Credentials from DIDHUB_BYO_<KEY> or a prompt."""
    wanted = [n.strip() for item in phone_numbers for n in item.split(",") if n.strip()]
    scope = cli.scope(key)
    creds = _byo_credentials(provider)
    result = byo.import_numbers(
        cli.db, cli.settings, scope, provider, creds, wanted, pairs(voice, "voice")
    )
    with cli.db.read_session() as session:
        shaped = number_schemas.phone_numbers(session, result.numbers)
    out = {"provider": result.provider, "edge_uri": result.edge_uri, "numbers": shaped}
    return Shown(
        out,
        lines=[
            f"{n['phone_number']}  {n['status']}  imported from {out['provider']}  id={n['id']}"
            for n in shaped
        ],
    )


@command(app, "release-import", json_output=False)
def numbers_release_import(cli: Cli, number_id: str, key: KeyOpt) -> Shown:
    """Give an imported number back: its previous routing at your provider is
    restored, then it leaves didhub. Credentials as for ``numbers import``."""
    with cli.reading(key) as (scope, session):
        provider = numbers.get_number(session, scope, number_id).carrier
    creds = _byo_credentials(provider)
    number = byo.release_import(cli.db, cli.settings, scope, number_id, creds)
    return Shown(None, lines=[f"{number.e164} {number.status}"])


def _cnam_shown(cli: Cli, number: PhoneNumber) -> Shown:
    with cli.db.read_session() as session:
        view = cnam.describe(session, [number])[number.id]
    c = number_schemas.cnam_view(view)
    shown = {"id": number.id, "phone_number": number.e164, "cnam": c}
    reason = f" ({c['reason']})" if c["reason"] else ""
    return Shown(
        shown,
        lines=[
            f"{number.e164} CNAM {c['name']!r} from {c['source']}: {c['status']}{reason}",
            cnam.CACHE_NOTICE,
        ],
    )


@command(app, "cnam")
def numbers_cnam(
    cli: Cli,
    number_id: str,
    key: KeyOpt,
    name: Annotated[str | None, typer.Argument(help="Caller name, at most 15 characters.")] = None,
    inherit: Annotated[
        bool, typer.Option("--inherit", help="Use the tenant's (else partner's) default.")
    ] = False,
) -> Shown:
    """Set a number's caller name (CNAM) and list it at the carrier."""
    if (name is None) == (not inherit):
        raise ValidationFailed("give a NAME or --inherit", field="name")
    number = cnam.set_number_cnam(cli.db, cli.carrier, cli.scope(key), number_id, name)
    return _cnam_shown(cli, number)


@command(app, "cnam-retry")
def numbers_cnam_retry(cli: Cli, number_id: str, key: KeyOpt) -> Shown:
    """Push a failed (or still pending) caller-name listing to the carrier again."""
    return _cnam_shown(cli, cnam.retry(cli.db, cli.carrier, cli.scope(key), number_id))


@command(root_app, "reconcile")
def reconcile(
    cli: Cli,
    min_age: Annotated[
        int, typer.Option(help="Leave orders younger than this many seconds alone.")
    ] = 60,
) -> Shown:
    """Settle carrier orders, releases, card charges and caller-name (CNAM) pushes
    whose outcome is not known yet, and compare our numbers with the carrier's list:
    numbers it no longer holds stop billing; numbers it bills us for that we don't
    sell are listed."""
    age = timedelta(seconds=min_age)
    report = numbers.reconcile(cli.db, cli.carrier, cli.settings, age)
    charges = billing_wallet.reconcile_charges(cli.db, cli.gateway, cli.settings, age)
    listed = cnam.repush_pending(cli.db, cli.carrier, age)
    out: dict[str, Any] = {
        "orders_checked": report.orders_checked,
        "activated": report.activated,
        "failed": report.failed,
        "refunded": outputs.money(report.refunded),
        "still_pending": report.still_pending,
        "released": report.released,
        "holds_expired": report.holds_expired,
        "card_charges_settled": {c.charge_id: c.status for c in charges},
        "cnam_pushed_again": listed.pushed,
        # null: the carrier could not list its numbers this time
        "missing_at_carrier": report.missing_at_carrier,
        "listed_again": report.found_again,
        "held_but_not_sold": report.not_ours,
        "ported_out": report.ported_out,
    }
    return Shown(out)
