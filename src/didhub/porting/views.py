"""Numbers → Port Numbers: each port-in order's status and its next step, a
form for a new draft, and the order's actions. Every action calls the service
the API's route calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.errors import DidhubError
from didhub.porting import repository
from didhub.porting import service as porting
from didhub.porting.schemas import order_shape
from didhub.web import session
from didhub.web.common import PREFIX, Who, error_text, go, make_router, render

router = make_router()


def _page(
    request: Request, ctx: Any, viewer: session.Viewer, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        orders = [order_shape(db_session, o) for o in repository.listed(db_session, viewer.scope)]
        tenants = accounts.list_tenants(db_session, viewer.scope) if viewer.is_partner else []
    return render(
        request,
        "porting/port.html",
        viewer,
        status_code=status_code,
        orders=orders,
        tenants=tenants,
        **extra,
    )


@router.get("/numbers/port", response_class=HTMLResponse)
def port_page(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _page(request, ctx, viewer)


@router.post("/numbers/port", response_model=None)
def create(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    phone_numbers: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
    entity_name: Annotated[str, Form()] = "",
    authorized_person: Annotated[str, Form()] = "",
    account_number: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
    billing_phone_number: Annotated[str, Form()] = "",
) -> Response:
    body: dict[str, Any] = {
        "phone_numbers": [n for n in phone_numbers.replace(",", " ").split() if n],
        "entity_name": entity_name,
        "authorized_person": authorized_person,
        "account_number": account_number,
        "pin": pin or None,
        "billing_phone_number": billing_phone_number,
    }
    if viewer.is_partner:
        body["tenant_id"] = tenant_id
    try:
        order = porting.create(ctx.db, ctx.carrier, ctx.settings, viewer.scope, body)
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, status_code=exc.status_code, error=error_text(exc), form=body
        )
    session.flash(request, "success", f"Port order {order.id} saved as a draft.")
    return go(request, f"{PREFIX}/numbers/port")


@router.post("/numbers/port/{order_id}/{action}", response_model=None)
def act(request: Request, order_id: str, action: str, ctx: Ctx, viewer: Who) -> Response:
    try:
        if action == "refresh":
            with ctx.db.read_session() as db_session:
                repository.get(db_session, viewer.scope, order_id)
            porting.sync_order(ctx.db, ctx.carrier, ctx.settings, order_id)
            text = "Asked the carrier for news."
        elif action == "cancel":
            porting.cancel(ctx.db, ctx.carrier, viewer.scope, order_id)
            text = f"Port order {order_id} cancelled."
        elif action == "resubmit":
            porting.resubmit(ctx.db, ctx.carrier, ctx.settings, viewer.scope, order_id)
            text = f"Port order {order_id} resubmitted."
        else:
            return _page(request, ctx, viewer, status_code=404, error="no such action")
    except DidhubError as exc:
        return _page(request, ctx, viewer, status_code=exc.status_code, error=error_text(exc))
    session.flash(request, "success", text)
    return go(request, f"{PREFIX}/numbers/port")
