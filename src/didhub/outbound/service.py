"""Outbound calls: who may call, from which number, to where, over which trunks.

The SIP edge asks :func:`lookup` once per INVITE with the digest username, the
dialled number and the number the caller presented. The answer gives the
edge everything it needs: the credential's HA1 (the edge checks the digest
itself; the password is never stored), and either the route (the caller ID to
set in From and P-Asserted-Identity, the trunks cheapest first for failover)
or a refusal (a SIP status and a reason for the Warning header).

Rules, in order (the account's outbound settings, ``outbound/settings.py``):

- an unknown username is refused 403;
- 911 and 933 always go out, to the emergency trunk, presenting a number of
  the tenant with a provisioned E911 address (the presented number if it has
  one), never refused for funds, standing, spend, destination or source
  address; the edge reports each once it has checked the caller's digest
  (:func:`emergency_placed`), which emits ``e911.call_placed``;
- the INVITE must come from the tenant's IP allow-list, if it has one (403);
- the caller ID must be a number assigned outbound to the agent and active
  (a suspended or released number can't be presented); another number is 403,
  or, with the ``rewrite`` caller-ID policy, replaced by the agent's first
  outbound number;
- the destination must be in the caller ID's own country or an allowed one,
  and not of a denied number type (premium by default) (403);
- the paying account (the number's owner) must be in good standing (403),
  with funds in its wallet (402), and the tenant below its daily spend limit
  (403); some trunk must serve the destination (503).

The static part of an answer (the credential, the agent's numbers, the
settings, the trunks: :class:`Snapshot`) is kept by the API in a route cache
(``routing/cache.py``) that any write to those tables clears; the money
(:class:`Funds`) in a funds cache (``outbound/funds_cache.py``) that any
commit writing a money table clears. With both kept, :func:`kept_lookup`
answers without the database.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String, bindparam, column, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.accounts import repository as accounts_repo
from didhub.accounts.models import Agent
from didhub.config import Settings
from didhub.db import Database, Money, UtcDateTime, new_id
from didhub.e911.models import E911Address, NumberE911
from didhub.errors import NotFound, ValidationFailed
from didhub.numbers.lifecycle import ACTIVE
from didhub.numbers.models import NumberAssignment, PhoneNumber
from didhub.outbound.models import OutboundTrunk, SipCredential
from didhub.outbound.settings import REWRITE, Network, Policy, policy_for
from didhub.tenancy import Scope
from didhub.wallet import ledger
from didhub.webhooks import events
from didhub.webhooks.models import Event

EMERGENCY = frozenset({"911", "933"})
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{3,64}$")


def ha1(username: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True)
class IssuedCredential:
    agent_id: str
    username: str
    realm: str
    password: str  # shown once


def issue_credential(
    session: Session, settings: Settings, scope: Scope, agent_id: str
) -> IssuedCredential:
    """Create or rotate the agent's SIP credential; the old password stops
    working at once."""
    agent = accounts_repo.get_agent(session, scope, agent_id, for_update=True)
    password = secrets.token_urlsafe(18)
    realm = settings.sip_realm
    row = session.get(SipCredential, agent.id)
    if row is None:
        username = agent.id.replace("_", "-")[:64]
        row = SipCredential(
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            username=username,
            realm=realm,
            ha1=ha1(username, realm, password),
            created_at=clock.now(),
        )
        session.add(row)
    else:
        row.realm = realm
        row.ha1 = ha1(row.username, realm, password)
        row.created_at = clock.now()
    session.flush()
    return IssuedCredential(agent.id, row.username, realm, password)


def get_credential(session: Session, scope: Scope, agent_id: str) -> SipCredential | None:
    agent = accounts_repo.get_agent(session, scope, agent_id)
    return session.get(SipCredential, agent.id)


def outbound_numbers(session: Session, agent_id: str) -> list[PhoneNumber]:
    """The active numbers assigned outbound to the agent (what it may present)."""
    return list(
        session.scalars(
            select(PhoneNumber)
            .join(NumberAssignment, NumberAssignment.number_id == PhoneNumber.id)
            .where(
                NumberAssignment.agent_id == agent_id,
                NumberAssignment.assignment_type == "outbound",
                NumberAssignment.ended_at.is_(None),
                PhoneNumber.status == ACTIVE,
            )
            .order_by(PhoneNumber.e164)
        )
    )


# ---------------------------------------------------------------- trunks


def add_trunk(
    session: Session,
    name: str,
    host: str,
    *,
    prefix: str = "",
    tech_prefix: str = "",
    cost: Decimal = Decimal("0"),
    emergency: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> OutboundTrunk:
    """A trunk; ``username`` and ``password`` (both or neither) answer the
    carrier's digest challenge, else the carrier trusts the edge's address."""
    if not name.strip():
        raise ValidationFailed("a trunk needs a name", field="name")
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
        raise ValidationFailed(f"{host!r} is not a host[:port]", field="host")
    if not re.fullmatch(r"\d{0,15}", prefix):
        raise ValidationFailed("prefix is E.164 digits (no +), or empty", field="prefix")
    if not re.fullmatch(r"[0-9#*]{0,16}", tech_prefix):
        raise ValidationFailed("tech_prefix is digits, # or *", field="tech_prefix")
    if cost < 0:
        raise ValidationFailed("cost can't be negative", field="cost")
    username, password = username or None, password or None
    if username is not None and password is None:
        raise ValidationFailed("a trunk username needs its password", field="password")
    if password is not None and username is None:
        raise ValidationFailed("a trunk password needs its username", field="username")
    for name_of, value in (("username", username), ("password", password)):
        if value is not None and not re.fullmatch(r"[\x21-\x7e]{1,128}", value):
            raise ValidationFailed(
                f"the trunk {name_of} is 1-128 printable characters without spaces",
                field=name_of,
            )
    trunk = OutboundTrunk(
        id=new_id("trk"),
        name=name.strip(),
        host=host,
        prefix=prefix,
        tech_prefix=tech_prefix,
        cost=cost,
        emergency=emergency,
        auth_username=username,
        auth_password=password,
        created_at=clock.now(),
    )
    session.add(trunk)
    session.flush()
    return trunk


def list_trunks(session: Session) -> list[OutboundTrunk]:
    return list(session.scalars(select(OutboundTrunk).order_by(OutboundTrunk.name)))


def remove_trunk(session: Session, trunk_id: str) -> None:
    trunk = session.get(OutboundTrunk, trunk_id)
    if trunk is None:
        raise NotFound(f"trunk {trunk_id} not found", field="trunk_id")
    session.delete(trunk)


# ---------------------------------------------------------------- the lookup


@dataclass(frozen=True)
class Decision:
    action: str  # route | refuse
    status: int = 200
    reason: str | None = None
    ha1: str | None = None
    agent_id: str | None = None
    tenant_id: str | None = None
    caller_id: str | None = None
    destination: str | None = None
    emergency: bool = False
    trunks: list[dict[str, str]] = field(default_factory=list)
    address: dict[str, str | None] | None = None
    account_id: str | None = None  # who pays: the edge counts calls in progress per account
    max_concurrent_calls: int | None = None  # None: no limit


@functools.lru_cache(maxsize=65_536)
def _valid(e164: str) -> str:
    # Kept (a refusal raises, and is not): validating costs more than the lookup.
    return numbering.parse_e164(e164, field="destination")


def _destination(raw: str) -> str:
    digits = raw.strip()
    if digits in EMERGENCY:
        return digits
    digits = re.sub(r"[\s().-]", "", digits)
    if digits.startswith("+"):
        return _valid(digits)
    if re.fullmatch(r"\d{10}", digits):
        return _valid("+1" + digits)
    if re.fullmatch(r"1\d{10}", digits):
        return _valid("+" + digits)
    if digits.startswith("011"):
        return _valid("+" + digits[3:])
    raise ValidationFailed(f"{raw!r} is not a number this edge can dial", field="destination")


def _region(e164: str) -> str | None:
    try:
        return numbering.region_of(e164)
    except Exception:  # noqa: BLE001 - an unallocated number has no country
        return None


def _routes(trunks: Sequence[OutboundTrunk | Trunk], dialled: str) -> list[dict[str, str]]:
    routes = []
    for t in trunks:
        route = {
            "name": t.name,
            "uri": f"sip:{t.tech_prefix}{dialled.lstrip('+')}@{t.host}",
            "cost": str(t.cost),
        }
        if t.auth_username and t.auth_password:  # the carrier's digest challenge
            route["auth_username"] = t.auth_username
            route["auth_password"] = t.auth_password
        routes.append(route)
    return routes


def _e911_number(
    session: Session, tenant_id: str, presented: PhoneNumber | None
) -> tuple[PhoneNumber, E911Address] | None:
    query = (
        select(PhoneNumber, E911Address)
        .join(NumberE911, NumberE911.number_id == PhoneNumber.id)
        .join(E911Address, E911Address.id == NumberE911.address_id)
        .where(
            PhoneNumber.tenant_id == tenant_id,
            PhoneNumber.status == ACTIVE,
            NumberE911.status == "provisioned",
        )
        .order_by(PhoneNumber.e164)
    )
    rows = list(session.execute(query))
    for number, address in rows:
        if presented is not None and number.id == presented.id:
            return number, address
    return rows[0] if rows else None


def _address(address: E911Address) -> dict[str, str | None]:
    return {
        "street": address.street,
        "unit": address.unit,
        "city": address.city,
        "state": address.state,
        "postal_code": address.postal_code,
        "country": address.country,
        "caller_name": address.caller_name,
    }


def _emergency_number(
    session: Session,
    agent: Agent,
    presented: PhoneNumber | None,
    numbers: list[PhoneNumber],
) -> tuple[PhoneNumber | None, dict[str, str | None] | None]:
    """The number a 911/933 call presents and its dispatchable address: the
    presented number if it has a provisioned E911 address, else another of the
    tenant's that has one, else (no address) the presented or first number."""
    found = _e911_number(session, agent.tenant_id, presented)
    if found is not None:
        return found[0], _address(found[1])
    return presented or (numbers[0] if numbers else None), None


