"""Outbound calls: who may call, from which number, to where, over which trunks.

The SIP edge asks :func:`lookup` once per INVITE with the digest username, the
dialled number and the number the caller presented. The answer gives the
edge everything it needs: the credential's HA1 (the edge checks the digest
itself; the password is never stored), and either the route (the caller ID to
set in From and P-Asserted-Identity, the trunks cheapest first for failover)
or a refusal (a SIP status and a reason for the Warning header).

Rules, in order:

- an unknown username is refused 403;
- the caller ID must be a number assigned outbound to the agent and active
  (a suspended or released number can't be presented); another number is 403;
- 911 and 933 always go out, to the emergency trunk, presenting a number of
  the tenant with a provisioned E911 address (the presented number if it has
  one), never refused for funds, standing or destination, and each emits
  ``e911.call_placed``;
- any other destination must be in the caller ID's own country (international
  calls are off); the paying account must be in good standing (403) with funds
  in its wallet (402); some trunk must serve the destination (503).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.accounts import repository as accounts_repo
from didhub.accounts.models import Agent
from didhub.config import Settings
from didhub.db import new_id
from didhub.e911.models import E911Address, NumberE911
from didhub.errors import NotFound, ValidationFailed
from didhub.numbers.lifecycle import ACTIVE
from didhub.numbers.models import NumberAssignment, PhoneNumber
from didhub.outbound.models import OutboundTrunk, SipCredential
from didhub.tenancy import Scope
from didhub.wallet import ledger
from didhub.wallet.models import BillingProfile
from didhub.webhooks import events

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
) -> OutboundTrunk:
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
    trunk = OutboundTrunk(
        id=new_id("trk"),
        name=name.strip(),
        host=host,
        prefix=prefix,
        tech_prefix=tech_prefix,
        cost=cost,
        emergency=emergency,
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


def _destination(raw: str) -> str:
    digits = raw.strip()
    if digits in EMERGENCY:
        return digits
    digits = re.sub(r"[\s().-]", "", digits)
    if digits.startswith("+"):
        return numbering.parse_e164(digits, field="destination")
    if re.fullmatch(r"\d{10}", digits):
        return numbering.parse_e164("+1" + digits, field="destination")
    if re.fullmatch(r"1\d{10}", digits):
        return numbering.parse_e164("+" + digits, field="destination")
    if digits.startswith("011"):
        return numbering.parse_e164("+" + digits[3:], field="destination")
    raise ValidationFailed(f"{raw!r} is not a number this edge can dial", field="destination")


def _region(e164: str) -> str | None:
    try:
        return numbering.region_of(e164)
    except Exception:  # noqa: BLE001 - an unallocated number has no country
        return None


def _routes(trunks: list[OutboundTrunk], dialled: str) -> list[dict[str, str]]:
    return [
        {
            "name": t.name,
            "uri": f"sip:{t.tech_prefix}{dialled.lstrip('+')}@{t.host}",
            "cost": str(t.cost),
        }
        for t in trunks
    ]


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
    rows = list(session.execute(query).tuples())
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


def _emergency(
    session: Session,
    credential: SipCredential,
    agent: Agent,
    dialled: str,
    presented: PhoneNumber | None,
    numbers: list[PhoneNumber],
) -> Decision:
    found = _e911_number(session, agent.tenant_id, presented)
    if found is not None:
        number: PhoneNumber | None = found[0]
        address: dict[str, str | None] | None = _address(found[1])
    else:
        number = presented or (numbers[0] if numbers else None)
        address = None
    trunks = list(
        session.scalars(
            select(OutboundTrunk)
            .where(OutboundTrunk.emergency.is_(True))
            .order_by(OutboundTrunk.cost, OutboundTrunk.name)
        )
    )
    caller_id = number.e164 if number is not None else None
    events.emit(
        session,
        "e911.call_placed",
        number.owner_id if number is not None else agent.tenant_id,
        {
            "calling_number": caller_id,
            "dialled": dialled,
            "agent_id": agent.id,
            "agent_name": agent.name,
            "dispatchable_address": address,
        },
        tenant_id=agent.tenant_id,
        number_id=number.id if number is not None else None,
    )
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


def lookup(
    session: Session, settings: Settings, username: str, destination: str, caller: str | None
) -> Decision:
    """The edge's one question per INVITE (see the module's rules). Writes
    only the ``e911.call_placed`` event of an emergency call."""
    credential = session.scalars(
        select(SipCredential).where(SipCredential.username == username)
    ).first()
    if credential is None:
        return Decision("refuse", 403, f"no SIP credential {username!r}")
    agent = session.get(Agent, credential.agent_id)
    assert agent is not None
    dialled = _destination(destination)
    numbers = outbound_numbers(session, agent.id)
    by_e164 = {n.e164: n for n in numbers}
    presented: PhoneNumber | None = None
    if caller:
        try:
            presented = by_e164.get(numbering.parse_e164(caller, field="caller"))
        except ValidationFailed:
            presented = None

    def refuse(status: int, reason: str) -> Decision:
        return Decision("refuse", status, reason, credential.ha1, agent.id, agent.tenant_id)

    if dialled in EMERGENCY:
        return _emergency(session, credential, agent, dialled, presented, numbers)
    if not numbers:
        return refuse(403, "no number is assigned outbound to this agent")
    if presented is None:
        return refuse(403, f"{caller} is not a number assigned outbound to this agent")
    home = _region(presented.e164)
    if _region(dialled) != home:
        return refuse(403, f"calls outside {home} are not enabled for this account")
    payer = presented.owner_id
    profile = session.get(BillingProfile, payer)
    if profile is not None and profile.standing != "good":
        return refuse(403, f"the account is {profile.standing}")
    if ledger.wallet_balance(session, payer, settings.currency) <= 0:
        return refuse(402, "the account has no funds for calls")
    digits = dialled.lstrip("+")
    trunks = [
        t
        for t in session.scalars(
            select(OutboundTrunk)
            .where(OutboundTrunk.emergency.is_(False))
            .order_by(OutboundTrunk.cost, OutboundTrunk.name)
        )
        if digits.startswith(t.prefix)
    ]
    if not trunks:
        return refuse(503, f"no outbound trunk serves {dialled}")
    return Decision(
        "route",
        caller_id=presented.e164,
        destination=dialled,
        trunks=_routes(trunks, dialled),
        ha1=credential.ha1,
        agent_id=agent.id,
        tenant_id=agent.tenant_id,
    )
