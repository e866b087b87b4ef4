"""The ``didhub`` command: the same services the API calls, from a terminal."""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from didhub.accounts import service as accounts
from didhub.accounts import settings as account_settings
from didhub.accounts.models import Account
from didhub.accounts.service import Scope
from didhub.api import presenters
from didhub.billing import ledger, renewals
from didhub.billing import usage as billing_usage
from didhub.billing import wallet as billing_wallet
from didhub.carriers import byo as byo_providers
from didhub.carriers.base import Carrier
from didhub.carriers.registry import make_carrier
from didhub.carriers.stock import import_csv
from didhub.cli_common import check_currency, settings_or_exit
from didhub.config import Settings
from didhub.db import Database
from didhub.e911 import service as e911
from didhub.errors import DidhubError, NotFound, ValidationFailed
from didhub.inputs import check_amount
from didhub.jobs import commands as jobs_commands
from didhub.numbers import byo, cnam
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.numbers.schemas import SearchRequest
from didhub.payments.base import PaymentGateway
from didhub.payments.registry import make_gateway
from didhub.webhooks import delivery as webhook_delivery
from didhub.webhooks import service as webhooks

app = typer.Typer(
    help="didhub: search, buy, assign and release phone numbers.", no_args_is_help=True
)
partner_app = typer.Typer(help="Partner (reseller) accounts.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenant accounts.", no_args_is_help=True)
agent_app = typer.Typer(help="Agents under a tenant.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Dashboard users (email and password).", no_args_is_help=True)
numbers_app = typer.Typer(help="Phone numbers.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
billing_app = typer.Typer(help="Renewals and payments.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints, deliveries and events.", no_args_is_help=True)
settings_app = typer.Typer(
    help="Account settings: default CNAM, unassigned numbers.", no_args_is_help=True
)
e911_app = typer.Typer(help="E911 addresses, locations and numbers.", no_args_is_help=True)
e911_address_app = typer.Typer(help="E911 addresses.", no_args_is_help=True)
e911_location_app = typer.Typer(help="Physical locations (sites).", no_args_is_help=True)
compliance_app = typer.Typer(help="Compliance reports.", no_args_is_help=True)
edge_app = typer.Typer(help="The SIP edge (Kamailio).", no_args_is_help=True)
stock_app = typer.Typer(
    help="The platform's own numbers (DIDHUB_CARRIER=stock).", no_args_is_help=True
)
app.add_typer(partner_app, name="partner")
app.add_typer(tenant_app, name="tenant")
app.add_typer(agent_app, name="agent")
app.add_typer(key_app, name="key")
app.add_typer(user_app, name="user")
app.add_typer(numbers_app, name="numbers")
app.add_typer(ledger_app, name="ledger")
app.add_typer(billing_app, name="billing")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(settings_app, name="settings")
app.add_typer(e911_app, name="e911")
e911_app.add_typer(e911_address_app, name="address")
e911_app.add_typer(e911_location_app, name="location")
app.add_typer(compliance_app, name="compliance")
app.add_typer(edge_app, name="edge")
app.add_typer(stock_app, name="stock")
app.add_typer(jobs_commands.app, name="jobs")
app.command("worker")(jobs_commands.worker)

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KeyOpt = Annotated[
    str,
    typer.Option("--key", envvar="DIDHUB_API_KEY", help="API key to act as (or DIDHUB_API_KEY)."),
]


def _settings() -> Settings:
    return settings_or_exit()


def _check_currency(db: Database, currency: str) -> None:
    check_currency(db, currency)


@contextmanager
def _database(*, check_currency: bool = True) -> Iterator[Database]:
    settings = _settings()
    db = Database(settings.database_url)
    try:
        if check_currency:
            _check_currency(db, settings.currency)
        yield db
    finally:
        db.dispose()


def _run(fn: Callable[[], T]) -> T:
    """Run a service call; a didhub error becomes a message and exit code 1."""
    try:
        return fn()
    except DidhubError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.print(f"[red]error[/red] {exc.code}{where}: {exc.message}")
        raise typer.Exit(1) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _money(value: str, field: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValidationFailed(f"{value!r} is not an amount", field=field) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed("amount must be zero or more", field=field)
    return check_amount(amount, field)


def _scope(db: Database, key: str) -> Scope:
    with db.session() as session:
        return accounts.authenticate(session, key)


def _carrier(db: Database) -> Carrier:
    return make_carrier(_settings(), db)


def _gateway(db: Database) -> PaymentGateway:
    return make_gateway(_settings(), db)


# ------------------------------------------------------------------ server


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from didhub.migrate import upgrade

    with _database(check_currency=False) as db:
        upgrade(db)
    console.print("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (a line per routing lookup too).")
    ] = True,
) -> None:
    """Start the API server (SQLite databases are migrated automatically)."""
    import uvicorn

    from didhub.api.app import create_app
    from didhub.migrate import is_empty, upgrade

    settings = _settings()
    db = Database(settings.database_url)
    if db.is_sqlite or is_empty(db):
        upgrade(db)
    _check_currency(db, settings.currency)
    console.print(f"didhub on http://{host}:{port} ({settings.database_url}, {settings.carrier})")
    app = create_app(settings, db, jobs=True)
    # What start-up built (settings, metadata, routes) lives as long as the
    # process: keep it out of full garbage collections' way (see docs/performance.md).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


