"""Billing in the dashboard: a month's invoice as a page to print."""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from didhub.api.deps import Ctx
from didhub.billing.service import invoices
from didhub.web.common import (
    Who,
    make_router,
)

router = make_router()
# A tenant's invoice is plain HTML with its own stylesheet inline.
INVOICE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@router.get("/billing/invoices/{month}", response_class=HTMLResponse)
def invoice(ctx: Ctx, viewer: Who, month: str) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        statement = invoices.build(db_session, ctx.settings, viewer.scope.account_id, month)
    return HTMLResponse(
        invoices.render_html(statement), headers={"Content-Security-Policy": INVOICE_CSP}
    )
