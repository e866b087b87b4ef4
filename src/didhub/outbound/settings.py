"""Outbound settings per account: the guards a call from an agent passes.

A tenant's setting wins, else its partner's, else the platform's default
(NULL means "inherit" at every level, as for account settings):

- ``caller_id_policy`` (default ``reject``): a presented number not assigned
  outbound to the agent is refused 403, or with ``rewrite`` the call presents
  the agent's outbound number instead;
- ``allowed_countries`` (default none): ISO codes callable beside the caller
  ID's own country; ``*`` for every country;
- ``denied_number_types`` (default ``premium``): destination types refused
  (``numbering.CALL_TYPES``);
- ``daily_spend_limit`` (default none): today's (UTC) rated outbound spend at
  which calls are refused;
- ``max_concurrent_calls`` (default none): calls in progress at once, which
  the edge enforces per paying account;
- ``allowed_ips`` (default none: any): CIDRs an INVITE must come from.

Emergency calls (911, 933) ignore all of them but the credential.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from didhub import clock
from didhub.accounts.models import Account
from didhub.accounts.service import UNCHANGED as UNCHANGED  # re-exported
from didhub.accounts.service import get_account
from didhub.errors import NotFound, ValidationFailed
from didhub.numbering import CALL_TYPES
from didhub.outbound.models import OutboundSettings
from didhub.tenancy import TENANT, Scope

REJECT = "reject"
REWRITE = "rewrite"
CALLER_ID_POLICIES = (REJECT, REWRITE)
EVERYWHERE = "*"
FIELDS = (
    "caller_id_policy",
    "allowed_countries",
    "denied_number_types",
    "daily_spend_limit",
    "max_concurrent_calls",
    "allowed_ips",
)
PLATFORM: dict[str, Any] = {
    "caller_id_policy": REJECT,
    "allowed_countries": (),
    "denied_number_types": ("premium",),
    "daily_spend_limit": None,
    "max_concurrent_calls": None,
    "allowed_ips": (),
}
_MAX_LIST = 100

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policy:
    """The outbound settings in effect for an account (a tenant's over its
    partner's over the platform's), and where each came from."""

    caller_id_policy: str
    allowed_countries: tuple[str, ...]  # ("*",): everywhere
    denied_number_types: tuple[str, ...]
    daily_spend_limit: Decimal | None
    max_concurrent_calls: int | None
    allowed_ips: tuple[str, ...]
    sources: dict[str, str]

    @property
    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.allowed_ips)

    def country_allowed(self, home: str | None, region: str | None) -> bool:
        return (
            EVERYWHERE in self.allowed_countries
            or region == home
            or (region is not None and region in self.allowed_countries)
        )


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part for part in value.split(",") if part)


def _own(row: OutboundSettings | None) -> dict[str, Any]:
    if row is None:
        return dict.fromkeys(FIELDS)
    return {
        "caller_id_policy": row.caller_id_policy,
        "allowed_countries": _split(row.allowed_countries),
        "denied_number_types": _split(row.denied_number_types),
        "daily_spend_limit": row.daily_spend_limit,
        "max_concurrent_calls": row.max_concurrent_calls,
        "allowed_ips": _split(row.allowed_ips),
    }


def chain_of(session: Session, account: Account) -> list[Account]:
    """The account, then its partner (a tenant's settings fall back to it)."""
    chain = [account]
    if account.kind == TENANT and account.parent_id:
        chain.append(session.get_one(Account, account.parent_id))
    return chain


def resolve(session: Session, chain: Sequence[Account]) -> Policy:
    levels = [(a.kind, _own(session.get(OutboundSettings, a.id))) for a in chain]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in FIELDS:
        for kind, own in levels:
            if own[name] is not None:
                values[name], sources[name] = own[name], kind
                break
        else:
            values[name], sources[name] = PLATFORM[name], "platform"
    return Policy(sources=sources, **values)


def policy_for(session: Session, account_id: str) -> Policy:
    return resolve(session, chain_of(session, session.get_one(Account, account_id)))


# ---------------------------------------------------------------- validating


def validate_countries(values: Sequence[str], field: str = "allowed_countries") -> str:
    codes: list[str] = []
    if len(values) > _MAX_LIST * 3:
        raise ValidationFailed("too many countries", field=field)
    for value in values:
        code = value.strip().upper()
        if code == EVERYWHERE:
            codes.append(EVERYWHERE)
            continue
        if len(code) != 2 or code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationFailed(
                f"{value!r} is not an ISO 3166 alpha-2 country code (or * for all)", field=field
            )
        codes.append(code)
    return ",".join(sorted(set(codes)))


def validate_number_types(values: Sequence[str], field: str = "denied_number_types") -> str:
    kinds = {v.strip().lower() for v in values}
    unknown = sorted(kinds - set(CALL_TYPES))
    if unknown:
        raise ValidationFailed(
            f"unknown number type {unknown[0]!r} (one of: {', '.join(CALL_TYPES)})", field=field
        )
    return ",".join(sorted(kinds))


def validate_ips(values: Sequence[str], field: str = "allowed_ips") -> str:
    if len(values) > _MAX_LIST:
        raise ValidationFailed(f"at most {_MAX_LIST} networks", field=field)
    nets: list[str] = []
    for value in values:
        try:
            nets.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"{value!r} is not an IP address or CIDR network (e.g. 203.0.113.0/24)",
                field=field,
            ) from None
    return ",".join(dict.fromkeys(nets))


