"""Billing's API: call records from the edge, retail prices, the margin report
and invoices (under /billing)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import HTMLResponse, StreamingResponse

from didhub import outputs
from didhub.api.contract import KEYED, edge_token, errors
from didhub.api.deps import Caller, Ctx, Edge
from didhub.billing.models import RetailPrice
from didhub.billing.schemas import (
    CallList,
    InvoiceOut,
    InvoiceSummaryOut,
    MarginLineOut,
    RetailPriceOut,
    RetailPriceRequest,
    UsageReportOut,
    UsageRequest,
)
from didhub.billing.service import calls as call_records
from didhub.billing.service import invoices
from didhub.billing.service import resale as resales
from didhub.billing.service import usage as usages
from didhub.outputs import Data

router = APIRouter(prefix="/billing", tags=["billing"])


@router.post(
    "/usage",
    response_model=Data[UsageReportOut],
    responses=errors(*KEYED, 403),
    dependencies=[Security(edge_token)],
)
def usage(body: UsageRequest, ctx: Ctx, _edge: Edge) -> dict[str, Any]:
    """Call records from the SIP edge: rated, de-duplicated by call_id, posted."""
    report = usages.record(
        ctx.db,
        ctx.settings,
        [
            usages.CallRecord(
                r.phone_number,
                r.direction,
                r.started_at,
                r.duration_seconds,
                r.call_id,
                r.destination,
            )
            for r in body.records
        ],
    )
    return {
        "data": {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "charged": outputs.money(report.charged),
        }
    }


def _retail(price: RetailPrice) -> dict[str, Any]:
    return {
        "tenant_id": None if price.applies_to == resales.DEFAULT else price.applies_to,
        "phone_number_type": price.phone_number_type,
        "monthly": outputs.money(price.monthly),
        "setup": outputs.money(price.setup),
        "per_minute_inbound": f"{price.per_minute_inbound:.4f}",
        "per_minute_outbound": f"{price.per_minute_outbound:.4f}",
        "outbound_markup_percent": f"{price.outbound_markup_percent:.2f}",
    }


@router.put(
    "/retail-prices", response_model=Data[RetailPriceOut], responses=errors(*KEYED, 403, 404)
)
def put_retail_price(body: RetailPriceRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        price = resales.set_retail_price(
            session,
            scope,
            body.tenant_id,
            body.phone_number_type,
            body.monthly,
            body.setup,
            body.per_minute_inbound,
            body.per_minute_outbound,
            body.outbound_markup_percent,
        )
        return {"data": _retail(price)}


@router.get("/retail-prices", response_model=Data[list[RetailPriceOut]], responses=errors(*KEYED))
def get_retail_prices(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": [_retail(p) for p in resales.retail_prices(session, scope)]}


@router.get("/margin", response_model=Data[list[MarginLineOut]], responses=errors(*KEYED, 403))
def margin(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Retail − wholesale by tenant and month."""
    with ctx.db.read_session() as session:
        lines = resales.margin_report(session, scope)
    return {
        "data": [
            {
                "tenant_id": line.tenant_id,
                "tenant_name": line.tenant_name,
                "month": line.month,
                "retail": outputs.money(line.retail),
                "wholesale": outputs.money(line.wholesale),
                "margin": outputs.money(line.margin),
                "currency": ctx.settings.currency,
            }
            for line in lines
        ]
    }


def _invoice(inv: invoices.Invoice) -> dict[str, Any]:
    return {
        "account_id": inv.account_id,
        "month": inv.month,
        "currency": inv.currency,
        "opening_balance": outputs.money(inv.opening_balance),
        "credits": outputs.money(inv.credits),
        "charges": outputs.money(inv.charges),
        "closing_balance": outputs.money(inv.closing_balance),
        "tax": (
            {
                "name": inv.tax_name,
                "rate": str(inv.tax_rate),
                "included": outputs.money(inv.tax_included),
            }
            if inv.tax_name
            else None
        ),
        "lines": [
            {
                "date": line.day.isoformat(),
                "kind": line.kind,
                "description": line.description,
                "phone_number": line.phone_number,
                "period_start": outputs.when(line.period_start),
                "period_end": outputs.when(line.period_end),
                "minutes": line.minutes,
                "amount": outputs.money(line.amount),
            }
            for line in inv.lines
        ],
    }


@router.get("/invoices", response_model=Data[list[InvoiceSummaryOut]], responses=errors(*KEYED))
def list_invoices(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        found = [
            invoices.build(session, ctx.settings, scope.account_id, month)
            for month in invoices.months(session, scope.account_id, ctx.settings.currency)
        ]
    return {"data": [{k: v for k, v in _invoice(i).items() if k != "lines"} for i in found]}


@router.get(
    "/invoices/{month}",
    response_model=Data[InvoiceOut],
    responses={
        **errors(*KEYED, 404),
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The invoice; as a page with ?format=html",
        },
    },
)
def get_invoice(
    month: str,
    ctx: Ctx,
    scope: Caller,
    format: Literal["json", "html"] = Query("json"),
) -> dict[str, Any] | HTMLResponse:
    with ctx.db.read_session() as session:
        inv = invoices.build(session, ctx.settings, scope.account_id, month)
    if format == "html":
        return HTMLResponse(invoices.render_html(inv))
    return {"data": _invoice(inv)}


# ------------------------------------------------------------------ call records

_CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "With `Accept: text/csv`: every matching call as CSV (no pages)",
    }
}


def _filters(
    number: str | None = Query(None, description="an E.164 number or a number id"),
    direction: Literal["inbound", "outbound"] | None = None,
    start: Annotated[
        str | None,
        Query(alias="from", description="calls that started at or after (a date: that day on)"),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="calls that started before (a date: through that day)"),
    ] = None,
) -> call_records.CallFilter:
    return call_records.CallFilter(
        number,
        direction,
        call_records.moment(start, "from"),
        call_records.moment(end, "to"),
    )


Filters = Annotated[call_records.CallFilter, Depends(_filters)]


def _csv(ctx: Ctx, scope: Caller, filters: call_records.CallFilter) -> StreamingResponse:
    lines = call_records.export_csv(ctx.db, scope, filters)
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.get("/calls", response_model=CallList, responses={**errors(*KEYED, 404), **_CSV})
def list_calls(
    request: Request,
    ctx: Ctx,
    scope: Caller,
    filters: Filters,
    limit: int = Query(50, ge=1, le=call_records.MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any] | StreamingResponse:
    """Rated calls, newest first, a page at a time (``meta.next_cursor``)."""
    if "text/csv" in request.headers.get("accept", ""):
        return _csv(ctx, scope, filters)
    with ctx.db.read_session() as session:
        page = call_records.list_calls(session, scope, filters, limit, cursor)
    data = [call.shown() for call in page.data]
    return {"data": data, "meta": {"next_cursor": page.next_cursor, "count": len(data)}}


@router.get(
    "/calls.csv",
    response_class=StreamingResponse,
    # Documented as GET /billing/calls with `Accept: text/csv` (the same answer).
    include_in_schema=False,
)
def export_calls(
    ctx: Ctx,
    scope: Caller,
    filters: Filters,
) -> StreamingResponse:
    """Every matching call as CSV."""
    return _csv(ctx, scope, filters)
