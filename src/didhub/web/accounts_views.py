"""Tenants (a partner's customers) and agents (what numbers point at)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.errors import DidhubError
from didhub.numbers import service as numbers
from didhub.web import session
from didhub.web.common import PREFIX, Who, error_text, go, make_router, render

router = make_router()


def _tenants_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: object
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        tenants = accounts.list_tenants(db_session, viewer.scope)
        counts = numbers.count_by_tenant(db_session, viewer.scope)
    return render(
        request,
        "tenants.html",
        viewer,
        status_code=status_code,
        tenants=tenants,
        counts=counts,
        **extra,
    )


@router.get("/tenants", response_model=None)
def tenants(request: Request, ctx: Ctx, viewer: Who) -> Response:
    if not viewer.is_partner:
        return go(request, f"{PREFIX}/dids")
    return _tenants_page(request, ctx, viewer)


@router.post("/tenants", response_model=None)
def create_tenant(
    request: Request, ctx: Ctx, viewer: Who, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        with ctx.db.session() as db_session:
            tenant = accounts.create_tenant_for(
                db_session, viewer.scope, name, ctx.settings.currency
            )
    except DidhubError as exc:
        return _tenants_page(
            request, ctx, viewer, exc.status_code, error=error_text(exc), name=name
        )
    session.flash(request, "success", f"Tenant {tenant.name} created.")
    return go(request, f"{PREFIX}/tenants")


def _agents_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: object
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        agents = accounts.list_agents(db_session, viewer.scope)
        tenants = accounts.list_tenants(db_session, viewer.scope)
    names = {t.id: t.name for t in tenants}
    return render(
        request,
        "agents.html",
        viewer,
        status_code=status_code,
        agents=agents,
        tenants=tenants,
        names=names,
        **extra,
    )


@router.get("/agents", response_class=HTMLResponse)
def agents(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _agents_page(request, ctx, viewer)


@router.post("/agents", response_model=None)
def create_agent(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    name: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
) -> Response:
    # A tenant's agents are its own: in a tenant's view there is no choice.
    tenant = tenant_id if viewer.is_partner else viewer.scope.account_id
    try:
        with ctx.db.session() as db_session:
            agent = accounts.create_agent(db_session, viewer.scope, tenant, name)
    except DidhubError as exc:
        return _agents_page(
            request,
            ctx,
            viewer,
            exc.status_code,
            error=error_text(exc),
            name=name,
            chosen=tenant_id,
        )
    session.flash(request, "success", f"Agent {agent.name} created.")
    return go(request, f"{PREFIX}/agents")