def _emergency(
    session: Session,
    credential: SipCredential,
    agent: Agent,
    dialled: str,
    presented: PhoneNumber | None,
    numbers: list[PhoneNumber],
) -> Decision:
    number, address = _emergency_number(session, agent, presented, numbers)
    trunks = list(
        session.scalars(
            select(OutboundTrunk)
            .where(OutboundTrunk.emergency.is_(True))
            .order_by(OutboundTrunk.cost, OutboundTrunk.name)
        )
    )
    caller_id = number.e164 if number is not None else None
    if not trunks:
        return Decision(
            "refuse",
            503,
            "no emergency route is configured",
            ha1=credential.ha1,
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            emergency=True,
        )
    return Decision(
        "route",
        ha1=credential.ha1,
        agent_id=agent.id,
        tenant_id=agent.tenant_id,
        caller_id=caller_id,
        destination=dialled,
        emergency=True,
        trunks=_routes(trunks, dialled),
        address=address,
    )


def emergency_placed(
    db: Database, username: str, destination: str, caller: str | None, call_id: str
) -> dict[str, Any]:
    """The edge checked the caller's digest and is placing its 911/933 call:
    the ``e911.call_placed`` event (webhook) for Kari's Law's front-desk
    notice, with the number presented and its dispatchable address, as the
    lookup chose them. Emitted here and not at the lookup, which comes before
    the digest is checked: knowing a username must not be enough to set off
    a front desk's alarm. A call id already told of is not told again (a
    retransmission, a re-challenge)."""
    dialled = _destination(destination)
    if dialled not in EMERGENCY:
        raise ValidationFailed("only 911 and 933 calls are reported placed", field="destination")
    with db.session() as session:
        credential, agent, presented, numbers = _emergency_caller(session, username, caller)
        number, address = _emergency_number(session, agent, presented, numbers)
        payload: dict[str, Any] = {
            "calling_number": number.e164 if number is not None else None,
            "dialled": dialled,
            "agent_id": agent.id,
            "agent_name": agent.name,
            "dispatchable_address": address,
            "call_id": call_id,
        }
        # The tenant's 911 calls of the last hour: a handful at most.
        recent = session.scalars(
            select(Event.data).where(
                Event.type == "e911.call_placed",
                Event.tenant_id == agent.tenant_id,
                Event.created_at >= clock.now() - timedelta(hours=1),
            )
        )
        if all(data.get("call_id") != call_id for data in recent):
            events.emit(
                session,
                "e911.call_placed",
                number.owner_id if number is not None else agent.tenant_id,
                payload,
                tenant_id=agent.tenant_id,
                number_id=number.id if number is not None else None,
            )
    return payload


