"""Billing in the dashboard: a month's invoice as a page to print, and a
number's page with its calls (and their CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from didhub.api.deps import Ctx
from didhub.billing.service import calls as call_records
from didhub.billing.service import invoices
from didhub.errors import DidhubError, ValidationFailed
from didhub.numbers import repository as numbers_repository
from didhub.web.common import (
    Who,
    error_text,
    make_router,
    render,
)

router = make_router()
# A tenant's invoice is plain HTML with its own stylesheet inline.
INVOICE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
CALLS_PAGE = 50


@router.get("/billing/invoices/{month}", response_class=HTMLResponse)
def invoice(ctx: Ctx, viewer: Who, month: str) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        statement = invoices.build(db_session, ctx.settings, viewer.scope.account_id, month)
    return HTMLResponse(
        invoices.render_html(statement), headers={"Content-Security-Policy": INVOICE_CSP}
    )


@dataclass(frozen=True)
class _Form:
    direction: str | None
    start: str | None
    end: str | None

    def filters(self, number_id: str) -> call_records.CallFilter:
        return call_records.CallFilter(
            number_id, self.direction, _day(self.start, "from"), _day(self.end, "to")
        )


def _day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date like 2026-01-31", field=field) from None


def _form(request: Request) -> _Form:
    q = request.query_params
    return _Form(q.get("direction") or None, q.get("from") or None, q.get("to") or None)


@router.get("/numbers/{number_id}/calls", response_class=HTMLResponse)
def number_calls(request: Request, ctx: Ctx, viewer: Who, number_id: str) -> HTMLResponse:
    """A number's page: what it is, and its calls, newest first."""
    form = _form(request)
    cursor = request.query_params.get("cursor") or None
    error = None
    with ctx.db.read_session() as session:
        number = numbers_repository.get(session, viewer.scope, number_id)
        try:
            page = call_records.list_calls(
                session, viewer.scope, form.filters(number.id), CALLS_PAGE, cursor
            )
        except DidhubError as exc:
            error, page = error_text(exc), call_records.CallPage([], None)
    return render(
        request,
        "billing/number_calls.html",
        viewer,
        number=number,
        calls=[call.shown() for call in page.data],
        next_cursor=page.next_cursor,
        cursor=cursor,
        f=form,
        error=error,
    )


@router.get("/numbers/{number_id}/calls.csv", response_class=StreamingResponse)
def number_calls_csv(request: Request, ctx: Ctx, viewer: Who, number_id: str) -> StreamingResponse:
    with ctx.db.read_session() as session:
        number = numbers_repository.get(session, viewer.scope, number_id)
    lines = call_records.export_csv(ctx.db, viewer.scope, _form(request).filters(number.id))
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="calls-{number.e164}.csv"'},
    )
