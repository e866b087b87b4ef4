from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from didhub.api.deps import Ctx
from didhub.errors import Forbidden, Unauthorized
from didhub.routing import service as routing

router = APIRouter(prefix="/routing", tags=["routing"])


# Where the SIP edge runs beside didhub (the embedded default) no token is needed,
# but then only this machine may ask: the answer names tenants and agents.
LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


@router.get("/inbound/{e164}")
def inbound(
    e164: str,
    request: Request,
    ctx: Ctx,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    token = ctx.settings.edge_token
    if token is None:
        host = request.client.host if request.client else ""
        if host not in LOCAL_CLIENTS:
            raise Forbidden(
                "routing lookups from other hosts need DIDHUB_EDGE_TOKEN set on the server "
                "and sent as 'Authorization: Bearer <token>'"
            )
    else:
        presented = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthorized("the SIP edge token is not valid")
    with ctx.db.session() as session:
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
        }
    }