@dataclass(frozen=True)
class CallerNumber:
    id: str
    e164: str
    owner_id: str
    region: str | None


@dataclass(frozen=True)
class Trunk:
    name: str
    host: str
    prefix: str
    tech_prefix: str
    cost: Decimal
    auth_username: str | None = None
    auth_password: str | None = None


@dataclass(frozen=True)
class Caller:
    """What a lookup needs of a username that changes only by a write to a
    routing table (``db.ROUTING_TABLES``): kept in memory by the API."""

    ha1: str
    agent_id: str
    tenant_id: str
    numbers: tuple[CallerNumber, ...]
    policy: Policy
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class Snapshot:
    """A username's static part (None: no such credential) and the trunks."""

    caller: Caller | None
    trunks: tuple[Trunk, ...]


@dataclass(frozen=True)
class Funds:
    """The money part of a lookup: the payer's standing and balance, and the
    tenant's outbound spend today (UTC); kept by the API until a money table
    is written (``outbound/funds_cache.py``)."""

    standing: str
    balance: Decimal
    spent_today: Decimal


def snapshot(session: Session, username: str) -> Snapshot:
    """The static part of a lookup for ``username`` (see :class:`Caller`)."""
    trunks = tuple(
        Trunk(t.name, t.host, t.prefix, t.tech_prefix, t.cost, t.auth_username, t.auth_password)
        for t in session.scalars(
            select(OutboundTrunk)
            .where(OutboundTrunk.emergency.is_(False))
            .order_by(OutboundTrunk.cost, OutboundTrunk.name)
        )
    )
    credential = session.scalars(
        select(SipCredential).where(SipCredential.username == username)
    ).first()
    if credential is None:
        return Snapshot(None, trunks)
    agent = session.get_one(Agent, credential.agent_id)
    policy = policy_for(session, agent.tenant_id)
    numbers = tuple(
        CallerNumber(n.id, n.e164, n.owner_id, _region(n.e164))
        for n in outbound_numbers(session, agent.id)
    )
    caller = Caller(credential.ha1, agent.id, agent.tenant_id, numbers, policy, policy.networks)
    return Snapshot(caller, trunks)


