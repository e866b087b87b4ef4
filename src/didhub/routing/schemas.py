"""The inbound routing answer's shape, for /openapi.json only: the answer
itself is built by ``api.inbound_route`` and kept as bytes in the
route cache (``routing/cache.py``), never validated on the hot path."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from didhub.outputs import ResponseModel
from didhub.routing.service import InboundRoute


class InboundRouteOut(ResponseModel):
    phone_number: str
    number_id: str
    tenant_id: str | None
    action: str = Field(description="agent, announcement, voicemail, forward, reject or suspended")
    agent_id: str | None
    agent_name: str | None
    text: str | None
    sip_uri: str | None = Field(description="Where the edge relays the call")
    mailbox: str | None
    destination: str | None
    source: str | None = Field(description="Whose unassigned behaviour answered")


# ------------------------------------------------------------------ answers


def inbound_route(route: InboundRoute) -> dict[str, Any]:
    return {
        "phone_number": route.phone_number,
        "number_id": route.number_id,
        "tenant_id": route.tenant_id,
        "action": route.action,
        "agent_id": route.agent_id,
        "agent_name": route.agent_name,
        "text": route.text,
        "sip_uri": route.sip_uri,
        "mailbox": route.mailbox,
        "destination": route.destination,
        "source": route.source,
    }
