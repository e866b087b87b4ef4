"""``didhub partner|tenant|agent|key|user|settings …``: accounts from a terminal,
through the same services as the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select

from didhub import outputs
from didhub.accounts import schemas as account_schemas
from didhub.accounts import service as accounts
from didhub.accounts import settings as account_settings
from didhub.accounts.models import Account
from didhub.cli_common import Cli, KeyOpt, OptKeyOpt, Shown, Table, command, money
from didhub.errors import NotFound, ValidationFailed
from didhub.numbers import cnam
from didhub.tenancy import Scope
from didhub.wallet import ledger

partner_app = typer.Typer(help="Partner (reseller) accounts.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenant accounts.", no_args_is_help=True)
agent_app = typer.Typer(help="Agents under a tenant.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Dashboard users (email and password).", no_args_is_help=True)
settings_app = typer.Typer(
    help="Account settings: default CNAM, unassigned numbers.", no_args_is_help=True
)
APPS = {
    "partner": partner_app,
    "tenant": tenant_app,
    "agent": agent_app,
    "key": key_app,
    "user": user_app,
    "settings": settings_app,
}


# ------------------------------------------------------------------ partners, tenants


@command(partner_app, "create")
def partner_create(
    cli: Cli,
    name: str,
    balance: Annotated[str, typer.Option(help="Opening wallet credit, e.g. 100.00.")] = "0",
) -> Shown:
    """Create a partner with an API key (shown once) and an opening balance."""
    currency = cli.settings.currency
    amount = money(balance, "balance")
    with cli.db.session() as session:
        partner = accounts.create_partner(session, name, currency)
        accounts.fund_wallet(session, partner.id, amount, currency, "Opening balance")
        key = accounts.create_api_key(session, partner.id, "default")
        out = {
            **account_schemas.account(partner),
            "api_key": key.secret,
            "api_key_id": key.key.id,
            "balance": outputs.money(ledger.wallet_balance(session, partner.id, currency)),
        }
    return Shown(
        out,
        lines=[
            f"partner [bold]{out['id']}[/bold] created, balance {out['balance']}",
            f"API key (shown once): [bold]{out['api_key']}[/bold]",
        ],
    )


@command(partner_app, "fund")
def partner_fund(cli: Cli, account_id: str, amount: str) -> Shown:
    """Credit an account's wallet (operator credit, recorded in the ledger)."""
    currency = cli.settings.currency
    with cli.db.session() as session:
        accounts.get_account(session, Scope(account_id, accounts.TENANT), account_id, "account_id")
        accounts.fund_wallet(session, account_id, money(amount, "amount"), currency, "Credit")
        balance_now = outputs.money(ledger.wallet_balance(session, account_id, currency))
    return Shown(
        {"id": account_id, "balance": balance_now}, lines=[f"{account_id}: balance {balance_now}"]
    )


@command(tenant_app, "create")
def tenant_create(
    cli: Cli,
    name: str,
    partner: Annotated[
        str | None, typer.Option(help="Partner id; omit for a tenant under the platform.")
    ] = None,
    balance: Annotated[str, typer.Option(help="Opening wallet credit.")] = "0",
    with_key: Annotated[bool, typer.Option("--with-key", help="Also create an API key.")] = False,
) -> Shown:
    """Create a tenant (under a partner, or directly under the platform)."""
    currency = cli.settings.currency
    amount = money(balance, "balance")
    with cli.db.session() as session:
        tenant = accounts.create_tenant(session, name, currency, partner)
        accounts.fund_wallet(session, tenant.id, amount, currency, "Opening balance")
        out = account_schemas.account(tenant)
        if with_key:
            out["api_key"] = accounts.create_api_key(session, tenant.id, "default").secret
    lines = [f"tenant [bold]{out['id']}[/bold] created"]
    if "api_key" in out:
        lines.append(f"API key (shown once): [bold]{out['api_key']}[/bold]")
    return Shown(out, lines=lines)


@command(tenant_app, "list")
def tenant_list(
    cli: Cli,
    key: OptKeyOpt = None,
    partner: Annotated[
        str | None, typer.Option(help="Only this partner's tenants (operator, without --key).")
    ] = None,
) -> Shown:
    """List tenants: a key's own (a partner's tenants), or as operator every
    tenant (of one partner with --partner)."""
    with cli.db.read_session() as session:
        if key:
            found = accounts.list_tenants(session, cli.scope(key))
        else:
            query = select(Account).where(Account.kind == accounts.TENANT)
            if partner is not None:
                query = query.where(Account.parent_id == partner)
            found = list(session.scalars(query.order_by(Account.id)))
        rows = [account_schemas.account(tenant) for tenant in found]
    return Shown(rows, table=Table.of(rows, "id name partner_id:partner created_at:created"))


@command(agent_app, "create")
def agent_create(
    cli: Cli,
    tenant_id: str,
    name: str,
    key: KeyOpt,
    sip_uri: Annotated[
        str | None, typer.Option("--sip-uri", help="where the SIP edge relays its calls")
    ] = None,
) -> Shown:
    """Create an agent under a tenant."""
    with cli.acting(key) as (scope, session):
        out = account_schemas.agent(accounts.create_agent(session, scope, tenant_id, name, sip_uri))
    return Shown(out, lines=[f"agent [bold]{out['id']}[/bold] created"])


# ------------------------------------------------------------------ keys and users


@command(key_app, "create")
def key_create(
    cli: Cli,
    account: Annotated[str, typer.Option(help="Account id the key acts for.")],
    name: Annotated[str, typer.Option(help="A label to tell keys apart.")] = "",
) -> Shown:
    """Create an API key; the secret is shown once and stored only hashed."""
    with cli.db.session() as session:
        new = accounts.create_api_key(session, account, name)
        out = {
            "id": new.key.id,
            "account_id": account,
            "prefix": new.key.prefix,
            "api_key": new.secret,
        }
    return Shown(out, lines=[f"key {out['id']} ({out['prefix']}…): [bold]{out['api_key']}[/bold]"])


