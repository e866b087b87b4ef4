"""Numbers → Port Numbers: each port-in order's status and its next step, a
form for a new draft, its documents (upload, download, the LOA to sign),
submission with a FOC date from the carrier's, and the order's actions. Every
action calls the service the API's route calls."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.errors import DidhubError, ValidationFailed
from didhub.porting import documents, repository
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


@router.post("/numbers/port/{order_id}/documents", response_model=None)
async def upload(request: Request, order_id: str, ctx: Ctx, viewer: Who) -> Response:
    """The same ``add_document`` as ``POST /porting/orders/{id}/documents``.
    The form is read here (not as parameters) so a form without a file is
    this page's message, not a bare 422."""
    form = await request.form()
    kind, file = form.get("kind"), form.get("file")
    try:
        if not isinstance(file, StarletteUpload) or not file.filename:
            raise ValidationFailed("choose a file to upload", field="file")
        content = await file.read(documents.MAX_BYTES + 1)
        doc = await run_in_threadpool(
            porting.add_document,
            ctx.db,
            ctx.settings,
            viewer.scope,
            order_id,
            kind if isinstance(kind, str) else "",
            file.filename,
            content,
            file.content_type or "",
        )
    except DidhubError as exc:
        return _page(
            request,
            ctx,
            viewer,
            status_code=exc.status_code,
            error=f"{error_text(exc)} (order {order_id})",
        )
    label = "signed LOA" if doc.kind == "loa" else "bill"
    session.flash(request, "success", f"Uploaded the {label} {doc.filename} to {order_id}.")
    return go(request, f"{PREFIX}/numbers/port")


@router.get("/numbers/port/{order_id}/documents/{document_id}", response_model=None)
def download(request: Request, order_id: str, document_id: str, ctx: Ctx, viewer: Who) -> Response:
    try:
        doc, content = porting.read_document(
            ctx.db, ctx.settings, viewer.scope, order_id, document_id
        )
    except DidhubError as exc:
        return _page(request, ctx, viewer, status_code=exc.status_code, error=error_text(exc))
    return Response(
        content,
        media_type=doc.content_type,
        headers={"Content-Disposition": f'attachment; filename="{doc.id}"'},
    )


@router.get("/numbers/port/{order_id}/loa.pdf", response_model=None)
def loa(request: Request, order_id: str, ctx: Ctx, viewer: Who) -> Response:
    try:
        pdf = porting.loa_pdf(ctx.db, viewer.scope, order_id)
    except DidhubError as exc:
        return _page(request, ctx, viewer, status_code=exc.status_code, error=error_text(exc))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="loa-{order_id}.pdf"'},
    )


def _submit_page(
    request: Request,
    ctx: Any,
    viewer: session.Viewer,
    order_id: str,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        order = order_shape(db_session, repository.get(db_session, viewer.scope, order_id))
    dates: list[str] = []
    if order["status"] == "draft":  # the carrier is asked only when there is a choice to make
        try:
            dates = porting.foc_dates(ctx.db, ctx.carrier, viewer.scope, order_id)
        except DidhubError as exc:
            error = error or error_text(exc)
    return render(
        request,
        "porting/port_submit.html",
        viewer,
        status_code=status_code,
        order=order,
        dates=dates,
        error=error,
    )


@router.get("/numbers/port/{order_id}/submit", response_class=HTMLResponse)
def submit_page(request: Request, order_id: str, ctx: Ctx, viewer: Who) -> HTMLResponse:
    """The FOC date to ask for, from the carrier's allowed dates."""
    try:
        return _submit_page(request, ctx, viewer, order_id)
    except DidhubError as exc:
        return _page(request, ctx, viewer, status_code=exc.status_code, error=error_text(exc))


@router.post("/numbers/port/{order_id}/submit", response_model=None)
def submit(
    request: Request,
    order_id: str,
    ctx: Ctx,
    viewer: Who,
    foc_date: Annotated[str, Form()] = "",
) -> Response:
    """The same ``submit`` as ``POST /porting/orders/{id}/submit``."""
    try:
        try:
            chosen = date.fromisoformat(foc_date) if foc_date else None
        except ValueError:
            raise ValidationFailed("foc_date must be a date", field="foc_date") from None
        porting.submit(ctx.db, ctx.carrier, ctx.settings, viewer.scope, order_id, chosen)
    except DidhubError as exc:
        try:
            return _submit_page(
                request, ctx, viewer, order_id, status_code=exc.status_code, error=error_text(exc)
            )
        except DidhubError as outer:
            return _page(
                request, ctx, viewer, status_code=outer.status_code, error=error_text(outer)
            )
    session.flash(request, "success", f"Port order {order_id} submitted to the carrier.")
    return go(request, f"{PREFIX}/numbers/port")


@router.post("/numbers/port/{order_id}/{action}", response_model=None)
def act(request: Request, order_id: str, action: str, ctx: Ctx, viewer: Who) -> Response:
    try:
        if action == "refresh":
            with ctx.db.read_session() as db_session:
                repository.get(db_session, viewer.scope, order_id)
            porting.sync_order(ctx.db, ctx.carrier, ctx.settings, order_id, asked=True)
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
