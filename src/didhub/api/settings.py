"""Account settings: ``/settings`` (the caller's own account) and
``/tenants/{id}/settings`` (a partner for one of its tenants)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from didhub.accounts import schemas as account_schemas
from didhub.accounts import settings as account_settings
from didhub.accounts.schemas import SettingsAnswer, SettingsPatch
from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx
from didhub.numbers import cnam
from didhub.numbers.cnam import CACHE_NOTICE
from didhub.tenancy import TENANT

router = APIRouter(tags=["settings"])


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


@router.get(
    "/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED),
)
def get_own_settings(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        view = account_settings.get_settings(session, ctx.settings, scope, scope.account_id)
    return {"data": account_schemas.account_settings(view)}


@router.patch(
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


@router.get(
    "/tenants/{tenant_id}/settings",
    response_model=SettingsAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 403, 404),
)
def get_tenant_settings(tenant_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        view = account_settings.get_settings(session, ctx.settings, scope, tenant_id, TENANT)
    return {"data": account_schemas.account_settings(view)}


@router.patch(
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