# ------------------------------------------------------------------ accounts


@partner_app.command("create")
def partner_create(
    name: str,
    balance: Annotated[str, typer.Option(help="Opening wallet credit, e.g. 100.00.")] = "0",
    as_json: JsonOpt = False,
) -> None:
    """Create a partner with an API key (shown once) and an opening balance."""
    settings = _settings()
    with _database() as db:

        def work() -> dict[str, Any]:
            amount = _money(balance, "balance")
            with db.session() as session:
                partner = accounts.create_partner(session, name, settings.currency)
                accounts.fund_wallet(
                    session, partner.id, amount, settings.currency, "Opening balance"
                )
                key = accounts.create_api_key(session, partner.id, "default")
                return {
                    **presenters.account(partner),
                    "api_key": key.secret,
                    "api_key_id": key.key.id,
                    "balance": presenters.money(
                        ledger.wallet_balance(session, partner.id, settings.currency)
                    ),
                }

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(f"partner [bold]{out['id']}[/bold] created, balance {out['balance']}")
        console.print(f"API key (shown once): [bold]{out['api_key']}[/bold]")


@partner_app.command("fund")
def partner_fund(account_id: str, amount: str, as_json: JsonOpt = False) -> None:
    """Credit an account's wallet (operator credit, recorded in the ledger)."""
    settings = _settings()
    with _database() as db:

        def work() -> str:
            with db.session() as session:
                accounts.get_account(
                    session, Scope(account_id, accounts.TENANT), account_id, "account_id"
                )
                accounts.fund_wallet(
                    session, account_id, _money(amount, "amount"), settings.currency, "Credit"
                )
                return presenters.money(
                    ledger.wallet_balance(session, account_id, settings.currency)
                )

        balance_now = _run(work)
    if as_json:
        _print_json({"id": account_id, "balance": balance_now})
    else:
        console.print(f"{account_id}: balance {balance_now}")


@tenant_app.command("create")
def tenant_create(
    name: str,
    partner: Annotated[
        str | None, typer.Option(help="Partner id; omit for a tenant under the platform.")
    ] = None,
    balance: Annotated[str, typer.Option(help="Opening wallet credit.")] = "0",
    with_key: Annotated[bool, typer.Option("--with-key", help="Also create an API key.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant (under a partner, or directly under the platform)."""
    settings = _settings()
    with _database() as db:

        def work() -> dict[str, Any]:
            amount = _money(balance, "balance")
            with db.session() as session:
                tenant = accounts.create_tenant(session, name, settings.currency, partner)
                accounts.fund_wallet(
                    session, tenant.id, amount, settings.currency, "Opening balance"
                )
                out = presenters.account(tenant)
                if with_key:
                    out["api_key"] = accounts.create_api_key(session, tenant.id, "default").secret
                return out

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(f"tenant [bold]{out['id']}[/bold] created")
        if "api_key" in out:
            console.print(f"API key (shown once): [bold]{out['api_key']}[/bold]")


@agent_app.command("create")
def agent_create(
    tenant_id: str,
    name: str,
    key: KeyOpt,
    sip_uri: Annotated[
        str | None, typer.Option("--sip-uri", help="where the SIP edge relays its calls")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an agent under a tenant."""
    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            with db.session() as session:
                agent = accounts.create_agent(session, scope, tenant_id, name, sip_uri)
                return presenters.agent(agent)

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(f"agent [bold]{out['id']}[/bold] created")


@key_app.command("create")
def key_create(
    account: Annotated[str, typer.Option(help="Account id the key acts for.")],
    name: Annotated[str, typer.Option(help="A label to tell keys apart.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; the secret is shown once and stored only hashed."""
    with _database() as db:

        def work() -> dict[str, Any]:
            with db.session() as session:
                new = accounts.create_api_key(session, account, name)
                return {
                    "id": new.key.id,
                    "account_id": account,
                    "prefix": new.key.prefix,
                    "api_key": new.secret,
                }

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(f"key {out['id']} ({out['prefix']}…): [bold]{out['api_key']}[/bold]")


@key_app.command("list")
def key_list(
    account: Annotated[str, typer.Option(help="Account id.")], as_json: JsonOpt = False
) -> None:
    """List an account's keys (prefixes only)."""
    with _database() as db, db.session() as session:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": presenters.when(k.created_at),
                "revoked_at": presenters.when(k.revoked_at),
            }
            for k in accounts.list_api_keys(session, account)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "prefix", "created", "revoked")
    for r in rows:
        table.add_row(r["id"], r["name"], r["prefix"], r["created_at"], r["revoked_at"] or "")
    console.print(table)


@key_app.command("revoke")
def key_revoke(key_id: str) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with _database() as db:

        def work() -> None:
            with db.session() as session:
                accounts.revoke_api_key(session, key_id)

        _run(work)
    console.print(f"key {key_id} revoked")


PasswordOpt = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="The password (asked for when not given; at least 10 characters).",
    ),
]


@user_app.command("create")
def user_create(
    account: Annotated[str, typer.Option(help="Account id the user signs in to.")],
    email: Annotated[str, typer.Option(help="Email address to sign in with.")],
    password: PasswordOpt,
    as_json: JsonOpt = False,
) -> None:
    """Create a dashboard user; only an argon2 hash of the password is stored."""
    with _database() as db:

        def work() -> dict[str, Any]:
            with db.session() as session:
                user = accounts.create_user(session, account, email, password)
                return {
                    "id": user.id,
                    "account_id": user.account_id,
                    "email": user.email,
                    "created_at": presenters.when(user.created_at),
                }

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(
            f"user [bold]{out['email']}[/bold] ({out['id']}) can sign in to {account}",
            soft_wrap=True,
        )


@user_app.command("list")
def user_list(
    account: Annotated[str, typer.Option(help="Account id.")], as_json: JsonOpt = False
) -> None:
    """List an account's dashboard users."""
    with _database() as db, db.session() as session:
        rows = [
            {"id": u.id, "email": u.email, "created_at": presenters.when(u.created_at)}
            for u in accounts.list_users(session, account)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "email", "created")
    for r in rows:
        table.add_row(r["id"], r["email"], r["created_at"])
    console.print(table)


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password: PasswordOpt,
) -> None:
    """Give a user a new password."""
    with _database() as db:

        def work() -> str:
            with db.session() as session:
                return accounts.set_password(session, email, password).email

        console.print(f"password of {_run(work)} changed")


