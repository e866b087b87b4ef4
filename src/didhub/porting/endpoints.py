"""Porting endpoints: port-in orders, their documents and LOA, FOC dates,
submission, correction, cancellation; an account's port-out PIN."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx
from didhub.outputs import Data
from didhub.porting import repository
from didhub.porting import service as porting
from didhub.porting.schemas import (
    CheckRequest,
    CreateRequest,
    DocumentOut,
    FocDatesOut,
    OrderFields,
    PinOut,
    PinRequest,
    PortabilityOut,
    PortOrderOut,
    SubmitRequest,
    order_shape,
    portability_shape,
)

router = APIRouter(prefix="/porting", tags=["porting"])

# A document's bytes (its own type: PDF, PNG or JPEG), not a JSON body.
_FILE: dict[str, Any] = {
    "description": "The file",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}


def _order(ctx: Any, scope: Any, order_id: str) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": order_shape(session, repository.get(session, scope, order_id))}


@router.post(
    "/portability", response_model=Data[list[PortabilityOut]], responses=errors(*KEYED, 502)
)
def check(body: CheckRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Whether each number can be ported in (and why not), and fast-port eligibility."""
    return {"data": [portability_shape(p) for p in porting.check(ctx.carrier, body.phone_numbers)]}


@router.post(
    "/orders",
    status_code=201,
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 404, 409, 502),
)
def create(body: CreateRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    order = porting.create(
        ctx.db, ctx.carrier, ctx.settings, scope, body.model_dump(exclude_unset=True)
    )
    return _order(ctx, scope, order.id)


@router.get("/orders", response_model=Data[list[PortOrderOut]], responses=errors(*KEYED))
def list_orders(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": [order_shape(session, o) for o in repository.listed(session, scope)]}


@router.get("/orders/{order_id}", response_model=Data[PortOrderOut], responses=errors(*KEYED, 404))
def get_order(order_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    return _order(ctx, scope, order_id)


@router.patch(
    "/orders/{order_id}",
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 404, 409),
    description="Change a draft; on an order in exception this is the correction "
    "(status corrected), resubmitted with POST …/resubmit.",
)
def update(order_id: str, body: OrderFields, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    porting.update(ctx.db, scope, order_id, body.model_dump(exclude_unset=True))
    return _order(ctx, scope, order_id)


@router.post(
    "/orders/{order_id}/documents",
    status_code=201,
    response_model=Data[DocumentOut],
    responses=errors(*KEYED, 404, 409, 503),
    description="kind: loa (the signed letter of authorization) or bill (a recent bill).",
)
async def upload(
    order_id: str,
    ctx: Ctx,
    scope: Caller,
    kind: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    content = await file.read()
    from starlette.concurrency import run_in_threadpool

    doc = await run_in_threadpool(
        porting.add_document,
        ctx.db,
        ctx.settings,
        scope,
        order_id,
        kind,
        file.filename or "",
        content,
        file.content_type or "",
    )
    return {
        "data": {
            "id": doc.id,
            "kind": doc.kind,
            "filename": doc.filename,
            "content_type": doc.content_type,
            "size": doc.size,
            "signed": doc.signed,
            "created_at": doc.created_at.isoformat(),
        }
    }


@router.get(
    "/orders/{order_id}/documents/{document_id}",
    response_class=Response,
    responses={200: _FILE, **errors(*KEYED, 404, 503)},
)
def download(order_id: str, document_id: str, ctx: Ctx, scope: Caller) -> Response:
    doc, content = porting.read_document(ctx.db, ctx.settings, scope, order_id, document_id)
    return Response(
        content,
        media_type=doc.content_type,
        headers={"Content-Disposition": f'attachment; filename="{doc.id}"'},
    )


@router.get(
    "/orders/{order_id}/loa.pdf",
    response_class=Response,
    responses={200: _FILE, **errors(*KEYED, 404)},
    description="The letter of authorization filled from the order, to sign and upload.",
)
def loa(order_id: str, ctx: Ctx, scope: Caller) -> Response:
    return Response(porting.loa_pdf(ctx.db, scope, order_id), media_type="application/pdf")


@router.get(
    "/orders/{order_id}/foc-dates",
    response_model=Data[FocDatesOut],
    responses=errors(*KEYED, 404, 502),
)
def foc_dates(order_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    return {"data": {"foc_dates": porting.foc_dates(ctx.db, ctx.carrier, scope, order_id)}}


@router.post(
    "/orders/{order_id}/submit",
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 402, 404, 409, 502, 503),
)
def submit(order_id: str, body: SubmitRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    porting.submit(ctx.db, ctx.carrier, ctx.settings, scope, order_id, body.foc_date)
    return _order(ctx, scope, order_id)


@router.post(
    "/orders/{order_id}/resubmit",
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 402, 404, 409, 502, 503),
)
def resubmit(order_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    porting.resubmit(ctx.db, ctx.carrier, ctx.settings, scope, order_id)
    return _order(ctx, scope, order_id)


@router.post(
    "/orders/{order_id}/refresh",
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 404, 502),
    description="Ask the carrier now (the porting.sync job does it every sweep).",
)
def refresh(order_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    _order(ctx, scope, order_id)  # 404 outside the scope
    porting.sync_order(ctx.db, ctx.carrier, ctx.settings, order_id, asked=True)
    return _order(ctx, scope, order_id)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=Data[PortOrderOut],
    responses=errors(*KEYED, 404, 409, 502),
)
def cancel(order_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    porting.cancel(ctx.db, ctx.carrier, scope, order_id)
    return _order(ctx, scope, order_id)


@router.put("/port-out-pin", response_model=Data[PinOut], responses=errors(*KEYED))
def port_out_pin(body: PinRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """The account's port-out PIN, set on each of its numbers whose carrier supports one."""
    result = porting.set_pin(ctx.db, ctx.carrier, scope, body.pin)
    return {"data": {"set_on": result.set_on, "refused": result.refused}}