# The dynamic part of a lookup in one statement of three key look-ups, built
# once: composing it with the ORM costs more than running it.
_FUNDS = (
    text(
        "SELECT"
        " (SELECT standing FROM billing_profiles WHERE account_id = :payer) AS standing,"
        " (SELECT balance FROM ledger_accounts WHERE id = :wallet) AS balance,"
        " (SELECT COALESCE(SUM(amount), 0) FROM usage_records"
        "   WHERE (tenant_id = :tenant OR account_id = :tenant)"
        "   AND direction = 'outbound' AND started_at >= :today) AS spent"
    )
    .bindparams(bindparam("today", type_=UtcDateTime()))
    .columns(column("standing", String()), column("balance", Money()), column("spent", Money()))
)


def funds(session: Session | Connection, settings: Settings, payer: str, tenant_id: str) -> Funds:
    """The payer's standing and balance and the tenant's outbound spend since
    00:00 UTC (the rated amounts of its calls: what the platform charges)."""
    today = datetime.combine(clock.now().date(), time(), UTC)
    row = session.execute(
        _FUNDS,
        {
            "payer": payer,
            "wallet": ledger.wallet_id(payer, settings.currency),
            "tenant": tenant_id,
            "today": today,
        },
    ).one()
    standing, balance, spent = row
    return Funds(
        standing or "good",
        balance if balance is not None else Decimal("0"),
        spent if spent is not None else Decimal("0"),
    )


def _presented(caller: Caller, raw: str | None) -> CallerNumber | None:
    if not raw:
        return None
    exact = next((n for n in caller.numbers if n.e164 == raw), None)
    if exact is not None:
        return exact  # as the edge usually sends it: no parsing
    try:
        e164 = numbering.parse_e164(raw, field="caller")
    except ValidationFailed:
        return None
    return next((n for n in caller.numbers if n.e164 == e164), None)


def _ip_allowed(caller: Caller, source_ip: str | None) -> bool:
    if not caller.networks:
        return True
    address = _ip_address(source_ip) if source_ip else None
    return address is not None and any(address in net for net in caller.networks)


@functools.lru_cache(maxsize=4096)  # an edge's few addresses, parsed once
def _ip_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw.strip())
    except ValueError:
        return None


