from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Query, Security
from fastapi.responses import HTMLResponse, JSONResponse

from didhub import outputs
from didhub.api.contract import KEYED, edge_token, errors
from didhub.api.deps import Caller, Ctx, Edge, IdempotencyKey
from didhub.billing import invoices, renewals
from didhub.billing import resale as resales
from didhub.billing import usage as usages
from didhub.billing.models import RetailPrice
from didhub.billing.schemas import (
    AutoRechargeOut,
    AutoRechargeRequest,
    BillingEventOut,
    CardOut,
    CardRequest,
    InvoiceOut,
    InvoiceSummaryOut,
    MarginLineOut,
    RetailPriceOut,
    RetailPriceRequest,
    TopupOut,
    TopupRequest,
    TransactionsAnswer,
    UsageReportOut,
    UsageRequest,
    WalletOut,
)
from didhub.errors import NotFound
from didhub.idempotency import run_once
from didhub.inputs import MAX_INT
from didhub.outputs import Data
from didhub.wallet import repository as billing
from didhub.wallet import service as wallets
from didhub.wallet.models import BillingProfile, PaymentCard

router = APIRouter(prefix="/billing", tags=["billing"])


def _card(card: PaymentCard | None) -> dict[str, Any] | None:
    if card is None:
        return None
    return {
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "gateway": card.gateway,
    }


def _auto(profile: BillingProfile | None) -> dict[str, Any]:
    return {
        "enabled": bool(profile and profile.auto_recharge_enabled),
        "threshold": outputs.money(profile.auto_recharge_threshold if profile else Decimal(0)),
        "amount": outputs.money(profile.auto_recharge_amount if profile else Decimal(0)),
    }


@router.get("/wallet", response_model=Data[WalletOut], responses=errors(*KEYED))
def wallet(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        summary = billing.wallet_summary(session, scope.account_id, ctx.settings.currency)
    profile = summary.profile
    return {
        "data": {
            "balance": outputs.money(summary.balance),
            "currency": summary.currency,
            "standing": summary.standing,
            "past_due_since": outputs.when(profile.past_due_since if profile else None),
            "suspended_since": outputs.when(profile.suspended_since if profile else None),
            "auto_recharge": _auto(profile),
            "card": _card(summary.card),
        }
    }


@router.post(
    "/wallet/topup", response_model=Data[TopupOut], responses=errors(*KEYED, 402, 409, 502)
)
def topup(
    body: TopupRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    def work() -> tuple[int, Any]:
        done = renewals.topup(
            ctx.db, ctx.gateway, ctx.settings, scope.account_id, body.amount, idempotency_key
        )
        return 200, {
            "data": {
                "charge_id": done.charge.charge_id,
                "status": done.charge.status,
                "amount": outputs.money(done.charge.amount),
                "balance": outputs.money(done.balance),
                "renewals_paid": done.renewals_paid,
                "currency": ctx.settings.currency,
            }
        }

    status, answer = run_once(
        ctx.db, scope.account_id, idempotency_key, "topup", body.model_dump(mode="json"), work
    )
    return JSONResponse(answer, status_code=status)


@router.get("/card", response_model=Data[CardOut], responses=errors(*KEYED, 404))
def get_card(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        card = session.get(PaymentCard, scope.account_id)
        if card is None:
            raise NotFound("there is no card on file", field="card")
        return {"data": _card(card)}


@router.put("/card", response_model=Data[CardOut], responses=errors(*KEYED, 402, 502))
def put_card(body: CardRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    card = wallets.set_card(ctx.db, ctx.gateway, scope.account_id, body.card_token)
    return {"data": _card(card)}


@router.delete("/card", response_model=Data[None], responses=errors(*KEYED))
def delete_card(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        wallets.remove_card(session, scope.account_id)
    return {"data": None}


@router.put("/auto-recharge", response_model=Data[AutoRechargeOut], responses=errors(*KEYED))
def put_auto_recharge(body: AutoRechargeRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        profile = wallets.set_auto_recharge(
            session, scope.account_id, body.enabled, body.threshold, body.amount
        )
        return {"data": _auto(profile)}


@router.get("/events", response_model=Data[list[BillingEventOut]], responses=errors(*KEYED))
def events(ctx: Ctx, scope: Caller, limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        rows = billing.events(session, scope.account_id, limit)
        return {
            "data": [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "message": e.message,
                    "data": e.data,
                    "created_at": outputs.when(e.created_at),
                }
                for e in rows
            ]
        }


@router.get("/transactions", response_model=TransactionsAnswer, responses=errors(*KEYED))
def transactions(
    ctx: Ctx,
    scope: Caller,
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=1, le=MAX_INT, description="entry id: lines older than it"),
) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        lines = billing.transactions(session, scope, ctx.settings.currency, limit + 1, before)
    page = lines[:limit]
    return {
        "data": [
            {
                "id": line.entry_id,
                "transaction_id": line.transaction_id,
                "kind": line.kind,
                "description": line.description,
                "reference": line.reference,
                "amount": outputs.money(line.amount),
                "currency": ctx.settings.currency,
                "created_at": outputs.when(line.created_at),
            }
            for line in page
        ],
        "meta": {"next_before": page[-1].entry_id if len(lines) > limit else None},
    }


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
                r.phone_number, r.direction, r.started_at, r.duration_seconds, r.call_id
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
