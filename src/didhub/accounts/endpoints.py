"""Accounts' API: tenants and agents, and account settings (default CNAM,
unassigned numbers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from didhub.accounts import schemas as account_schemas
from didhub.accounts import service as accounts
from didhub.accounts import settings as account_settings
from didhub.accounts.schemas import (
    AccountOut,
    AgentCreate,
    AgentOut,
    AgentUpdate,
    SettingsAnswer,
    SettingsPatch,
    TenantCreate,
)
from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx
from didhub.numbers import cnam
from didhub.numbers.cnam import CACHE_NOTICE
from didhub.outputs import Data
from didhub.tenancy import TENANT

accounts_router = APIRouter(tags=["accounts"])


@accounts_router.post(
    "/tenants", status_code=201, response_model=Data[AccountOut], responses=errors(*KEYED, 403)
)
def create_tenant(body: TenantCreate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        tenant = accounts.create_tenant_for(session, scope, body.name, ctx.settings.currency)
        return {"data": account_schemas.account(tenant)}


@accounts_router.get("/tenants", response_model=Data[list[AccountOut]], responses=errors(*KEYED))
def list_tenants(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": [account_schemas.account(t) for t in accounts.list_tenants(session, scope)]}


@accounts_router.post(
    "/agents", status_code=201, response_model=Data[AgentOut], responses=errors(*KEYED, 404)
)
def create_agent(body: AgentCreate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        agent = accounts.create_agent(session, scope, body.tenant_id, body.name, body.sip_uri)
        return {"data": account_schemas.agent(agent)}


@accounts_router.patch(
    "/agents/{agent_id}", response_model=Data[AgentOut], responses=errors(*KEYED, 404)
)
def update_agent(agent_id: str, body: AgentUpdate, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Rename an agent or change where its calls go (``"sip_uri": null`` clears it)."""
    changes = body.model_dump(exclude_unset=True)
    with ctx.db.session() as session:
        agent = accounts.update_agent(session, scope, agent_id, **changes)
        return {"data": account_schemas.agent(agent)}


@accounts_router.get("/agents", response_model=Data[list[AgentOut]], responses=errors(*KEYED, 404))
def list_agents(ctx: Ctx, scope: Caller, tenant_id: str | None = Query(None)) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        agents = accounts.list_agents(session, scope, tenant_id)
        return {"data": [account_schemas.agent(a) for a in agents]}


settings_router = APIRouter(tags=["settings"])


def _change(body: SettingsPatch) -> account_settings.SettingsChange:
    fields = body.model_fields_set
    unassigned: Any = account_settings.UNCHANGED
    if "unassigned" in fields:
        u = body.unassigned
        unassigned = (
            account_settings.UnassignedBehaviour(u.action, u.text, u.mailbox, u.destination)
            if u is not None
            else None
        )
    return account_settings.SettingsChange(
        default_cnam=body.default_cnam if "default_cnam" in fields else account_settings.UNCHANGED,
        unassigned=unassigned,
    )


def _answer(view: account_settings.AccountSettingsView, body: SettingsPatch) -> dict[str, Any]:
    answer: dict[str, Any] = {"data": account_schemas.account_settings(view)}
    if "default_cnam" in body.model_fields_set:
        answer["meta"] = {"notice": CACHE_NOTICE}
    return answer


@settings_router.get(
    "/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED),
)
def get_own_settings(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        view = account_settings.get_settings(session, ctx.settings, scope, scope.account_id)
    return {"data": account_schemas.account_settings(view)}


@settings_router.patch(
    "/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 502),
)
def patch_own_settings(body: SettingsPatch, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    view = cnam.change_settings(
        ctx.db, ctx.carrier, ctx.settings, scope, scope.account_id, _change(body)
    )
    return _answer(view, body)


@settings_router.get(
    "/tenants/{tenant_id}/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 403, 404),
)
def get_tenant_settings(tenant_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        view = account_settings.get_settings(session, ctx.settings, scope, tenant_id, TENANT)
    return {"data": account_schemas.account_settings(view)}


@settings_router.patch(
    "/tenants/{tenant_id}/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 403, 404, 502),
)
def patch_tenant_settings(
    tenant_id: str, body: SettingsPatch, ctx: Ctx, scope: Caller
) -> dict[str, Any]:
    view = cnam.change_settings(
        ctx.db, ctx.carrier, ctx.settings, scope, tenant_id, _change(body), TENANT
    )
    return _answer(view, body)


router = APIRouter()
router.include_router(accounts_router)
router.include_router(settings_router)