def validate_limit(value: Decimal, field: str = "daily_spend_limit") -> Decimal:
    if not value.is_finite() or value < 0 or value > 1_000_000:
        raise ValidationFailed("a daily limit is 0 to 1000000", field=field)
    if value != value.quantize(Decimal("0.01")):
        raise ValidationFailed("at most 2 decimal places", field=field)
    return value


def validate_calls(value: int, field: str = "max_concurrent_calls") -> int:
    if value < 0 or value > 100_000:
        raise ValidationFailed("0 to 100000 calls at once", field=field)
    return value


# ---------------------------------------------------------------- reading, changing


@dataclass(frozen=True)
class SettingsView:
    account_id: str
    account_kind: str
    own: dict[str, Any]
    effective: Policy
    updated_at: datetime | None


def _account(session: Session, scope: Scope, account_id: str, kind: str | None) -> Account:
    field = "tenant_id" if kind == TENANT else "account_id"
    account = get_account(session, scope, account_id, field)
    if kind is not None and account.kind != kind:
        raise NotFound(f"{kind} {account_id} not found", field=field)
    return account


def _view(session: Session, account: Account) -> SettingsView:
    row = session.get(OutboundSettings, account.id)
    return SettingsView(
        account.id,
        account.kind,
        _own(row),
        resolve(session, chain_of(session, account)),
        row.updated_at if row is not None else None,
    )


def get_settings(
    session: Session, scope: Scope, account_id: str, kind: str | None = None
) -> SettingsView:
    """An account's outbound settings, own and in effect: the caller's own, or
    a partner's tenant's (only accounts of ``kind`` when given)."""
    return _view(session, _account(session, scope, account_id, kind))


def change_settings(
    session: Session,
    scope: Scope,
    account_id: str,
    change: dict[str, Any],
    kind: str | None = None,
) -> SettingsView:
    """A partial update: a field absent from ``change`` (or ``UNCHANGED``) is
    kept; ``None`` clears it (inherit). Every value is checked."""
    unknown = sorted(set(change) - set(FIELDS))
    if unknown:
        raise ValidationFailed(f"unknown outbound setting {unknown[0]!r}", field=unknown[0])
    account = _account(session, scope, account_id, kind)
    row = session.get(OutboundSettings, account.id, with_for_update=True)
    if row is None:
        row = OutboundSettings(account_id=account.id, updated_at=clock.now())
        session.add(row)
    for name, value in change.items():
        if value is UNCHANGED:
            continue
        if value is None:
            setattr(row, name, None)
        elif name == "caller_id_policy":
            if value not in CALLER_ID_POLICIES:
                raise ValidationFailed(
                    f"caller_id_policy is one of {', '.join(CALLER_ID_POLICIES)}", field=name
                )
            row.caller_id_policy = value
        elif name == "allowed_countries":
            row.allowed_countries = validate_countries(value)
        elif name == "denied_number_types":
            row.denied_number_types = validate_number_types(value)
        elif name == "allowed_ips":
            row.allowed_ips = validate_ips(value)
        elif name == "daily_spend_limit":
            row.daily_spend_limit = validate_limit(Decimal(value))
        else:
            row.max_concurrent_calls = validate_calls(int(value))
    row.updated_at = clock.now()
    session.flush()
    return _view(session, account)


def shown(view: SettingsView) -> dict[str, Any]:
    """The answer shape (API, CLI): own values (null: inherited), the values in
    effect and where each came from."""

    def out(name: str, value: Any) -> Any:
        if value is None:
            return None
        if name == "daily_spend_limit":
            return f"{value:.2f}"
        if isinstance(value, tuple):
            return list(value)
        return value

    policy = view.effective
    return {
        "account_id": view.account_id,
        "account_kind": view.account_kind,
        **{name: out(name, view.own[name]) for name in FIELDS},
        "effective": {name: out(name, getattr(policy, name)) for name in FIELDS},
        "effective_source": dict(policy.sources),
        "updated_at": view.updated_at.isoformat() if view.updated_at else None,
    }
