"""``didhub outbound …``: SIP credentials and the operator's outbound trunks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from didhub.accounts.models import Account
from didhub.billing.service import outbound_rates
from didhub.cli_common import Cli, KeyOpt, OptKeyOpt, Shown, Table, command
from didhub.errors import NotFound, ValidationFailed
from didhub.outbound import service as outbound
from didhub.outbound import settings as outbound_settings
from didhub.outbound.models import OutboundTrunk
from didhub.tenancy import Scope

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
    username: Annotated[
        str | None,
        typer.Option(help="Digest username, if the carrier challenges (else IP auth)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Digest password (or DIDHUB_TRUNK_PASSWORD); never shown again.",
            envvar="DIDHUB_TRUNK_PASSWORD",
        ),
    ] = None,
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
            username=username,
            password=password,
        )
        data = _trunk(trunk)
    return Shown(data)


@command(app, "trunks")
def trunks(cli: Cli) -> Shown:
    """The outbound trunks, cheapest first."""
    with cli.db.read_session() as session:
        rows = [_trunk(t) for t in outbound.list_trunks(session)]
    return Shown(
        rows, table=Table.of(rows, "id name host prefix tech_prefix cost emergency auth username")
    )


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
        # The password is the operator's secret: never shown back.
        "auth": "digest" if t.auth_username else "ip",
        "username": t.auth_username or "",
    }


# ---------------------------------------------------------------- settings

INHERIT = "inherit"


def _list(value: str | None) -> Any:
    """A comma-separated option: absent keeps, ``inherit`` clears, ``none`` empties."""
    if value is None:
        return outbound_settings.UNCHANGED
    if value.strip().lower() == INHERIT:
        return None
    if value.strip().lower() == "none":
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _scalar(value: str | None, kind: type) -> Any:
    if value is None:
        return outbound_settings.UNCHANGED
    if value.strip().lower() == INHERIT:
        return None
    return kind(value.strip())


@command(app, "settings")
def settings(
    cli: Cli,
    key: OptKeyOpt = None,
    account: Annotated[
        str | None, typer.Option(help="The account (a partner's tenant, or without --key).")
    ] = None,
    caller_id_policy: Annotated[str | None, typer.Option(help="reject | rewrite | inherit")] = None,
    countries: Annotated[
        str | None,
        typer.Option(help="Countries beside the caller ID's: GB,CA | * | none | inherit"),
    ] = None,
    deny_types: Annotated[
        str | None, typer.Option(help="Denied number types: premium,toll-free | none | inherit")
    ] = None,
    daily_limit: Annotated[
        str | None, typer.Option(help="Daily outbound spend limit, e.g. 50.00 | inherit")
    ] = None,
    max_calls: Annotated[
        str | None, typer.Option(help="Concurrent calls at most | inherit")
    ] = None,
    allowed_ips: Annotated[
        str | None, typer.Option(help="CIDRs INVITEs must come from | none | inherit")
    ] = None,
) -> Shown:
    """Show (or, with options, change) an account's outbound settings: its own
    (inherited when unset) and those in effect."""
    try:
        change = {
            "caller_id_policy": _scalar(caller_id_policy, str),
            "allowed_countries": _list(countries),
            "denied_number_types": _list(deny_types),
            "daily_spend_limit": _scalar(daily_limit, Decimal),
            "max_concurrent_calls": _scalar(max_calls, int),
            "allowed_ips": _list(allowed_ips),
        }
    except (ArithmeticError, ValueError):
        raise ValidationFailed(
            "--daily-limit is an amount and --max-calls a whole number", field="daily_limit"
        ) from None
    change = {k: v for k, v in change.items() if v is not outbound_settings.UNCHANGED}
    if key:
        scope = cli.scope(key)
        account_id = account or scope.account_id
    else:
        if account is None:
            raise ValidationFailed("give --key or --account", field="account")
        with cli.db.read_session() as session:
            found = session.get(Account, account)
            if found is None:
                raise NotFound(f"account {account} not found", field="account")
            scope, account_id = Scope(found.id, found.kind), found.id
    if change:
        with cli.db.session() as session:
            view = outbound_settings.change_settings(session, scope, account_id, change)
    else:
        with cli.db.read_session() as session:
            view = outbound_settings.get_settings(session, scope, account_id)
    shown = outbound_settings.shown(view)
    lines = [f"outbound settings of {shown['account_id']} ({shown['account_kind']})"]
    for name in outbound_settings.FIELDS:
        value = shown["effective"][name]
        text = ", ".join(value) if isinstance(value, list) else str(value)
        if isinstance(value, list) and not value:
            text = "none"
        source = shown["effective_source"][name]
        lines.append(f"{name}: {text if value is not None else 'no limit'} (from {source})")
    return Shown(shown, lines=lines)


# ---------------------------------------------------------------- rates


@command(app, "rates-import")
def rates_import(
    cli: Cli, file: Annotated[Path, typer.Argument(help="CSV: prefix, rate[, description]")]
) -> Shown:
    """Replace the outbound rate table with a rate deck (operator)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationFailed(f"can't read {file}: {exc.strerror}", field="file") from None
    rows = outbound_rates.read_csv(text)
    with cli.db.session() as session:
        count = outbound_rates.replace_rates(session, rows)
    return Shown(
        {"imported": count, "default_rate": f"{cli.settings.outbound_default_rate:.4f}"},
        lines=[
            f"{count} outbound rate(s) imported; other destinations: "
            f"{cli.settings.outbound_default_rate:.4f} a minute (DIDHUB_OUTBOUND_DEFAULT_RATE)"
        ],
    )


@command(app, "rates")
def rates(cli: Cli) -> Shown:
    """The outbound rates a minute by destination prefix (longest prefix wins)."""
    with cli.db.read_session() as session:
        rows = [
            {"prefix": r.prefix, "rate": f"{r.rate:.4f}", "description": r.description}
            for r in outbound_rates.list_rates(session)
        ]
    return Shown(rows, table=Table.of(rows, "prefix rate description"))
