"""Webhooks from carriers (signed by the carrier, not by an API key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from didhub.api.contract import errors
from didhub.api.deps import Ctx
from didhub.carriers import telnyx_webhooks
from didhub.carriers.base import CarrierFailure
from didhub.carriers.schemas import TelnyxOutcomeOut
from didhub.carriers.telnyx_porting import parse_webhook
from didhub.numbers import carrier_webhooks
from didhub.outputs import Data
from didhub.porting import service as porting

router = APIRouter(prefix="/carriers", tags=["carriers"])


@router.post(
    "/telnyx/webhooks",
    response_model=Data[TelnyxOutcomeOut],
    responses=errors(401, 409, 502),
    description="Signed by Telnyx (Ed25519 over timestamp|body, the public key in "
    "DIDHUB_TELNYX_PUBLIC_KEY), not by an API key: a missing, bad or stale signature is a 401.",
)
async def telnyx(
    request: Request,
    ctx: Ctx,
    telnyx_signature_ed25519: Annotated[str | None, Header()] = None,
    telnyx_timestamp: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Telnyx order events: ``number_order.complete`` settles the order at once
    (see docs/carriers.md). Duplicates are acknowledged and change nothing."""
    body = await request.body()
    telnyx_webhooks.verify(ctx.settings, body, telnyx_signature_ed25519, telnyx_timestamp)
    event_type, payload = _porting_event(body)
    if event_type.startswith("porting_order."):
        # Porting orders (docs/porting.md): the carrier is asked about the order.
        ours = await run_in_threadpool(
            porting.on_carrier_event, ctx.db, ctx.carrier, ctx.settings, str(payload.get("id"))
        )
        return {"data": {"event_type": event_type, "order_id": ours, "settled": ours is not None}}
    outcome = await run_in_threadpool(
        carrier_webhooks.handle_telnyx, ctx.db, ctx.carrier, ctx.settings, body
    )
    return {
        "data": {
            "event_type": outcome.event_type,
            "order_id": outcome.order_id,
            "settled": outcome.settled,
        }
    }


def _porting_event(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        return parse_webhook(body)
    except CarrierFailure:
        return "", {}
