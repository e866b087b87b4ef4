"""Numbers: Buy DIDs (search, quote in a confirmation modal, purchase), the DID
Inventory (assign to a tenant, release), and a tenant's DIDs page (routing to
agents). Each action is one call of ``didhub.numbers.service``, as in the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from didhub import numbering, outputs
from didhub.accounts import service as accounts
from didhub.accounts import views as account_views
from didhub.accounts.models import Account, Agent
from didhub.api.deps import Ctx
from didhub.billing.service import assignments, rating
from didhub.e911 import service as e911
from didhub.e911 import views as e911_views
from didhub.errors import CarrierError, DidhubError, Forbidden, ValidationFailed
from didhub.idempotency import run_once
from didhub.numbers import schemas as number_schemas
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import STATUSES
from didhub.numbers.schemas import SearchRequest
from didhub.wallet import repository as billing
from didhub.web import regions, session
from didhub.web.common import (
    PREFIX,
    Who,
    error_text,
    go,
    home_url,
    make_router,
    message,
    money,
    parse,
    phone,
    render,
    safe_next,
)

router = make_router()

PAGE_SIZE = 20
INVENTORY_PAGE = 25
TOLL_FREE_PREFIXES = numbering.TOLL_FREE_NPAS
# What the API's field names are called on the form, for error messages.
LABELS = {
    "administrative_area": "State",
    "area_code": "Area Code",
    "nxx": "NXX",
    "rate_center": "Rate Center",
    "locality": "City",
    "pattern": "Pattern",
    "page_size": "Quantity",
    "page": "Page",
}


# ------------------------------------------------------------------ Buy DIDs


class BuyQuery(BaseModel):
    tab: str = "local"
    state: str = ""
    area_code: str = ""
    nxx: str = ""
    rate_center: str = ""
    city: str = ""
    mode: str = "regular"  # toll-free: regular | vanity
    prefix: str = ""
    quantity: str = "10"
    pattern: str = ""
    country: str = "US"  # the By country tab: US | CA | GB | AU
    type: str = "local"  # the By country tab: local | mobile | toll-free
    page: int = 1
    search: str = ""  # set by the Search button: show results


# The By country tab: every country the API sells, and the types it sells.
COUNTRIES = {"US": "United States", "CA": "Canada", "GB": "United Kingdom", "AU": "Australia"}
TYPES = {"local": "Local", "mobile": "Mobile", "toll-free": "Toll-free"}


def _search_request(q: BuyQuery) -> SearchRequest:
    if q.tab == "country":
        if q.country not in COUNTRIES:
            raise ValidationFailed("Country: choose one from the list", field="country")
        if q.type not in TYPES:
            raise ValidationFailed("Type: choose one from the list", field="type")
        fields: dict[str, Any] = {
            "country_code": q.country,
            "phone_number_type": q.type,
            "area_code": q.area_code,
            "page": q.page,
            "page_size": PAGE_SIZE,
        }
    elif q.tab == "toll-free":
        if q.mode == "vanity":
            if not q.pattern.strip():
                raise ValidationFailed(
                    "Pattern: type a pattern such as 877-555-XXXX", field="pattern"
                )
            fields = {"pattern": q.pattern, "page_size": PAGE_SIZE}
        else:
            try:
                quantity = int(q.quantity or "10")
            except ValueError:
                raise ValidationFailed(
                    "Quantity: a whole number, 1 to 50", field="quantity"
                ) from None
            fields = {"area_code": q.prefix, "page_size": quantity}
        fields |= {"country_code": "US", "phone_number_type": "toll-free", "page": q.page}
    else:
        country = regions.country_of(q.state)
        if country is None:
            raise ValidationFailed("State: choose a state to search in", field="state")
        fields = {
            "country_code": country,
            "administrative_area": q.state,
            "area_code": q.area_code,
            "nxx": q.nxx,
            "rate_center": q.rate_center,
            "locality": q.city,
            "phone_number_type": "local",
            "page": q.page,
            "page_size": PAGE_SIZE,
        }
    try:
        request: SearchRequest = parse(SearchRequest, fields)
    except ValidationFailed as exc:
        label = LABELS.get(exc.field or "", exc.field or "")
        text = exc.message.removeprefix(f"{exc.field}: ") if exc.field else exc.message
        if exc.field == "page_size":
            text = "a whole number, 1 to 50"
        raise ValidationFailed(f"{label}: {text}" if label else text, field=exc.field) from None
    return request


def _buyer(viewer: session.Viewer) -> None:
    """A partner in its tenant's view doesn't spend the tenant's wallet: it buys
    as itself and assigns the numbers to the tenant."""
    if viewer.switched:
        raise Forbidden(
            f"numbers for {viewer.account_name} are bought by {viewer.home_name}: switch "
            "back, buy them, then assign them to the tenant from the DID Inventory"
        )


def _results(ctx: Ctx, viewer: session.Viewer, q: BuyQuery) -> dict[str, Any]:
    """The results fragment's context: the numbers, or the problem with the search."""
    try:
        request = _search_request(q)
        found = numbers.search(
            ctx.db, ctx.carrier, viewer.scope, request.to_query(), request.page, request.page_size
        )
    except DidhubError as exc:
        return {"error": error_text(exc), "q": q}
    return {
        "q": q,
        "rows": [number_schemas.available(ctx.settings, item) for item in found.data],
        "page": found.page,
        "has_more": found.has_more,
        "where": _where(q),
        "currency": ctx.settings.currency,
        "types": TYPES,
        # The partner guide: toll-free callers don't pay, so inbound minutes do.
        "toll_free_inbound": rating.rate_for(ctx.settings, "toll-free", "inbound"),
    }