@command(key_app, "list")
def key_list(cli: Cli, account: Annotated[str, typer.Option(help="Account id.")]) -> Shown:
    """List an account's keys (prefixes only)."""
    with cli.db.read_session() as session:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": outputs.when(k.created_at),
                "revoked_at": outputs.when(k.revoked_at),
            }
            for k in accounts.list_api_keys(session, account)
        ]
    return Shown(
        rows,
        table=Table.of(rows, "id name prefix created_at:created revoked_at:revoked"),
    )


@command(key_app, "revoke", json_output=False)
def key_revoke(cli: Cli, key_id: str) -> Shown:
    """Revoke a key: requests with it get 401 from now on."""
    with cli.db.session() as session:
        accounts.revoke_api_key(session, key_id)
    return Shown(None, lines=[f"key {key_id} revoked"])


PasswordOpt = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="The password (asked for when not given; at least 10 characters).",
    ),
]


@command(user_app, "create")
def user_create(
    cli: Cli,
    account: Annotated[str, typer.Option(help="Account id the user signs in to.")],
    email: Annotated[str, typer.Option(help="Email address to sign in with.")],
    password: PasswordOpt,
    role: Annotated[
        str, typer.Option(help="admin, billing or read-only (docs/dashboard.md).")
    ] = accounts.ADMIN,
) -> Shown:
    """Create a dashboard user; only an argon2 hash of the password is stored."""
    with cli.db.session() as session:
        user = accounts.create_user(session, account, email, password, role)
        out = {
            "id": user.id,
            "account_id": user.account_id,
            "email": user.email,
            "role": user.role,
            "created_at": outputs.when(user.created_at),
        }
    return Shown(
        out, lines=[f"user [bold]{out['email']}[/bold] ({out['id']}) can sign in to {account}"]
    )


@command(user_app, "list")
def user_list(cli: Cli, account: Annotated[str, typer.Option(help="Account id.")]) -> Shown:
    """List an account's dashboard users."""
    with cli.db.read_session() as session:
        rows = [
            {"id": u.id, "email": u.email, "created_at": outputs.when(u.created_at)}
            for u in accounts.list_users(session, account)
        ]
    return Shown(rows, table=Table.of(rows, "id email created_at:created"))


@command(user_app, "set-password", json_output=False)
def user_set_password(
    cli: Cli,
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password: PasswordOpt,
) -> Shown:
    """Give a user a new password (every session it has ends)."""
    with cli.db.session() as session:
        changed = accounts.set_password(session, email, password).email
    return Shown(None, lines=[f"password of {changed} changed"])


# ------------------------------------------------------------------ settings

AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Account id: a partner key's tenant, or (without a key) any account as operator.",
    ),
]


def _settings_scope(cli: Cli, key: str | None, account: str | None) -> tuple[Scope, str]:
    """With a key: that key's scope, for its own account or ``--account``.
    Without one (operator at the server): the named account's own scope."""
    if key:
        scope = cli.scope(key)
        return scope, account or scope.account_id
    if account is None:
        raise ValidationFailed("give --key or --account", field="account")
    with cli.db.read_session() as session:
        found = session.get(Account, account)
        if found is None:
            raise NotFound(f"account {account} not found", field="account")
        return Scope(found.id, found.kind), found.id


def _behaviour(shown: dict[str, Any] | None) -> str:
    """An unassigned behaviour as a person reads it: ``forward to +1…``."""
    if shown is None:
        return "inherited"
    action = str(shown["action"])
    detail = {
        "announcement": f'"{shown.get("text")}"' if shown.get("text") else "",
        "voicemail": f"box {shown.get('mailbox')}" if shown.get("mailbox") else "",
        "forward": f"to {shown.get('destination')}",
    }.get(action, "")
    return f"{action} {detail}".strip()


def _settings_lines(shown: dict[str, Any]) -> list[str]:
    effective = shown["effective"]
    cnam_now = effective["default_cnam"]
    return [
        f"account: {shown['account_id']} ({shown['kind']})",
        f"default caller name: {shown['default_cnam'] or 'inherited'}",
        f"unassigned numbers: {_behaviour(shown['unassigned'])}",
        f"in effect, caller name: {cnam_now['name'] or 'none'} (from {cnam_now['source']})",
        f"in effect, unassigned numbers: {_behaviour(effective['unassigned'])} "
        f"(from {effective['unassigned']['source']})",
    ]


@command(settings_app, "show")
def settings_show(cli: Cli, key: OptKeyOpt = None, account: AccountOpt = None) -> Shown:
    """An account's default CNAM and unassigned-number behaviour, own and effective."""
    scope, account_id = _settings_scope(cli, key, account)
    with cli.db.read_session() as session:
        view = account_settings.get_settings(session, cli.settings, scope, account_id)
    shown = account_schemas.account_settings(view)
    return Shown(shown, lines=_settings_lines(shown))


@command(settings_app, "set")
def settings_set(
    cli: Cli,
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
) -> Shown:
    """Change an account's settings; a new default CNAM is listed on every
    number that inherits it."""
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
    scope, account_id = _settings_scope(cli, key, account)
    view = cnam.change_settings(cli.db, cli.carrier, cli.settings, scope, account_id, change)
    shown = account_schemas.account_settings(view)
    cnam_changed = default_cnam is not None or inherit_cnam
    return Shown(
        shown, lines=_settings_lines(shown), notes=[cnam.CACHE_NOTICE] if cnam_changed else []
    )
