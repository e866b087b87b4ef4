from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from didhub.accounts import schemas as account_schemas
from didhub.accounts import service as accounts
from didhub.accounts.schemas import AccountOut, AgentCreate, AgentOut, AgentUpdate, TenantCreate
from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx
from didhub.outputs import Data

router = APIRouter(tags=["accounts"])


@router.post(
    "/tenants", status_code=201, response_model=Data[AccountOut], responses=errors(*KEYED, 403)
)
def create_tenant(body: TenantCreate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        tenant = accounts.create_tenant_for(session, scope, body.name, ctx.settings.currency)
        return {"data": account_schemas.account(tenant)}


@router.get("/tenants", response_model=Data[list[AccountOut]], responses=errors(*KEYED))
def list_tenants(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": [account_schemas.account(t) for t in accounts.list_tenants(session, scope)]}


@router.post(
    "/agents", status_code=201, response_model=Data[AgentOut], responses=errors(*KEYED, 404)
)
def create_agent(body: AgentCreate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        agent = accounts.create_agent(session, scope, body.tenant_id, body.name, body.sip_uri)
        return {"data": account_schemas.agent(agent)}


@router.patch("/agents/{agent_id}", response_model=Data[AgentOut], responses=errors(*KEYED, 404))
def update_agent(agent_id: str, body: AgentUpdate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Rename an agent or change where its calls go (``"sip_uri": null`` clears it)."""
    changes = body.model_dump(exclude_unset=True)
    with ctx.db.session() as session:
        agent = accounts.update_agent(session, scope, agent_id, **changes)
        return {"data": account_schemas.agent(agent)}


@router.get("/agents", response_model=Data[list[AgentOut]], responses=errors(*KEYED, 404))
def list_agents(ctx: Ctx, scope: Caller, tenant_id: str | None = Query(None)) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        agents = accounts.list_agents(session, scope, tenant_id)
        return {"data": [account_schemas.agent(a) for a in agents]}
