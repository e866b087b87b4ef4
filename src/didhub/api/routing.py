from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from didhub.api.deps import Ctx, Edge
from didhub.routing import service as routing

router = APIRouter(prefix="/routing", tags=["routing"])


@router.get("/inbound/{e164}")
def inbound(e164: str, ctx: Ctx, _edge: Edge) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        route = routing.inbound(session, ctx.settings, e164)
    return {
        "data": {
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
    }
