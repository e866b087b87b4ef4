from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from didhub.api import presenters
from didhub.api.deps import Caller, Ctx
from didhub.billing import ledger
from didhub.billing import service as billing

router = APIRouter(prefix="/billing", tags=["billing"])


@router.get("/wallet")
def wallet(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    currency = ctx.settings.currency
    with ctx.db.session() as session:
        balance = ledger.wallet_balance(session, scope.account_id, currency)
    return {"data": {"balance": presenters.money(balance), "currency": currency}}


@router.get("/transactions")
def transactions(
    ctx: Ctx,
    scope: Caller,
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=1, description="entry id: lines older than it"),
) -> dict[str, Any]:
    with ctx.db.session() as session:
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
                "amount": presenters.money(line.amount),
                "currency": ctx.settings.currency,
                "created_at": presenters.when(line.created_at),
            }
            for line in page
        ],
        "meta": {"next_before": page[-1].entry_id if len(lines) > limit else None},
    }
