"""The Edit DID modal (caller name and E911 address), its E911 actions, and the
inventory's CNAM and E911 columns. Every action calls the service the API's
route calls (``numbers.cnam``, ``e911.service``); nothing here stores anything
of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub.accounts import settings as account_settings
from didhub.accounts.models import Account
from didhub.api.deps import Context, Ctx
from didhub.e911 import service as e911
from didhub.e911.models import E911Address, NumberE911
from didhub.errors import DidhubError
from didhub.numbers import cnam
from didhub.numbers import schemas as number_schemas
from didhub.numbers import service as numbers
from didhub.tenancy import Scope
from didhub.web import session
from didhub.web.common import (
    PREFIX,
    Who,
    error_text,
    field_errors,
    go,
    home_url,
    make_router,
    phone,
    render,
    safe_next,
)

router = make_router()


# The inventory's and the modal's words for a source and a status.
CNAM_SOURCES = {
    "number": "set on the number",
    "tenant": "tenant's default",
    "partner": "partner's default",
    "none": "no name",
}


def address_line(address: E911Address | dict[str, Any]) -> str:
    """An address (or a carrier's suggestion) on one line."""
    get = address.get if isinstance(address, dict) else lambda name: getattr(address, name)
    street = " ".join(p for p in (get("street"), get("unit")) if p)
    return f"{street}, {get('city')}, {get('state')} {get('postal_code')}"


@dataclass(frozen=True)
class DidFeatures:
    """What the inventory shows of a number's CNAM and E911."""

    cnam: str | None
    cnam_source: str  # number | tenant | partner | none
    cnam_status: str | None  # pending | active | failed; None: never listed
    cnam_reason: str | None
    e911: str | None  # the address on one line; None: no address
    e911_status: str | None  # pending | provisioned | failed; None: no address
    e911_reason: str | None


def did_features(
    session: Session,
    rows: Sequence[dict[str, Any]],
    states: Mapping[str, tuple[NumberE911, E911Address]] | None = None,
) -> dict[str, DidFeatures]:
    """CNAM and E911 of a page of numbers shaped by ``number_schemas.phone_numbers``
    (whose ``cnam`` comes from ``cnam.describe``), plus their E911 states and
    addresses (``states``, else one query for the page)."""
    if states is None:
        states = e911.number_states(session, [r["id"] for r in rows])
    out = {}
    for row in rows:
        view = row["cnam"]
        state = states.get(row["id"])
        out[row["id"]] = DidFeatures(
            cnam=view["name"],
            cnam_source=view["source"],
            cnam_status=view["status"],
            cnam_reason=view["reason"],
            e911=address_line(state[1]) if state else None,
            e911_status=state[0].status if state else None,
            e911_reason=state[0].reason if state else None,
        )
    return out


@dataclass
class DidForm:
    """The Edit DID modal's fields. ``address_id``: an existing validated
    address of the number's tenant, ``new`` for the address typed below, or
    empty to keep the number's address as it is (typing a street also means
    ``new``)."""

    cnam: str = ""  # the number's own name; empty: inherit the default
    address_id: str = ""
    street: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = "US"
    caller_name: str = ""

    @property
    def new_address(self) -> bool:
        return self.address_id == "new" or (
            not self.address_id and any((self.street, self.city, self.postal_code))
        )

    def address_fields(self) -> dict[str, object]:
        return {
            "street": self.street,
            "unit": self.unit,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
            "country": self.country or "US",
            "caller_name": self.caller_name,
        }


@dataclass
class DidSaved:
    """What saving left: messages for the next page, or an address the carrier
    corrected, waiting for the user to accept the suggestion."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    suggested: E911Address | None = None


def load_did(session: Session, scope: Scope, number_id: str) -> dict[str, Any]:
    """The Edit DID modal's view of a number: its CNAM (own name, what is
    listed, status), its E911 state, and the validated addresses it may take."""
    number = numbers.get_number(session, scope, number_id)
    shaped = number_schemas.phone_numbers(session, [number])[0]
    view = cnam.describe(session, [number])[number.id]
    state = e911.number_states(session, [number.id]).get(number.id)
    serves = e911.serving_account(number)
    addresses = [
        a
        for a in e911.list_addresses(session, scope)
        if a.account_id == serves and a.status == e911.VALIDATED
    ]
    holder = session.get_one(Account, serves)
    form = DidForm(cnam=view.own_name or "", caller_name=holder.name[:32])
    return {
        "number": shaped,
        "cnam": view,
        "cnam_source": CNAM_SOURCES.get(view.source, view.source),
        "e911_row": state[0] if state else None,
        "e911_address": address_line(state[1]) if state else None,
        "addresses": [(a.id, address_line(a)) for a in addresses],
        "form": form,
    }


def save_did(ctx: Context, scope: Scope, number_id: str, form: DidForm) -> DidSaved:
    """Set the number's CNAM (empty: inherit) and E911 address. A bad name or
    address (422 naming the field) stores nothing: both are checked before
    either is saved. A new address the carrier corrects is kept unattached
    until the user accepts the suggestion."""
    with ctx.db.session() as db_session:
        number = numbers.get_number(db_session, scope, number_id)
        own = cnam.describe(db_session, [number])[number.id].own_name
        # The address belongs to the account the number serves (its tenant, else
        # its owner, e.g. a tenant's own purchase seen by its partner).
        holder = e911.serving_account(number)
        tenant_id = holder if holder != scope.account_id else None
        e164 = number.e164
    name = form.cnam.strip() or None
    if name is not None:
        account_settings.validate_cnam(name, "cnam")
    saved = DidSaved()
    address: E911Address | None = None
    if form.new_address:
        fields = form.address_fields()
        if tenant_id:
            fields["tenant_id"] = tenant_id  # a partner files it under the tenant
        address = e911.create_address(ctx.db, ctx.carrier, scope, fields)
    if name != own:
        cnam.set_number_cnam(ctx.db, ctx.carrier, scope, number_id, name)
        saved.messages.append(_cnam_message(ctx, scope, number_id, e164))
    if address is not None and address.status == e911.NEEDS_CONFIRMATION:
        saved.suggested = address
        return saved
    chosen = address.id if address is not None else form.address_id
    if chosen and chosen != "new":
        with ctx.db.session() as db_session:
            current = e911.get_number_e911(db_session, scope, number_id)
        if current is None or current.address_id != chosen or address is not None:
            saved.messages.append(_attach(ctx, scope, number_id, chosen, e164))
    if not saved.messages:
        saved.messages.append(("info", f"Nothing to change on {phone(e164)}."))
    return saved


def _cnam_message(ctx: Context, scope: Scope, number_id: str, e164: str) -> tuple[str, str]:
    with ctx.db.session() as db_session:
        number = numbers.get_number(db_session, scope, number_id)
        view = cnam.describe(db_session, [number])[number.id]
    said = f"“{view.name}”" if view.name else "no name"
    if view.status == cnam.FAILED:
        return "error", f"The carrier refused the CNAM of {phone(e164)}: {view.reason}"
    if view.status == cnam.PENDING:
        return "info", (
            f"CNAM of {phone(e164)} is {said}, pending at the carrier (sent again shortly). "
            + cnam.CACHE_NOTICE
        )
    return "success", f"CNAM of {phone(e164)} is {said}. {cnam.CACHE_NOTICE}"


def _attach(
    ctx: Context, scope: Scope, number_id: str, address_id: str, e164: str
) -> tuple[str, str]:
    result = e911.attach(ctx.db, ctx.carrier, scope, number_id, address_id)
    if result.status == e911.PENDING:
        return "info", f"E911 address of {phone(e164)} sent; the carrier hasn't answered yet."
    return "success", f"E911 address of {phone(e164)} is provisioned."


def _edit_modal(
    request: Request,
    ctx: Ctx,
    viewer: session.Viewer,
    number_id: str,
    next: str,
    status_code: int = 200,
    form: DidForm | None = None,
    error: DidhubError | None = None,
    suggested: E911Address | None = None,
    notes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        context = load_did(db_session, viewer.scope, number_id)
    if form is not None:
        context["form"] = form
    return render(
        request,
        "e911/_edit_modal.html",
        viewer,
        status_code=status_code,
        next=safe_next(next, home_url(viewer)),
        error=error_text(error) if error else None,
        errors=field_errors(error) if error else {},
        suggested=suggested,
        suggested_line=address_line(suggested.suggestion)
        if suggested and suggested.suggestion
        else None,
        notes=notes,
        **context,
    )


@router.get("/numbers/{number_id}/edit", response_class=HTMLResponse)
def edit_did_form(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: str = ""
) -> HTMLResponse:
    return _edit_modal(request, ctx, viewer, number_id, next)


@router.post("/numbers/{number_id}/edit", response_model=None)
def edit_did(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    cnam: Annotated[str, Form()] = "",
    address_id: Annotated[str, Form()] = "",
    street: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    city: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "",
    postal_code: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "US",
    caller_name: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    form = DidForm(cnam, address_id, street, unit, city, state, postal_code, country, caller_name)
    try:
        saved = save_did(ctx, viewer.scope, number_id, form)
    except DidhubError as exc:
        return _edit_modal(
            request, ctx, viewer, number_id, next, exc.status_code, form=form, error=exc
        )
    if saved.suggested is not None:
        form.address_id = ""
        return _edit_modal(
            request,
            ctx,
            viewer,
            number_id,
            next,
            form=form,
            suggested=saved.suggested,
            notes=saved.messages,
        )
    for kind, text in saved.messages:
        session.flash(request, kind, text)
    return go(request, safe_next(next, home_url(viewer)))


def _after(
    request: Request,
    ctx: Ctx,
    viewer: session.Viewer,
    number_id: str,
    next: str,
    action: Any,
) -> Response:
    """Run one E911/CNAM action for the modal's buttons: a flash and back to
    the page, or the modal again with the error."""
    try:
        kind, text = action()
    except DidhubError as exc:
        return _edit_modal(request, ctx, viewer, number_id, next, exc.status_code, error=exc)
    session.flash(request, kind, text)
    return go(request, safe_next(next, home_url(viewer)))


@router.post("/numbers/{number_id}/e911/accept", response_model=None)
def accept_suggested_address(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    suggested_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """“Use suggested address”: take the carrier's corrected form, then put
    the address on the number."""

    def accept() -> tuple[str, str]:
        with ctx.db.session() as db_session:
            e164 = numbers.get_number(db_session, viewer.scope, number_id).e164
            e911.accept_suggestion(db_session, viewer.scope, suggested_id)
        return _attach(ctx, viewer.scope, number_id, suggested_id, e164)

    return _after(request, ctx, viewer, number_id, next, accept)


@router.post("/numbers/{number_id}/e911/retry", response_model=None)
def retry_e911(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: Annotated[str, Form()] = ""
) -> Response:
    def again() -> tuple[str, str]:
        result = e911.retry(ctx.db, ctx.carrier, viewer.scope, number_id)
        return "success", f"E911 address of {phone(result.phone_number)} is {result.status}."

    return _after(request, ctx, viewer, number_id, next, again)


@router.post("/numbers/{number_id}/e911/remove", response_model=None)
def remove_e911(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: Annotated[str, Form()] = ""
) -> Response:
    def remove() -> tuple[str, str]:
        e911.detach(ctx.db, ctx.carrier, viewer.scope, number_id)
        return "success", "E911 address removed from the number."

    return _after(request, ctx, viewer, number_id, next, remove)


@router.post("/numbers/{number_id}/cnam/retry", response_model=None)
def retry_cnam(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: Annotated[str, Form()] = ""
) -> Response:
    def again() -> tuple[str, str]:
        number = cnam.retry(ctx.db, ctx.carrier, viewer.scope, number_id)
        return _cnam_message(ctx, viewer.scope, number_id, number.e164)

    return _after(request, ctx, viewer, number_id, next, again)


# ------------------------------------------------------------------ E911 page

PROBLEMS = {
    e911.NO_ADDRESS: "No E911 address",
    e911.NOT_PROVISIONED: "Address not provisioned at the carrier",
    e911.OTHER_ACCOUNTS_ADDRESS: "Address of another account (the number changed tenant)",
}


def _e911_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    """Locations (sites), the addresses they point at, and the compliance
    report: the screens of ``/e911/locations`` and ``/compliance/e911``."""
    with ctx.db.read_session() as db_session:
        addresses = e911.list_addresses(db_session, viewer.scope)
        locations = e911.list_locations(db_session, viewer.scope)
        report = e911.compliance_report(db_session, viewer.scope)
        owners = {a.account_id for a in addresses} | {n.number.owner_id for n in report.numbers}
        names = {
            a.id: a.name for a in db_session.scalars(select(Account).where(Account.id.in_(owners)))
        }
    by_id = {a.id: a for a in addresses}
    return render(
        request,
        "e911/e911.html",
        viewer,
        status_code=status_code,
        addresses=[(a.id, address_line(a), names.get(a.account_id, "")) for a in addresses],
        locations=[
            (loc, address_line(by_id[loc.address_id]) if loc.address_id in by_id else "")
            for loc in locations
        ],
        gaps=[(gap.number, PROBLEMS.get(gap.problem, gap.problem)) for gap in report.numbers],
        uncovered=[(loc, address_line(address)) for loc, address in report.locations],
        compliant=report.compliant,
        **extra,
    )


@router.get("/e911", response_class=HTMLResponse)
def e911_page(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _e911_page(request, ctx, viewer)


@router.post("/e911/locations", response_model=None)
def create_location(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    name: Annotated[str, Form()] = "",
    address_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        with ctx.db.session() as db_session:
            location = e911.create_location(db_session, viewer.scope, name, address_id)
    except DidhubError as exc:
        return _e911_page(
            request, ctx, viewer, exc.status_code, error=error_text(exc), name=name,
            chosen=address_id,
        )  # fmt: skip
    session.flash(request, "success", f"Location {location.name} added.")
    return go(request, f"{PREFIX}/e911")


@router.post("/e911/locations/{location_id}/delete", response_model=None)
def delete_location(request: Request, ctx: Ctx, viewer: Who, location_id: str) -> Response:
    try:
        with ctx.db.session() as db_session:
            e911.delete_location(db_session, viewer.scope, location_id)
    except DidhubError as exc:
        session.flash(request, "error", error_text(exc))
        return go(request, f"{PREFIX}/e911")
    session.flash(request, "success", "Location removed.")
    return go(request, f"{PREFIX}/e911")