# ------------------------------------------------------------------ numbers


@numbers_app.command("search")
def numbers_search(
    key: KeyOpt,
    country_code: Annotated[str, typer.Option("--country")] = "US",
    state: Annotated[str | None, typer.Option("--state")] = None,
    area_code: Annotated[str | None, typer.Option("--area-code")] = None,
    nxx: Annotated[str | None, typer.Option("--nxx")] = None,
    city: Annotated[str | None, typer.Option("--city")] = None,
    rate_center: Annotated[str | None, typer.Option("--rate-center")] = None,
    pattern: Annotated[str | None, typer.Option("--pattern", help="e.g. 877-555-XXXX")] = None,
    number_type: Annotated[str, typer.Option("--type", help="local|toll-free|mobile")] = "local",
    page: int = 1,
    page_size: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search available numbers."""
    settings = _settings()
    with _database() as db:

        def work() -> list[dict[str, Any]]:
            from pydantic import ValidationError

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
            scope = _scope(db, key)
            carrier = _carrier(db)
            found = numbers.search(
                db, carrier, scope, request.to_query(), request.page, request.page_size
            )
            return [presenters.available(settings, n) for n in found.data]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("number", "type", "city", "state", "rate center", "monthly", "setup")
    for r in rows:
        c = r["cost_information"]
        table.add_row(
            r["phone_number"],
            r["phone_number_type"],
            r["locality"] or "",
            r["administrative_area"] or "",
            r["rate_center"] or "",
            c["monthly_cost"],
            c["upfront_cost"],
        )
    console.print(table)


@numbers_app.command("buy")
def numbers_buy(
    phone_numbers: Annotated[list[str], typer.Argument(help="E.164 numbers to buy.")],
    key: KeyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Buy numbers, paid from the wallet."""
    settings = _settings()
    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            result = numbers.purchase(
                db, _carrier(db), settings, scope, phone_numbers, gateway=_gateway(db)
            )
            with db.session() as session:
                shaped = presenters.phone_numbers(session, result.numbers)
            return {
                "order_id": result.order_id,
                "charged": presenters.money(result.charged),
                "refunded": presenters.money(result.refunded),
                "numbers": shaped,
            }

        out = _run(work)
    if as_json:
        _print_json(out)
        return
    for n in out["numbers"]:
        console.print(f"{n['phone_number']}  {n['status']}  id={n['id']}")
    console.print(f"order {out['order_id']}: charged {out['charged']}, refunded {out['refunded']}")


@numbers_app.command("list")
def numbers_list(
    key: KeyOpt,
    status: Annotated[str | None, typer.Option(help="a status or 'all'")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    q: Annotated[str | None, typer.Option("--search")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """List the numbers you hold."""
    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            filters = numbers.InventoryFilter(status=status, tenant_id=tenant, q=q)
            with db.session() as session:
                page = numbers.list_numbers(session, scope, filters, limit)
                return presenters.phone_numbers(session, page.data)

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "number", "status", "assigned to", "inbound", "outbound", "renews")
    for r in rows:
        inbound, outbound = r["assignments"]["inbound"], r["assignments"]["outbound"]
        table.add_row(
            r["id"],
            r["phone_number"],
            r["status"],
            r["assigned_to"],
            inbound["agent_name"] if inbound else "",
            outbound["agent_name"] if outbound else "",
            r["renews_on"] or "",
        )
    console.print(table)


@numbers_app.command("assign")
def numbers_assign(
    number_id: str,
    key: KeyOpt,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Assign to this tenant.")] = None,
    unassign_tenant: Annotated[bool, typer.Option("--unassign-tenant")] = False,
    agent: Annotated[str | None, typer.Option("--agent", help="Assign to this agent.")] = None,
    direction: Annotated[str, typer.Option("--type", help="inbound|outbound")] = "inbound",
) -> None:
    """Assign a number to a tenant, or to an agent for one direction."""
    with _database() as db:

        def work() -> str:
            scope = _scope(db, key)
            if agent is not None:
                numbers.assign_to_agent(db, _settings(), scope, number_id, agent, direction)
                return f"{number_id} {direction} -> agent {agent}"
            if tenant is None and not unassign_tenant:
                raise ValidationFailed(
                    "give --tenant, --unassign-tenant or --agent", field="tenant"
                )
            numbers.assign_tenant(db, _settings(), scope, number_id, tenant)
            return f"{number_id} -> {tenant or 'Unassigned'}"

        console.print(_run(work))


@numbers_app.command("release")
def numbers_release(number_id: str, key: KeyOpt) -> None:
    """Release a number: back to the carrier, billing stops."""
    with _database() as db:

        def work() -> str:
            scope = _scope(db, key)
            number = numbers.release(db, _carrier(db), scope, number_id, _settings())
            return f"{number.e164} {number.status}"

        console.print(_run(work))


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


def _pairs(values: list[str] | None, field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep:
            raise ValidationFailed(f"{value!r}: use key=value", field=field)
        out[key.strip()] = rest.strip()
    return out


@numbers_app.command("import")
def numbers_import(
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
    as_json: JsonOpt = False,
) -> None:
    """Bring your own numbers: verified at your provider, routed to the edge,
    no monthly fee. Credentials from DIDHUB_BYO_<KEY> or a prompt."""
    wanted = [n.strip() for item in phone_numbers for n in item.split(",") if n.strip()]
    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            creds = _byo_credentials(provider)
            result = byo.import_numbers(
                db, _settings(), scope, provider, creds, wanted, _pairs(voice, "voice")
            )
            with db.session() as session:
                shaped = presenters.phone_numbers(session, result.numbers)
            return {"provider": result.provider, "edge_uri": result.edge_uri, "numbers": shaped}

        out = _run(work)
    if as_json:
        _print_json(out)
        return
    for n in out["numbers"]:
        console.print(
            f"{n['phone_number']}  {n['status']}  imported from {out['provider']}  id={n['id']}"
        )


@numbers_app.command("release-import")
def numbers_release_import(number_id: str, key: KeyOpt) -> None:
    """Give an imported number back: its previous routing at your provider is
    restored, then it leaves didhub. Credentials as for ``numbers import``."""
    with _database() as db:

        def work() -> str:
            scope = _scope(db, key)
            with db.session() as session:
                provider = numbers.get_number(session, scope, number_id).carrier
            creds = _byo_credentials(provider)
            number = byo.release_import(db, _settings(), scope, number_id, creds)
            return f"{number.e164} {number.status}"

        console.print(_run(work))


@numbers_app.command("cnam")
def numbers_cnam(
    number_id: str,
    key: KeyOpt,
    name: Annotated[str | None, typer.Argument(help="Caller name, at most 15 characters.")] = None,
    inherit: Annotated[
        bool, typer.Option("--inherit", help="Use the tenant's (else partner's) default.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a number's caller name (CNAM) and list it at the carrier."""
    if (name is None) == (not inherit):
        err.print("give a NAME or --inherit")
        raise typer.Exit(2)
    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            number = cnam.set_number_cnam(db, _carrier(db), scope, number_id, name)
            return _cnam_of(db, number)

        _print_cnam(_run(work), as_json)


@numbers_app.command("cnam-retry")
def numbers_cnam_retry(number_id: str, key: KeyOpt, as_json: JsonOpt = False) -> None:
    """Push a failed (or still pending) caller-name listing to the carrier again."""
    with _database() as db:

        def work() -> dict[str, Any]:
            number = cnam.retry(db, _carrier(db), _scope(db, key), number_id)
            return _cnam_of(db, number)

        _print_cnam(_run(work), as_json)


def _cnam_of(db: Database, number: PhoneNumber) -> dict[str, Any]:
    with db.session() as session:
        view = cnam.describe(session, [number])[number.id]
    return {"id": number.id, "phone_number": number.e164, "cnam": presenters.cnam_view(view)}


def _print_cnam(shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(shown)
        return
    c = shown["cnam"]
    reason = f" ({c['reason']})" if c["reason"] else ""
    console.print(
        f"{shown['phone_number']} CNAM {c['name']!r} from {c['source']}: {c['status']}{reason}"
    )
    console.print(cnam.CACHE_NOTICE)


# ------------------------------------------------------------------ settings

OptKeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="DIDHUB_API_KEY", help="API key to act as (or DIDHUB_API_KEY)."),
]
AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Account id: a partner key's tenant, or (without a key) any account as operator.",
    ),
]


def _settings_scope(db: Database, key: str | None, account: str | None) -> tuple[Scope, str]:
    """With a key: that key's scope, for its own account or ``--account``.
    Without one (operator at the server): the named account's own scope."""
    if key:
        scope = _scope(db, key)
        return scope, account or scope.account_id
    if account is None:
        raise ValidationFailed("give --key or --account", field="account")
    with db.session() as session:
        found = session.get(Account, account)
        if found is None:
            raise NotFound(f"account {account} not found", field="account")
        return Scope(found.id, found.kind), found.id


@settings_app.command("show")
def settings_show(
    key: OptKeyOpt = None, account: AccountOpt = None, as_json: JsonOpt = False
) -> None:
    """An account's default CNAM and unassigned-number behaviour, own and effective."""
    with _database() as db:

        def work() -> dict[str, Any]:
            scope, account_id = _settings_scope(db, key, account)
            with db.session() as session:
                view = account_settings.get_settings(session, _settings(), scope, account_id)
            return presenters.account_settings(view)

        _print_settings(_run(work), as_json)


@settings_app.command("set")
def settings_set(
    key: OptKeyOpt = None,
    account: AccountOpt = None,
    default_cnam: Annotated[
        str | None, typer.Option("--default-cnam", help="Default caller name.")
    ] = None,
    inherit_cnam: Annotated[
        bool, typer.Option("--inherit-cnam", help="Clear the default caller name.")
    ] = False,
    unassigned: Annotated[
        str | None,
        typer.Option("--unassigned", help="announcement|voicemail|forward|reject"),
    ] = None,
    text: Annotated[str | None, typer.Option(help="Announcement text.")] = None,
    mailbox: Annotated[str | None, typer.Option(help="Voicemail box.")] = None,
    destination: Annotated[
        str | None, typer.Option(help="Forward to an E.164 number or a sip: URI.")
    ] = None,
    inherit_unassigned: Annotated[
        bool, typer.Option("--inherit-unassigned", help="Clear the unassigned behaviour.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change an account's settings; a new default CNAM is listed on every
    number that inherits it."""
    with _database() as db:

        def work() -> dict[str, Any]:
            if default_cnam is not None and inherit_cnam:
                raise ValidationFailed(
                    "give --default-cnam or --inherit-cnam, not both", field="default_cnam"
                )
            if unassigned is not None and inherit_unassigned:
                raise ValidationFailed(
                    "give --unassigned or --inherit-unassigned, not both", field="unassigned"
                )
            if unassigned is None and (text or mailbox or destination):
                raise ValidationFailed(
                    "--text, --mailbox and --destination go with --unassigned", field="unassigned"
                )
            change = account_settings.SettingsChange(
                default_cnam=None
                if inherit_cnam
                else default_cnam
                if default_cnam is not None
                else account_settings.UNCHANGED,
                unassigned=None
                if inherit_unassigned
                else account_settings.UnassignedBehaviour(unassigned, text, mailbox, destination)
                if unassigned is not None
                else account_settings.UNCHANGED,
            )
            scope, account_id = _settings_scope(db, key, account)
            view = account_settings.set_settings(
                db, _carrier(db), _settings(), scope, account_id, change
            )
            return presenters.account_settings(view)

        _print_settings(_run(work), as_json)
        if (default_cnam is not None or inherit_cnam) and not as_json:
            console.print(cnam.CACHE_NOTICE)


def _print_settings(shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(shown)
        return
    effective = shown["effective"]
    console.print(f"account: {shown['account_id']} ({shown['kind']})")
    console.print(f"default_cnam: {shown['default_cnam']}")
    console.print(f"unassigned: {shown['unassigned']}")
    console.print(
        f"effective default_cnam: {effective['default_cnam']['name']} "
        f"(from {effective['default_cnam']['source']})"
    )
    console.print(f"effective unassigned: {effective['unassigned']}")


# ------------------------------------------------------------------ operations


@app.command()
def reconcile(
    min_age: Annotated[
        int, typer.Option(help="Leave orders younger than this many seconds alone.")
    ] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Settle carrier orders, releases, card charges and caller-name (CNAM) pushes
    whose outcome is not known yet, and compare our numbers with the carrier's list:
    numbers it no longer holds stop billing; numbers it bills us for that we don't
    sell are listed."""
    settings = _settings()
    with _database() as db:
        report = _run(
            lambda: numbers.reconcile(db, _carrier(db), settings, timedelta(seconds=min_age))
        )
        charges = billing_wallet.reconcile_charges(
            db, _gateway(db), settings, timedelta(seconds=min_age)
        )
        listed = cnam.repush_pending(db, _carrier(db), timedelta(seconds=min_age))
    out = {
        "orders_checked": report.orders_checked,
        "activated": report.activated,
        "failed": report.failed,
        "refunded": presenters.money(report.refunded),
        "still_pending": report.still_pending,
        "released": report.released,
        "holds_expired": report.holds_expired,
        "card_charges_settled": {c.charge_id: c.status for c in charges},
        "cnam_pushed_again": listed.pushed,
        # null: the carrier could not list its numbers this time
        "missing_at_carrier": report.missing_at_carrier,
        "listed_again": report.found_again,
        "held_but_not_sold": report.not_ours,
    }
    if as_json:
        _print_json(out)
        return
    for name, value in out.items():
        console.print(f"{name}: {value}")


@billing_app.command("run")
def billing_run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Bill what is due on this date (YYYY-MM-DD).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Charge every renewal due by the date once; move unpaid accounts along."""
    settings = _settings()

    def when() -> date | None:
        if as_of is None:
            return None
        try:
            return date.fromisoformat(as_of)
        except ValueError:
            raise ValidationFailed(
                f"{as_of!r} is not a date like 2026-01-31", field="as_of"
            ) from None

    with _database() as db:
        report = _run(lambda: renewals.run(db, _carrier(db), _gateway(db), settings, when()))
    out = {
        "as_of": report.as_of.isoformat(),
        "accounts": report.accounts,
        "renewals": report.renewals,
        "charged": presenters.money(report.charged),
        "past_due": report.past_due,
        "suspended": report.suspended,
        "released": report.released,
        "restored": report.restored,
        # account -> why it couldn't be billed (the others were)
        "failed": report.failed,
    }
    if as_json:
        _print_json(out)
    else:
        for name, value in out.items():
            console.print(f"{name}: {value}")
    if report.failed:
        raise typer.Exit(1)


@billing_app.command("import-cdrs")
def billing_import_cdrs(
    file: Annotated[
        Path, typer.Argument(help="CSV with phone_number, direction, start, duration, call_id.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Rate call records from a CSV file; call ids seen before are skipped."""
    settings = _settings()
    with _database() as db:
        report = _run(lambda: billing_usage.record(db, settings, billing_usage.read_csv(file)))
    out = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "charged": presenters.money(report.charged),
    }
    if as_json:
        _print_json(out)
        return
    for name, value in out.items():
        console.print(f"{name}: {value}")


# ------------------------------------------------------------------ webhooks


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    key: KeyOpt,
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events", help="Event types, comma-separated or repeated (number.*); default all."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a webhook URL; its signing secret is shown once."""
    wanted = [e for item in events or [] for e in item.split(",") if e.strip()] or None
    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            with db.session() as session:
                new = webhooks.create_endpoint(
                    session,
                    scope,
                    url,
                    wanted,
                    description,
                    allow_private=_settings().webhook_allow_private,
                )
                return {**presenters.webhook_endpoint(new.endpoint), "secret": new.secret}

        out = _run(work)
    if as_json:
        _print_json(out)
    else:
        console.print(f"webhook [bold]{out['id']}[/bold] -> {out['url']}")
        console.print(f"signing secret (shown once): [bold]{out['secret']}[/bold]")


@webhooks_app.command("list")
def webhooks_list(key: KeyOpt, as_json: JsonOpt = False) -> None:
    """List your webhook endpoints."""
    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            with db.session() as session:
                return [
                    presenters.webhook_endpoint(e) for e in webhooks.list_endpoints(session, scope)
                ]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "url", "events", "enabled", "created")
    for r in rows:
        table.add_row(
            r["id"],
            r["url"],
            ", ".join(r["events"]) if r["events"] else "all",
            "yes" if r["enabled"] else "no",
            r["created_at"],
        )
    console.print(table)


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: str, key: KeyOpt) -> None:
    """Remove an endpoint: nothing more is sent to it; queued deliveries fail."""
    with _database() as db:

        def work() -> None:
            scope = _scope(db, key)
            with db.session() as session:
                webhooks.remove_endpoint(session, scope, webhook_id)

        _run(work)
    console.print(f"webhook {webhook_id} removed")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: str,
    key: KeyOpt,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """An endpoint's deliveries, newest first."""
    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            with db.session() as session:
                page = webhooks.list_deliveries(session, scope, webhook_id, status, limit)
                return [presenters.webhook_delivery(row) for row in page.data]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "event", "status", "attempts", "last answer", "next attempt")
    for r in rows:
        answer = r["last_error"] or (str(r["last_status_code"]) if r["last_status_code"] else "")
        table.add_row(
            r["id"],
            r["event_type"],
            r["status"],
            str(r["attempts"]),
            answer,
            r["next_attempt_at"] or "",
        )
    console.print(table)


@webhooks_app.command("retry")
def webhooks_retry(delivery_id: str, key: KeyOpt) -> None:
    """Queue a delivery again, due now."""
    with _database() as db:

        def work() -> None:
            scope = _scope(db, key)
            with db.session() as session:
                webhooks.retry_delivery(session, scope, delivery_id)

        _run(work)
    console.print(f"delivery {delivery_id} queued")


@webhooks_app.command("events")
def webhooks_events(
    key: KeyOpt,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. number.released")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Your event feed, newest first (what your webhooks receive)."""
    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            with db.session() as session:
                page = webhooks.list_events(session, scope, event_type, None, limit)
                return [webhook_delivery.payload(e) for e in page.data]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "type", "created", "number")
    for r in rows:
        number = r["data"].get("number") or {}
        table.add_row(r["id"], r["type"], r["created_at"], number.get("phone_number", ""))
    console.print(table)


@webhooks_app.command("deliver")
def webhooks_deliver(
    limit: Annotated[int, typer.Option(help="At most this many deliveries.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """POST every delivery that is due now, once (what `didhub serve` does every
    DIDHUB_WEBHOOK_SECONDS)."""
    settings = _settings()
    total = webhook_delivery.DeliveryReport()
    with _database() as db:
        while total.claimed < limit:
            report = webhook_delivery.deliver_due(
                db,
                max_attempts=settings.webhook_max_attempts,
                limit=min(webhook_delivery.BATCH, limit - total.claimed),
                timeout=settings.webhook_timeout_seconds,
                allow_private=settings.webhook_allow_private,
            )
            for name in ("claimed", "attempted", "delivered", "retrying", "failed"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            if report.claimed == 0:
                break
    out = {
        "attempted": total.attempted,
        "delivered": total.delivered,
        "retrying": total.retrying,
        "failed": total.failed,
    }
    if as_json:
        _print_json(out)
        return
    for name, value in out.items():
        console.print(f"{name}: {value}")


@ledger_app.command("check")
def ledger_check(as_json: JsonOpt = False) -> None:
    """Prove the books: balanced transactions, cached balances equal entries."""
    with _database() as db, db.session() as session:
        problems = ledger.check(session)
    if as_json:
        _print_json({"ok": not problems, "problems": [p.__dict__ for p in problems]})
    elif problems:
        for p in problems:
            err.print(f"[red]{p.kind}[/red] {p.subject}: {p.detail}")
    else:
        console.print("ledger OK: every transaction balances, every wallet matches its entries")
    if problems:
        raise typer.Exit(1)


# ------------------------------------------------------------------ SIP edge


@edge_app.command("check")
def edge_check(
    edge: Annotated[
        str, typer.Option(help="The edge's UDP listener, host:port (run this on that host).")
    ] = "127.0.0.1:5060",
    sample: Annotated[int, typer.Option(min=0, help="Live numbers to compare.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Does the edge answer, reach didhub, and route numbers as didhub says?"""
    from didhub import edge as edge_check_service

    settings = _settings()
    with _database() as db:
        report = _run(lambda: edge_check_service.check(db, settings, edge, sample))
    problems = report.problems
    if as_json:
        _print_json(
            {
                "ok": not problems,
                "edge": report.edge,
                "edge_answers": report.edge_answers,
                "edge_reaches_didhub": report.edge_reaches_didhub,
                "unknown_number_not_found": report.unknown_number_not_found,
                "numbers": [n.__dict__ for n in report.numbers],
                "problems": problems,
            }
        )
    else:
        table = Table("number", "didhub", "edge", "")
        for n in report.numbers:
            table.add_row(n.phone_number, n.didhub, n.edge, n.problem or "ok")
        if report.numbers:
            console.print(table)
        for problem in problems:
            err.print(f"[red]problem[/red] {problem}")
        if not problems:
            console.print(
                f"edge OK: {report.edge} answers, reaches didhub, and routes "
                f"{len(report.numbers)} number(s) as didhub does"
            )
    if problems:
        raise typer.Exit(1)


# ------------------------------------------------------------------ E911


@e911_address_app.command("add")
def e911_address_add(
    key: KeyOpt,
    street: Annotated[str, typer.Option(help="House number and street, e.g. 123 Main St.")],
    city: Annotated[str, typer.Option()],
    state: Annotated[str, typer.Option(help="Two letters or the full name.")],
    postal_code: Annotated[str, typer.Option("--zip", help="ZIP or ZIP+4.")],
    caller_name: Annotated[str, typer.Option(help="The name a 911 dispatcher sees.")],
    unit: Annotated[str | None, typer.Option(help="APT 4B, STE 200, FL 3…")] = None,
    country: Annotated[str, typer.Option()] = "US",
    tenant: Annotated[str | None, typer.Option("--tenant", help="A tenant's address.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Normalize an address and validate it with the carrier."""
    from didhub.api.e911 import address_shape

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
    with _database() as db:
        address = _run(lambda: e911.create_address(db, _carrier(db), _scope(db, key), fields))
    shaped = address_shape(address)
    if as_json:
        _print_json(shaped)
        return
    console.print(f"{address.id} {address.status}: {_one_line(shaped)}")
    if address.suggestion:
        console.print(f"carrier suggests: {_one_line(address.suggestion)}")
        console.print(f"accept with: didhub e911 address accept {address.id}")


def _one_line(fields: dict[str, Any]) -> str:
    unit = f" {fields['unit']}" if fields.get("unit") else ""
    return f"{fields['street']}{unit}, {fields['city']} {fields['state']} {fields['postal_code']}"


@e911_address_app.command("list")
def e911_address_list(
    key: KeyOpt,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Your E911 addresses (a partner: its tenants' too)."""
    from didhub.api.e911 import address_shape

    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            with db.session() as session:
                return [address_shape(a) for a in e911.list_addresses(session, scope, tenant)]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "tenant", "address", "caller name", "status")
    for r in rows:
        table.add_row(r["id"], r["tenant_id"], _one_line(r), r["caller_name"], r["status"])
    console.print(table)


@e911_address_app.command("accept")
def e911_address_accept(address_id: str, key: KeyOpt) -> None:
    """Accept the carrier's suggested form of an address (it becomes validated)."""
    with _database() as db:

        def work() -> str:
            scope = _scope(db, key)
            with db.session() as session:
                address = e911.accept_suggestion(session, scope, address_id)
                return f"{address.id} {address.status}"

        console.print(_run(work))


@e911_address_app.command("remove")
def e911_address_remove(address_id: str, key: KeyOpt) -> None:
    """Delete an address no number or location uses."""
    with _database() as db:

        def work() -> str:
            scope = _scope(db, key)
            with db.session() as session:
                e911.delete_address(session, scope, address_id)
            return f"{address_id} removed"

        console.print(_run(work))


def _provisioning_line(result: e911.Provisioning) -> str:
    reason = f" ({result.reason})" if result.reason else ""
    return f"{result.phone_number} E911 {result.status}{reason}: address {result.address_id}"


@e911_app.command("attach")
def e911_attach(number_id: str, address_id: str, key: KeyOpt) -> None:
    """Give a number a validated E911 address and push it to the carrier."""
    with _database() as db:
        result = _run(lambda: e911.attach(db, _carrier(db), _scope(db, key), number_id, address_id))
    console.print(_provisioning_line(result))


@e911_app.command("retry")
def e911_retry(number_id: str, key: KeyOpt) -> None:
    """Push a number's failed E911 address to the carrier again."""
    with _database() as db:
        result = _run(lambda: e911.retry(db, _carrier(db), _scope(db, key), number_id))
    console.print(_provisioning_line(result))


@e911_app.command("detach")
def e911_detach(number_id: str, key: KeyOpt) -> None:
    """Remove a number's E911 address (at the carrier too)."""
    with _database() as db:
        _run(lambda: e911.detach(db, _carrier(db), _scope(db, key), number_id))
    console.print(f"{number_id}: E911 address removed")


@e911_app.command("repush")
def e911_repush(
    min_age: Annotated[
        int, typer.Option(help="Leave pushes younger than this many seconds alone.")
    ] = 60,
) -> None:
    """Push again E911 addresses a lost carrier answer left pending (the sweep does this)."""
    with _database() as db:
        done = _run(lambda: e911.repush_pending(db, _carrier(db), timedelta(seconds=min_age)))
    console.print(f"provisioned: {', '.join(done) or 'none'}")


@e911_location_app.command("add")
def e911_location_add(name: str, address_id: str, key: KeyOpt, as_json: JsonOpt = False) -> None:
    """A physical site, at one of your E911 addresses."""
    from didhub.api.e911 import location_shape

    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            with db.session() as session:
                return location_shape(e911.create_location(session, scope, name, address_id))

        shaped = _run(work)
    if as_json:
        _print_json(shaped)
    else:
        console.print(f"{shaped['id']} {shaped['name']} at {shaped['address_id']}")


@e911_location_app.command("list")
def e911_location_list(key: KeyOpt, as_json: JsonOpt = False) -> None:
    """Your physical locations."""
    from didhub.api.e911 import location_shape

    with _database() as db:

        def work() -> list[dict[str, Any]]:
            scope = _scope(db, key)
            with db.session() as session:
                return [location_shape(loc) for loc in e911.list_locations(session, scope)]

        rows = _run(work)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "tenant", "name", "address")
    for r in rows:
        table.add_row(r["id"], r["tenant_id"], r["name"], r["address_id"])
    console.print(table)


@compliance_app.command("e911")
def compliance_e911(key: KeyOpt, as_json: JsonOpt = False) -> None:
    """Locations with no E911-provisioned number (Kari's Law, RAY BAUM'S Act) and
    active numbers with no provisioned E911 address. Exit code 1 when not compliant."""
    from didhub.api.e911 import compliance_shape

    with _database() as db:

        def work() -> dict[str, Any]:
            scope = _scope(db, key)
            with db.session() as session:
                return compliance_shape(e911.compliance_report(session, scope))

        report = _run(work)
    if as_json:
        _print_json(report)
    elif report["compliant"]:
        console.print(
            "E911 compliant: every location has a provisioned number, every number an address"
        )
    else:
        for loc in report["locations_without_e911"]:
            console.print(
                f"[yellow]location[/yellow] {loc['id']} {loc['name']} "
                f"({_one_line(loc['address'])}): no number with this E911 address"
            )
        for num in report["numbers_without_e911"]:
            state = num["e911_status"] or "no address"
            if num["e911_problem"] == e911.OTHER_ACCOUNTS_ADDRESS:
                state = f"address {num['address_id']} is another account's, not the one it serves"
            console.print(f"[yellow]number[/yellow] {num['phone_number']}: E911 {state}")
    if not report["compliant"]:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()


# ------------------------------------------------------------------ stock


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(help="CSV: number,rate_center,city,state,cost")],
    as_json: JsonOpt = False,
) -> None:
    """Load numbers the platform owns into stock, all or nothing: a bad row is
    named by line and column and nothing is imported."""
    with _database() as db:

        def work() -> int:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValidationFailed(f"can't read {file}: {exc}", field="file") from None
            return import_csv(db, text).imported

        imported = _run(work)
    if as_json:
        _print_json({"imported": imported})
    else:
        console.print(f"{imported} numbers imported into stock")