def decide(
    settings: Settings,
    snap: Snapshot,
    dialled: str,
    caller_raw: str | None,
    source_ip: str | None,
    read_funds: Callable[[str, str], Funds],
    username: str = "",
) -> Decision:
    """The rules for a call that isn't an emergency call (see the module)."""
    caller = snap.caller
    if caller is None:
        return Decision("refuse", 403, "unknown SIP credential")

    def refuse(status: int, reason: str) -> Decision:
        return Decision("refuse", status, reason, caller.ha1, caller.agent_id, caller.tenant_id)

    policy = caller.policy
    if not _ip_allowed(caller, source_ip):
        return refuse(403, f"calls from {source_ip or 'an unknown address'} are not allowed")
    if not caller.numbers:
        return refuse(403, "no number is assigned outbound to this agent")
    presented = _presented(caller, caller_raw)
    if presented is None:
        if policy.caller_id_policy != REWRITE:
            return refuse(403, f"{caller_raw} is not a number assigned outbound to this agent")
        presented = caller.numbers[0]
    home = presented.region
    region, kind = numbering.describe_dialled(dialled)
    if not policy.country_allowed(home, region):
        allowed = ", ".join(dict.fromkeys([home or "its country", *policy.allowed_countries]))
        return refuse(
            403, f"calls outside {allowed} are not enabled for this account ({region} dialled)"
        )
    if kind in policy.denied_number_types:
        return refuse(403, f"calls to {kind} numbers are not enabled for this account")
    payer = presented.owner_id
    money = read_funds(payer, caller.tenant_id)
    if money.standing != "good":
        return refuse(403, f"the account is {money.standing.replace('_', ' ')}")
    if money.balance <= 0:
        return refuse(402, "the account has no funds for calls")
    limit = policy.daily_spend_limit
    if limit is not None and money.spent_today >= limit:
        return refuse(
            403,
            f"the daily outbound limit of {limit:.2f} {settings.currency} is reached",
        )
    digits = dialled.lstrip("+")
    trunks = [t for t in snap.trunks if digits.startswith(t.prefix)]
    if not trunks:
        return refuse(503, f"no outbound trunk serves {dialled}")
    return Decision(
        "route",
        caller_id=presented.e164,
        destination=dialled,
        trunks=_routes(trunks, dialled),
        ha1=caller.ha1,
        agent_id=caller.agent_id,
        tenant_id=caller.tenant_id,
        account_id=payer,
        max_concurrent_calls=policy.max_concurrent_calls,
    )


Kept = Callable[[str, Callable[[], Snapshot]], Snapshot]
KeptFunds = Callable[[str, str, Callable[[], Funds]], Funds]


class _NotKept(Exception):
    pass


def kept_lookup(
    settings: Settings,
    username: str,
    destination: str,
    caller: str | None,
    source_ip: str | None,
    snapshot_hit: Callable[[str], Snapshot | None],
    funds_hit: Callable[[str, str], Funds | None],
) -> Decision | None:
    """The lookup from memory alone (no database: the event loop's path), or
    ``None`` when a part isn't kept or the call is an emergency call (worked
    out afresh by :func:`lookup`)."""
    dialled = _destination(destination)
    if dialled in EMERGENCY:
        return None
    snap = snapshot_hit(username)
    if snap is None:
        return None

    def read_funds(payer: str, tenant_id: str) -> Funds:
        found = funds_hit(payer, tenant_id)
        if found is None:
            raise _NotKept
        return found

    try:
        return decide(settings, snap, dialled, caller, source_ip, read_funds, username)
    except _NotKept:
        return None


def lookup(
    db: Database,
    settings: Settings,
    username: str,
    destination: str,
    caller: str | None,
    source_ip: str | None = None,
    kept: Kept | None = None,
    kept_funds: KeptFunds | None = None,
) -> Decision:
    """The edge's one question per INVITE (see the module's rules). The static
    part comes through ``kept`` and the money through ``kept_funds`` (the
    API's caches) when given; an emergency call is worked out afresh."""
    dialled = _destination(destination)
    if dialled in EMERGENCY:
        with db.session() as session:
            return _emergency_lookup(session, username, dialled, caller)

    def compute() -> Snapshot:
        with db.read_session() as session:
            return snapshot(session, username)

    snap = kept(username, compute) if kept is not None else compute()

    def read_funds(payer: str, tenant_id: str) -> Funds:
        def fresh() -> Funds:
            with db.read_engine.begin() as connection:
                return funds(connection, settings, payer, tenant_id)

        return kept_funds(payer, tenant_id, fresh) if kept_funds is not None else fresh()

    return decide(settings, snap, dialled, caller, source_ip, read_funds, username)


def _emergency_caller(
    session: Session, username: str, caller: str | None
) -> tuple[SipCredential, Agent, PhoneNumber | None, list[PhoneNumber]]:
    credential = session.scalars(
        select(SipCredential).where(SipCredential.username == username)
    ).first()
    if credential is None:
        raise NotFound("unknown SIP credential", field="username")
    agent = session.get_one(Agent, credential.agent_id)
    numbers = outbound_numbers(session, agent.id)
    presented: PhoneNumber | None = None
    if caller:
        try:
            e164 = numbering.parse_e164(caller, field="caller")
            presented = next((n for n in numbers if n.e164 == e164), None)
        except ValidationFailed:
            presented = None
    return credential, agent, presented, numbers


def _emergency_lookup(
    session: Session, username: str, dialled: str, caller: str | None
) -> Decision:
    try:
        credential, agent, presented, numbers = _emergency_caller(session, username, caller)
    except NotFound:
        return Decision("refuse", 403, "unknown SIP credential")
    return _emergency(session, credential, agent, dialled, presented, numbers)
