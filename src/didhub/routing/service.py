"""Where an inbound call to a DID goes, answered for the SIP edge.

An active number with an inbound agent goes to that agent; any other number we
hold follows its tenant's unassigned-number behaviour, else its partner's, else
the platform's announcement (``accounts/settings.py``): an ``announcement``
(``text``), ``voicemail`` (``mailbox``), ``forward`` (``destination``, E.164 or
a SIP URI) or ``reject``; a number suspended for non-payment answers the
suspension; a number we don't hold is not found.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from didhub import numbering
from didhub.accounts import settings as account_settings
from didhub.accounts.models import Agent
from didhub.config import Settings
from didhub.errors import NotFound
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import NumberAssignment, PhoneNumber


@dataclass(frozen=True)
class InboundRoute:
    phone_number: str
    number_id: str
    tenant_id: str | None
    action: str  # agent | announcement | voicemail | forward | reject | suspended
    agent_id: str | None = None
    agent_name: str | None = None
    text: str | None = None
    sip_uri: str | None = None  # where the edge relays the call
    mailbox: str | None = None
    destination: str | None = None
    # Whose unassigned behaviour answered: tenant | partner | platform.
    source: str | None = None


# A live number and its inbound agent, if any, in one query. Built once: making
# a statement costs more than running it.
_NUMBER_AND_AGENT = (
    select(
        PhoneNumber.id,
        PhoneNumber.status,
        PhoneNumber.owner_id,
        PhoneNumber.tenant_id,
        Agent.id,
        Agent.name,
        Agent.sip_uri,
    )
    .outerjoin(
        NumberAssignment,
        (NumberAssignment.number_id == PhoneNumber.id)
        & (NumberAssignment.assignment_type == "inbound")
        & NumberAssignment.ended_at.is_(None),
    )
    .outerjoin(Agent, Agent.id == NumberAssignment.agent_id)
    .where(PhoneNumber.e164 == bindparam("e164"), PhoneNumber.status.in_((ACTIVE, SUSPENDED)))
)


def inbound(session: Session, settings: Settings, raw_number: str) -> InboundRoute:
    e164 = numbering.parse_e164(raw_number, field="phone_number")
    found = session.execute(_NUMBER_AND_AGENT, {"e164": e164}).first()
    if found is None:
        raise NotFound(f"{e164} is not a number this platform holds", field="phone_number")
    number_id, status, owner_id, tenant_id, agent_id, agent_name, sip_uri = found
    if status == SUSPENDED:
        return InboundRoute(
            e164, number_id, tenant_id, "suspended", text=settings.suspended_announcement
        )
    if agent_id is not None:
        return InboundRoute(
            e164, number_id, tenant_id, "agent", agent_id, agent_name, sip_uri=sip_uri
        )
    behaviour = account_settings.unassigned_for_number(session, settings, owner_id, tenant_id)
    assert isinstance(behaviour.value, account_settings.UnassignedBehaviour)
    return InboundRoute(
        e164,
        number_id,
        tenant_id,
        behaviour.value.action,
        text=behaviour.value.text,
        mailbox=behaviour.value.mailbox,
        destination=behaviour.value.destination,
        source=behaviour.source,
        sip_uri=relay_uri(settings, behaviour.value),
    )


def relay_uri(settings: Settings, behaviour: account_settings.UnassignedBehaviour) -> str | None:
    """Where the edge relays an unassigned call: a forward's SIP URI as given,
    a forward to a phone number through the PSTN gateway, a mailbox on the
    voicemail server; ``None`` when no such server is configured (the edge
    then answers 480)."""
    if behaviour.action == "forward" and behaviour.destination:
        if behaviour.destination.startswith(("sip:", "sips:")):
            return behaviour.destination
        if settings.pstn_gateway:
            return f"sip:{behaviour.destination}@{settings.pstn_gateway}"
    if behaviour.action == "voicemail" and behaviour.mailbox and settings.voicemail_uri:
        return settings.voicemail_uri.replace("{mailbox}", behaviour.mailbox)
    return None
