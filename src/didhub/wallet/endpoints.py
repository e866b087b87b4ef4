"""The wallet's API: the balance, the card on file, top-ups, auto-recharge,
the movements and the billing events (under /billing)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from didhub import outputs
from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx, IdempotencyKey
from didhub.billing.service import renewals
from didhub.errors import NotFound
from didhub.idempotency import run_once
from didhub.inputs import MAX_INT
from didhub.outputs import Data
from didhub.wallet import repository as billing
from didhub.wallet import service as wallets
from didhub.wallet.models import BillingProfile, PaymentCard
from didhub.wallet.schemas import (
    AutoRechargeOut,
    AutoRechargeRequest,
    BillingEventOut,
    CardOut,
    CardRequest,
    TopupOut,
    TopupRequest,
    TransactionsAnswer,
    WalletOut,
)

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