def _where(q: BuyQuery) -> str:
    if q.tab == "country":
        kind = TYPES.get(q.type, q.type).lower()
        area = f", area code {q.area_code}" if q.area_code else ""
        return f"{kind} in {COUNTRIES.get(q.country, q.country)}{area}"
    if q.tab == "toll-free":
        if q.mode == "vanity":
            return f"toll-free matching {q.pattern.strip().upper()}"
        return f"toll-free {q.prefix}" if q.prefix else "toll-free"
    parts = [q.city.strip() or None, regions.region_name(q.state)]
    if q.area_code:
        parts.append(f"area code {q.area_code}")
    if q.nxx:
        parts.append(f"NXX {q.nxx}")
    if q.rate_center:
        parts.append(f"rate center {q.rate_center.upper()}")
    return "in " + ", ".join(p for p in parts if p)


@router.get("/numbers/buy", response_class=HTMLResponse)
def buy_page(
    request: Request, ctx: Ctx, viewer: Who, q: Annotated[BuyQuery, Query()]
) -> HTMLResponse:
    results = _results(ctx, viewer, q) if q.search else None
    return render(
        request,
        "numbers/buy.html",
        viewer,
        q=q,
        results=results,
        regions=regions.REGIONS,
        prefixes=TOLL_FREE_PREFIXES,
        countries=COUNTRIES,
        types=TYPES,
    )


@router.get("/numbers/buy/results", response_class=HTMLResponse)
def buy_results(
    request: Request, ctx: Ctx, viewer: Who, q: Annotated[BuyQuery, Query()]
) -> HTMLResponse:
    return render(request, "numbers/_results.html", viewer, results=_results(ctx, viewer, q))


@router.get("/numbers/localities", response_class=HTMLResponse)
def localities(request: Request, viewer: Who, state: str = "", city: str = "") -> HTMLResponse:
    """City autocomplete: the options of the City field's datalist."""
    country = regions.country_of(state) or "US"
    found = numbering.localities(country, state.upper() or None, city.strip()[:100], 12)
    return render(request, "numbers/_localities.html", viewer, places=found)


