"""Outbound calls' API: an agent's SIP credential (``/agents/{id}/sip-credential``)
and the edge's per-INVITE lookup (``POST /routing/outbound``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Security
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from didhub.api.contract import KEYED, edge_token, errors
from didhub.api.deps import Caller, Context, Ctx, Edge
from didhub.billing.service import outbound_rates
from didhub.errors import ValidationFailed
from didhub.inputs import RequestModel
from didhub.outbound import service as outbound
from didhub.outbound import settings as outbound_settings
from didhub.tenancy import TENANT

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


class OutboundSettingsPatch(RequestModel):
    """A partial change: a field left out is kept, ``null`` inherits (a
    tenant its partner's, a partner the platform's)."""

    caller_id_policy: str | None = Field(None, description="reject or rewrite")
    allowed_countries: list[str] | None = Field(
        None, max_length=300, description="ISO codes beside the caller ID's own country; * all"
    )
    denied_number_types: list[str] | None = Field(
        None, max_length=20, description="e.g. premium, toll-free, mobile"
    )
    daily_spend_limit: Decimal | None = Field(None, description="Today's outbound spend cap")
    max_concurrent_calls: int | None = Field(None, description="Calls in progress at once")
    allowed_ips: list[str] | None = Field(
        None, max_length=100, description="CIDRs INVITEs must come from"
    )


def _settings_change(body: OutboundSettingsPatch) -> dict[str, Any]:
    return {name: getattr(body, name) for name in body.model_fields_set}


@router.get("/outbound/settings", tags=["settings"], responses=errors(*KEYED))
def get_own_settings(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """The caller's outbound settings: its own (null: inherited) and in effect."""
    with ctx.db.read_session() as session:
        view = outbound_settings.get_settings(session, scope, scope.account_id)
    return {"data": outbound_settings.shown(view)}


@router.patch("/outbound/settings", tags=["settings"], responses=errors(*KEYED))
def patch_own_settings(body: OutboundSettingsPatch, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        view = outbound_settings.change_settings(
            session, scope, scope.account_id, _settings_change(body)
        )
    return {"data": outbound_settings.shown(view)}


@router.get(
    "/tenants/{tenant_id}/outbound/settings", tags=["settings"], responses=errors(*KEYED, 404)
)
def get_tenant_settings(tenant_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        view = outbound_settings.get_settings(session, scope, tenant_id, TENANT)
    return {"data": outbound_settings.shown(view)}


@router.patch(
    "/tenants/{tenant_id}/outbound/settings", tags=["settings"], responses=errors(*KEYED, 404)
)
def patch_tenant_settings(
    tenant_id: str, body: OutboundSettingsPatch, ctx: Ctx, scope: Caller
) -> dict[str, Any]:
    """A partner sets a tenant's outbound guards (its own fall back to the
    partner's)."""
    with ctx.db.session() as session:
        view = outbound_settings.change_settings(
            session, scope, tenant_id, _settings_change(body), TENANT
        )
    return {"data": outbound_settings.shown(view)}


def _rates(ctx: Ctx) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        rows = outbound_rates.list_rates(session)
    return {
        "data": [
            {"prefix": r.prefix, "rate": f"{r.rate:.4f}", "description": r.description}
            for r in rows
        ],
        "meta": {"default_rate": f"{ctx.settings.outbound_default_rate:.4f}"},
    }


@router.get("/outbound/rates", tags=["billing"], responses=errors(*KEYED))
def get_rates(ctx: Ctx, _scope: Caller) -> dict[str, Any]:
    """The platform's outbound rates a minute by destination prefix (the
    longest prefix wins), and the default rate for destinations none covers."""
    return _rates(ctx)


@router.put(
    "/outbound/rates",
    tags=["billing"],
    responses=errors(401, 403, 422),
    dependencies=[Security(edge_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def put_rates(request: Request, ctx: Ctx, _edge: Edge) -> dict[str, Any]:
    """Replace the outbound rate table with a CSV rate deck (columns prefix,
    rate, optional description); the operator's token (``didhub edge token``)."""
    raw = await request.body()
    if len(raw) > 20_000_000:
        raise ValidationFailed("a rate deck is at most 20 MB", field="body")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the CSV must be UTF-8", field="body") from None
    return await run_in_threadpool(_import_rates, ctx, text)


def _import_rates(ctx: Ctx, text: str) -> dict[str, Any]:
    rows = outbound_rates.read_csv(text)
    with ctx.db.session() as session:
        outbound_rates.replace_rates(session, rows)
    return _rates(ctx)


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
    refusal (SIP status and a reason for the Warning header). Usually answered
    by ``routing.endpoints.FastLookups`` ahead of FastAPI (:func:`answer`)."""
    return answer(ctx, body)


class EmergencyPlaced(RequestModel):
    """The edge's word that it checked the caller's digest and is placing a
    911/933 call."""

    username: str = Field(max_length=128, description="The digest username, now verified")
    destination: str = Field(max_length=64, description="911 or 933")
    caller: str | None = Field(None, max_length=64, description="The number in the caller's From")
    call_id: str = Field(min_length=1, max_length=255, description="The INVITE's Call-ID")


@router.post(
    "/routing/outbound/emergency-placed",
    responses=errors(401, 404, 422),
    dependencies=[Security(edge_token)],
    tags=["routing"],
)
def emergency_placed(body: EmergencyPlaced, ctx: Ctx, _edge: Edge) -> dict[str, Any]:
    """A 911/933 call is going out: the ``e911.call_placed`` event and webhook
    (Kari's Law's front-desk notice), once per call id. The edge sends this
    after the digest check, so a lookup alone never sets it off."""
    data = outbound.emergency_placed(
        ctx.db, body.username, body.destination, body.caller, body.call_id
    )
    return {"data": data}


def answer(ctx: Context, body: OutboundLookup) -> dict[str, Any]:
    decision = outbound.lookup(
        ctx.db,
        ctx.settings,
        body.username,
        body.destination,
        body.caller,
        body.source_ip,
        kept=ctx.callers.get,
        kept_funds=ctx.funds.get,
    )
    return _shown(decision)


def kept_answer(ctx: Context, body: OutboundLookup) -> dict[str, Any] | None:
    """The answer from memory alone (no database, no thread), or None: a part
    isn't kept, or it is an emergency call (then :func:`answer`)."""
    decision = outbound.kept_lookup(
        ctx.settings,
        body.username,
        body.destination,
        body.caller,
        body.source_ip,
        ctx.callers.hit,
        ctx.funds.hit,
    )
    return _shown(decision) if decision is not None else None


def _shown(decision: outbound.Decision) -> dict[str, Any]:
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
            "trunk_auth": _trunk_auth(decision.trunks),
            "address": decision.address,
            "max_concurrent_calls": decision.max_concurrent_calls,
        }
    }


def _trunk_auth(trunks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """The digest credentials by the trunk's place in ``trunks`` ("0", "1",
    ...), for the edge's failure route, which reads an object's field but
    can't index a list; a trunk without credentials has no entry."""
    return {
        str(place): {"username": t["auth_username"], "password": t["auth_password"]}
        for place, t in enumerate(trunks)
        if "auth_username" in t
    }


def fast_body(raw: bytes) -> OutboundLookup | None:
    """The request body as the endpoint would take it, or None (the endpoint
    then renders the error)."""
    try:
        return OutboundLookup.model_validate_json(raw)
    except PydanticValidationError:
        return None
