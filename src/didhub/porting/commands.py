"""``didhub port …``: port-in orders from a terminal (the same service as the API)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from didhub.cli_common import Cli, KeyOpt, Shown, Table, command
from didhub.porting import repository
from didhub.porting import service as porting
from didhub.porting.schemas import order_shape, portability_shape

app = typer.Typer(help="Port numbers in from another carrier.", no_args_is_help=True)


def _shown(cli: Cli, key: str, order_id: str) -> Shown:
    with cli.db.read_session() as session:
        shaped = order_shape(session, repository.get(session, cli.scope(key), order_id))
    return Shown(shaped, lines=[f"{shaped['id']} {shaped['status']}: {shaped['next_step']}"])


@command(app, "check")
def port_check(cli: Cli, key: KeyOpt, numbers: Annotated[list[str], typer.Argument()]) -> Shown:
    """Whether each number can be ported in (and why not)."""
    results = [portability_shape(p) for p in porting.check(cli.carrier, numbers)]
    return Shown(results, table=Table.of(results, "phone_number portable fast_portable reason"))


@command(app, "create")
def port_create(
    cli: Cli,
    key: KeyOpt,
    numbers: Annotated[list[str], typer.Argument()],
    entity_name: Annotated[str, typer.Option()],
    authorized_person: Annotated[str, typer.Option()],
    account_number: Annotated[str, typer.Option()],
    billing_phone_number: Annotated[str, typer.Option()],
    pin: Annotated[str | None, typer.Option()] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    e911_address: Annotated[str | None, typer.Option("--e911-address")] = None,
    agent: Annotated[str | None, typer.Option("--agent")] = None,
) -> Shown:
    """A draft port-in order (each number checked with the carrier first)."""
    body = {
        "phone_numbers": numbers,
        "entity_name": entity_name,
        "authorized_person": authorized_person,
        "account_number": account_number,
        "billing_phone_number": billing_phone_number,
        "pin": pin,
        "tenant_id": tenant,
        "e911_address_id": e911_address,
        "agent_id": agent,
    }
    order = porting.create(cli.db, cli.carrier, cli.settings, cli.scope(key), body)
    return _shown(cli, key, order.id)


@command(app, "list")
def port_list(cli: Cli, key: KeyOpt) -> Shown:
    """Every port-in order, its status and next step."""
    with cli.db.read_session() as session:
        rows = [order_shape(session, o) for o in repository.listed(session, cli.scope(key))]
    return Shown(rows, table=Table.of(rows, "id status foc_date next_step"))


@command(app, "document")
def port_document(
    cli: Cli,
    key: KeyOpt,
    order_id: str,
    kind: Annotated[str, typer.Option(help="loa (signed) or bill")],
    file: Annotated[Path, typer.Option(exists=True, dir_okay=False)],
) -> Shown:
    """Attach the signed LOA or a recent bill (PDF, PNG or JPEG)."""
    types = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg"}
    content_type = types.get(file.suffix.lower(), "application/octet-stream")
    porting.add_document(
        cli.db,
        cli.settings,
        cli.scope(key),
        order_id,
        kind,
        file.name,
        file.read_bytes(),
        content_type,
    )
    return _shown(cli, key, order_id)


@command(app, "loa")
def port_loa(cli: Cli, key: KeyOpt, order_id: str, out: Annotated[Path, typer.Option()]) -> Shown:
    """Write the LOA didhub fills from the order, to sign."""
    out.write_bytes(porting.loa_pdf(cli.db, cli.scope(key), order_id))
    return Shown({"written": str(out)}, lines=[f"wrote {out}"])


@command(app, "foc-dates")
def port_foc_dates(cli: Cli, key: KeyOpt, order_id: str) -> Shown:
    """The FOC dates the carrier allows for the order."""
    dates = porting.foc_dates(cli.db, cli.carrier, cli.scope(key), order_id)
    return Shown(dates, lines=dates)


@command(app, "submit")
def port_submit(
    cli: Cli, key: KeyOpt, order_id: str, foc_date: Annotated[str, typer.Option()]
) -> Shown:
    """Submit a draft with a FOC date from ``foc-dates``."""
    porting.submit(
        cli.db, cli.carrier, cli.settings, cli.scope(key), order_id, date.fromisoformat(foc_date)
    )
    return _shown(cli, key, order_id)


@command(app, "resubmit")
def port_resubmit(cli: Cli, key: KeyOpt, order_id: str) -> Shown:
    """Resubmit an order corrected after an exception."""
    porting.resubmit(cli.db, cli.carrier, cli.settings, cli.scope(key), order_id)
    return _shown(cli, key, order_id)


@command(app, "refresh")
def port_refresh(cli: Cli, key: KeyOpt, order_id: str) -> Shown:
    """Ask the carrier about the order now."""
    _shown(cli, key, order_id)
    porting.sync_order(cli.db, cli.carrier, cli.settings, order_id, asked=True)
    return _shown(cli, key, order_id)


@command(app, "cancel")
def port_cancel(cli: Cli, key: KeyOpt, order_id: str) -> Shown:
    """Cancel an order that hasn't ported."""
    porting.cancel(cli.db, cli.carrier, cli.scope(key), order_id)
    return _shown(cli, key, order_id)