@router.post("/numbers/buy/quote", response_class=HTMLResponse)
def quote(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    phone_numbers: Annotated[list[str] | None, Form()] = None,
    one: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Purchase Selected (the ticked numbers) or a row's Buy (``one``): price
    them, hold them, show the confirmation."""
    if one:
        phone_numbers = [one]
    if not phone_numbers:
        return message(request, "error", "Tick at least one number to buy.", 422)
    try:
        _buyer(viewer)
        q = numbers.quote(ctx.db, ctx.carrier, ctx.settings, viewer.scope, phone_numbers)
        with ctx.db.session() as db_session:
            wallet = billing.wallet_summary(
                db_session, viewer.scope.account_id, ctx.settings.currency
            )
    except DidhubError as exc:
        return message(request, "error", _not_charged(exc), exc.status_code)
    return render(
        request,
        "numbers/_quote_modal.html",
        viewer,
        quote=q,
        wallet=wallet,
        toll_free=any(line.number.phone_number_type == "toll-free" for line in q.lines),
        toll_free_inbound=rating.rate_for(ctx.settings, "toll-free", "inbound"),
    )


def _not_charged(exc: DidhubError) -> str:
    text = error_text(exc)
    if isinstance(exc, CarrierError):
        return text  # says what was refunded
    return f"{text.rstrip('.')}. No charge was made for this purchase."


@router.post("/numbers/buy/purchase", response_model=None)
def purchase(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    quote_id: Annotated[str, Form()] = "",
    phone_numbers: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Confirm Purchase. The quote id is the idempotency key: a second click
    answers the first purchase instead of buying again."""
    wanted = phone_numbers or []
    scope = viewer.scope

    def shaped(result: numbers.PurchaseResult) -> tuple[int, Any]:
        return (200 if result.outcome_known else 202), {
            "order_id": result.order_id,
            "numbers": {n.e164: n.status for n in result.numbers},
            "charged": outputs.money(result.charged - result.refunded),
            "refunded": outputs.money(result.refunded),
            "errors": result.errors,
        }

    def work() -> tuple[int, Any]:
        return shaped(
            numbers.purchase(ctx.db, ctx.carrier, ctx.settings, scope, wanted, gateway=ctx.gateway)
        )

    def current(stored: tuple[int, Any]) -> tuple[int, Any]:
        # A second click after an unknown outcome: the order as it stands now.
        result = numbers.order_outcome(ctx.db, stored[1]["order_id"], wanted)
        numbers.refuse_if_none_provided(result, ctx.settings, "phone_numbers")
        return shaped(result)

    key = f"dashboard:{quote_id}" if quote_id else None
    try:
        _buyer(viewer)
        status, answer = run_once(
            ctx.db,
            scope.account_id,
            key,
            "dashboard:purchase",
            {"phone_numbers": wanted},
            work,
            current,
        )
    except DidhubError as exc:
        return message(request, "error", _not_charged(exc), exc.status_code)
    bought = [n for n, state in answer["numbers"].items() if state == "active"]
    currency = ctx.settings.currency
    if status == 202:
        session.flash(
            request,
            "info",
            f"The carrier hasn't confirmed order {answer['order_id']} yet: its numbers show as "
            "provisioning and settle by themselves within minutes.",
        )
    if bought:
        where = "Unassigned, in your DID Inventory" if viewer.is_partner else "on your DIDs page"
        session.flash(
            request,
            "success",
            f"Bought {', '.join(phone(n) for n in bought)} for "
            f"{money(answer['charged'], currency)}. "
            f"{'They are' if len(bought) > 1 else 'It is'} {where}.",
        )
    for e164, reason in answer["errors"].items():
        session.flash(
            request, "error", f"{phone(e164)} could not be provided: {reason}; it was refunded."
        )
    return go(request, home_url(viewer))


# ------------------------------------------------------------------ DID Inventory


class InventoryQuery(BaseModel):
    q: str = ""
    assigned: str = ""  # "" | yes | no
    tenant_id: str = ""
    type: str = ""
    status: str = ""  # "" (live) | a status | all
    cursor: str = ""


def _filters(f: InventoryQuery) -> numbers.InventoryFilter:
    if f.status and f.status not in (*STATUSES, "all"):
        raise ValidationFailed("Status: choose one from the list", field="status")
    if f.type and f.type not in ("local", "toll-free", "mobile"):
        raise ValidationFailed("Type: choose one from the list", field="type")
    return numbers.InventoryFilter(
        status=f.status or None,
        tenant_id=f.tenant_id or None,
        assigned={"yes": True, "no": False}.get(f.assigned),
        phone_number_type=f.type or None,
        q=f.q.strip()[:100] or None,
    )


def _inventory_rows(
    ctx: Ctx, viewer: session.Viewer, f: InventoryQuery, page_size: int
) -> dict[str, Any]:
    with ctx.db.read_session() as db_session:
        tenants = accounts.list_tenants(db_session, viewer.scope) if viewer.is_partner else []
        try:
            page = numbers.list_numbers(
                db_session, viewer.scope, _filters(f), page_size, f.cursor or None
            )
        except DidhubError as exc:
            return {"rows": [], "tenants": tenants, "error": error_text(exc), "next_cursor": None}
        states = e911.number_states(db_session, [n.id for n in page.data])
        rows = number_schemas.phone_numbers(db_session, page.data, states)
        features = e911_views.did_features(db_session, rows, states)
        routing = account_views.unassigned_behaviour(
            db_session, ctx.settings, viewer.scope.account_id
        )
    for row, number in zip(rows, page.data, strict=True):
        row["features"] = features.get(row["id"])
        # Only the buyer (or its partner) may release: a tenant can't give
        # back a number its partner pays for.
        row["owned"] = viewer.is_partner or number.owner_id == viewer.scope.account_id
    return {
        "rows": rows,
        "tenants": tenants,
        "next_cursor": page.next_cursor,
        "unassigned_behaviour": routing,
    }


def _self_url(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


@router.get("/numbers/inventory", response_model=None)
def inventory(
    request: Request, ctx: Ctx, viewer: Who, f: Annotated[InventoryQuery, Query()]
) -> Response:
    if not viewer.is_partner:
        return go(request, f"{PREFIX}/dids")
    data = _inventory_rows(ctx, viewer, f, INVENTORY_PAGE)
    return render(request, "numbers/inventory.html", viewer, f=f, here=_self_url(request), **data)


@router.get("/dids", response_model=None)
def dids(
    request: Request, ctx: Ctx, viewer: Who, f: Annotated[InventoryQuery, Query()]
) -> Response:
    """A tenant's numbers and where each one's calls go."""
    if viewer.is_partner:
        return go(request, f"{PREFIX}/numbers/inventory")
    data = _inventory_rows(ctx, viewer, f, INVENTORY_PAGE)
    return render(request, "numbers/dids.html", viewer, f=f, here=_self_url(request), **data)


def _number(ctx: Ctx, viewer: session.Viewer, number_id: str) -> dict[str, Any]:
    with ctx.db.read_session() as db_session:
        number = numbers.get_number(db_session, viewer.scope, number_id)
        return number_schemas.phone_numbers(db_session, [number])[0]


@router.get("/numbers/{number_id}/assign", response_class=HTMLResponse)
def assign_form(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: str = ""
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        tenants = accounts.list_tenants(db_session, viewer.scope)
    return render(
        request,
        "numbers/_assign_modal.html",
        viewer,
        number=_number(ctx, viewer, number_id),
        tenants=tenants,
        next=safe_next(next, home_url(viewer)),
    )


@router.post("/numbers/{number_id}/assign", response_model=None)
def assign(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    tenant_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        number = assignments.assign_tenant(
            ctx.db, ctx.carrier, ctx.settings, viewer.scope, number_id, tenant_id or None
        )
    except DidhubError as exc:
        with ctx.db.session() as db_session:
            tenants = accounts.list_tenants(db_session, viewer.scope)
        return render(
            request,
            "numbers/_assign_modal.html",
            viewer,
            status_code=exc.status_code,
            number=_number(ctx, viewer, number_id),
            tenants=tenants,
            next=safe_next(next, home_url(viewer)),
            error=error_text(exc),
            chosen=tenant_id,
        )
    with ctx.db.session() as db_session:
        tenant = db_session.get(Account, number.tenant_id) if number.tenant_id else None
    if tenant is None:
        text = f"{phone(number.e164)} is Unassigned again."
    else:
        text = f"{phone(number.e164)} is now assigned to {tenant.name}."
    session.flash(request, "success", text)
    return go(request, safe_next(next, home_url(viewer)))


@router.get("/numbers/{number_id}/release", response_class=HTMLResponse)
def release_form(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: str = ""
) -> HTMLResponse:
    return render(
        request,
        "numbers/_release_modal.html",
        viewer,
        number=_number(ctx, viewer, number_id),
        next=safe_next(next, home_url(viewer)),
    )


@router.post("/numbers/{number_id}/release", response_model=None)
def release(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        number = numbers.release(ctx.db, ctx.carrier, viewer.scope, number_id, ctx.settings)
    except DidhubError as exc:
        return render(
            request,
            "numbers/_release_modal.html",
            viewer,
            status_code=exc.status_code,
            number=_number(ctx, viewer, number_id),
            next=safe_next(next, home_url(viewer)),
            error=error_text(exc),
        )
    if number.status == "released":
        session.flash(
            request, "success", f"{phone(number.e164)} was released; its billing has stopped."
        )
    else:
        session.flash(
            request,
            "info",
            f"{phone(number.e164)} is being released; the carrier hasn't confirmed yet "
            "and it finishes by itself.",
        )
    return go(request, safe_next(next, home_url(viewer)))


# ------------------------------------------------------------------ routing to agents


def _route_context(ctx: Ctx, viewer: session.Viewer, number_id: str) -> dict[str, Any]:
    number = _number(ctx, viewer, number_id)
    with ctx.db.read_session() as db_session:
        agents: list[Agent] = accounts.list_agents(
            db_session, viewer.scope, number["tenant_id"] or None
        )
        routing = account_views.unassigned_behaviour(
            db_session, ctx.settings, number["tenant_id"] or viewer.scope.account_id
        )
    return {"number": number, "agents": agents, "unassigned_behaviour": routing}


@router.get("/numbers/{number_id}/route", response_class=HTMLResponse)
def route_form(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: str = ""
) -> HTMLResponse:
    return render(
        request,
        "numbers/_route_modal.html",
        viewer,
        next=safe_next(next, home_url(viewer)),
        **_route_context(ctx, viewer, number_id),
    )


@router.post("/numbers/{number_id}/route", response_model=None)
def route(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    inbound_agent_id: Annotated[str, Form()] = "",
    outbound_agent_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Inbound and outbound are separate assignments (the seed's rule): each
    direction that changed is one assign or unassign."""
    wanted = {"inbound": inbound_agent_id, "outbound": outbound_agent_id}
    try:
        with ctx.db.session() as db_session:
            number = numbers.get_number(db_session, viewer.scope, number_id)
            live = numbers.live_assignments(db_session, [number.id]).get(number.id, {})
            current = {kind: a.agent_id for kind, a in live.items()}
        for kind, agent_id in wanted.items():
            if agent_id == current.get(kind, ""):
                continue
            if agent_id:
                assignments.assign_to_agent(
                    ctx.db, ctx.carrier, ctx.settings, viewer.scope, number_id, agent_id, kind
                )
            else:
                with ctx.db.session() as db_session:
                    numbers.unassign_agent(db_session, viewer.scope, number_id, kind)
    except DidhubError as exc:
        return render(
            request,
            "numbers/_route_modal.html",
            viewer,
            status_code=exc.status_code,
            next=safe_next(next, home_url(viewer)),
            error=error_text(exc),
            **_route_context(ctx, viewer, number_id),
        )
    session.flash(request, "success", f"Routing of {phone(number.e164)} saved.")
    return go(request, safe_next(next, home_url(viewer)))
