"""The inbound routing answer's shape, for /openapi.json only: the answer
itself is built by ``api.presenters.inbound_route`` and kept as bytes in the
route cache (``routing/cache.py``), never validated on the hot path."""

from __future__ import annotations

from pydantic import Field

from didhub.outputs import ResponseModel


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
