"""Outbound calls' API: an agent's SIP credential (``/agents/{id}/sip-credential``)
and the edge's per-INVITE lookup (``POST /routing/outbound``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from pydantic import Field

from didhub.api.contract import KEYED, edge_token, errors
from didhub.api.deps import Caller, Ctx, Edge
from didhub.inputs import RequestModel
from didhub.outbound import service as outbound

router = APIRouter(tags=["outbound"])


class OutboundLookup(RequestModel):
    """The edge's question per INVITE; text checked like every request body's
    (no NUL bytes or other controls: PostgreSQL refuses them)."""

    username: str = Field(max_length=128, description="The digest username the caller presented")
    destination: str = Field(
        max_length=64, description="The dialled number: E.164, 10/11 NANP digits, 911, 933"
    )
    caller: str | None = Field(None, max_length=64, description="The number in the caller's From")
    source_ip: str | None = Field(
        None, max_length=64, description="The address the INVITE came from (IP allow-lists)"
    )


@router.post("/agents/{agent_id}/sip-credential", status_code=201, responses=errors(*KEYED, 404))
def rotate_credential(agent_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Create or rotate the agent's SIP digest credential. The password is in
    this answer only; the old one stops working at once."""
    with ctx.db.session() as session:
        issued = outbound.issue_credential(session, ctx.settings, scope, agent_id)
        numbers = [n.e164 for n in outbound.outbound_numbers(session, agent_id)]
    return {
        "data": {
            "agent_id": issued.agent_id,
            "username": issued.username,
            "realm": issued.realm,
            "password": issued.password,
            "outbound_numbers": numbers,
        }
    }


@router.get("/agents/{agent_id}/sip-credential", responses=errors(*KEYED, 404))
def get_credential(agent_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        row = outbound.get_credential(session, scope, agent_id)
        numbers = [n.e164 for n in outbound.outbound_numbers(session, agent_id)]
    return {
        "data": {
            "agent_id": agent_id,
            "username": row.username if row else None,
            "realm": row.realm if row else None,
            "created_at": row.created_at.isoformat() if row else None,
            "outbound_numbers": numbers,
        }
    }


@router.post(
    "/routing/outbound",
    responses=errors(401, 403, 422),
    dependencies=[Security(edge_token)],
    tags=["routing"],
)
def lookup(body: OutboundLookup, ctx: Ctx, _edge: Edge) -> dict[str, Any]:
    """What the edge does with an INVITE from an agent: the HA1 to check its
    digest with, and the route (caller ID, trunks cheapest first) or the
    refusal (SIP status and a reason for the Warning header)."""
    with ctx.db.session() as session:
        decision = outbound.lookup(
            session, ctx.settings, body.username, body.destination, body.caller
        )
    return {
        "data": {
            "action": decision.action,
            "status": decision.status,
            "reason": decision.reason,
            "ha1": decision.ha1,
            "agent_id": decision.agent_id,
            "tenant_id": decision.tenant_id,
            "account_id": decision.account_id,
            "caller_id": decision.caller_id,
            "destination": decision.destination,
            "emergency": decision.emergency,
            "trunks": decision.trunks,
            "address": decision.address,
            "max_concurrent_calls": decision.max_concurrent_calls,
        }
    }
