"""Numbers managed in bulk and from Settings: bulk assignment to one tenant
(the DID Inventory's "Assign selected") and Settings → Phone Numbers (the
agent-platform guide's place to release a number). Each action is one service
call, as in the API (``POST /telephony/numbers/assign-tenant``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from didhub.accounts.models import Account
from didhub.api.deps import Ctx
from didhub.billing.service import assignments
from didhub.errors import DidhubError
from didhub.numbers import schemas as number_schemas
from didhub.numbers import service as numbers
from didhub.web import session
from didhub.web.common import PREFIX, Who, error_text, go, home_url, make_router, render, safe_next

router = make_router()

SETTINGS_PAGE = 100


@router.post("/numbers/assign-many", response_model=None)
def assign_many(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_ids: Annotated[list[str] | None, Form()] = None,
    tenant_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    back = safe_next(next, home_url(viewer))
    try:
        changed = assignments.assign_tenant_many(
            ctx.db, ctx.carrier, ctx.settings, viewer.scope, number_ids or [], tenant_id or None
        )
    except DidhubError as exc:
        session.flash(request, "error", f"Nothing was assigned: {error_text(exc)}")
        return go(request, back)
    count = f"{len(changed)} number{'s' if len(changed) != 1 else ''}"
    with ctx.db.read_session() as db_session:
        tenant = db_session.get(Account, tenant_id) if tenant_id else None
    if tenant is None:
        session.flash(request, "success", f"{count} Unassigned again.")
    else:
        session.flash(request, "success", f"{count} now assigned to {tenant.name}.")
    return go(request, back)


@router.get("/settings/numbers", response_class=HTMLResponse)
def settings_numbers(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    """Settings → Phone Numbers: the account's live numbers, each releasable."""
    with ctx.db.read_session() as db_session:
        page = numbers.list_numbers(
            db_session, viewer.scope, numbers.InventoryFilter(), SETTINGS_PAGE, None
        )
        rows = number_schemas.phone_numbers(db_session, page.data)
    for row, number in zip(rows, page.data, strict=True):
        row["owned"] = viewer.is_partner or number.owner_id == viewer.scope.account_id
    return render(
        request,
        "numbers/settings_numbers.html",
        viewer,
        rows=rows,
        more=page.next_cursor is not None,
        here=f"{PREFIX}/settings/numbers",
    )
