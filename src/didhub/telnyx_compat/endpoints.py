"""``/v2/available_phone_numbers``, ``/v2/number_orders``, ``/v2/phone_numbers``:
Telnyx's number resources on didhub's own services, for code written against
the official ``telnyx`` library (docs/twilio-compat.md, "Telnyx"). The API key
is the bearer token, as everywhere in didhub; errors answer in Telnyx's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from didhub import numbering, outputs
from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.carriers.base import AvailableNumber, SearchQuery
from didhub.errors import DidhubError, ValidationFailed
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import Scope

router = APIRouter(prefix="/v2", tags=["telnyx-compatible"], include_in_schema=False)

_TYPES = {"local": "local", "toll_free": "toll-free", "mobile": "mobile"}
_FILTERS = {
    "filter[country_code]",
    "filter[national_destination_code]",
    "filter[administrative_area]",
    "filter[locality]",
    "filter[rate_center]",
    "filter[phone_number_type]",
    "filter[limit]",
    "filter[phone_number][contains]",
    "filter[phone_number][starts_with]",
    "filter[phone_number][ends_with]",
    "filter[best_effort]",
    "filter[exclude_held_numbers]",
}


class _Failure(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str, pointer: str | None):
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.pointer = (
            status,
            code,
            title,
            detail,
            pointer,
        )


def _answer(work: Callable[[], Response]) -> Response:
    try:
        return work()
    except DidhubError as exc:
        failure = _Failure(
            400 if exc.status_code == 422 else exc.status_code,
            {
                401: "10009",
                402: "20100",
                403: "10010",
                404: "10005",
                409: "85001",
                429: "10011",
                502: "10007",
            }.get(exc.status_code, "10015"),
            exc.code,
            exc.message,
            f"/{exc.field}" if exc.field else None,
        )
    except _Failure as exc:
        failure = exc
    error: dict[str, Any] = {"code": failure.code, "title": failure.title, "detail": failure.detail}
    if failure.pointer:
        error["source"] = {"pointer": failure.pointer}
    return JSONResponse({"errors": [error]}, status_code=failure.status)


def _scope(request: Request, ctx: Ctx) -> Scope:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Failure(
            401, "10009", "Authentication failed", "send the API key as a bearer token", None
        )
    with ctx.db.read_session() as session:
        return accounts.authenticate(session, token.strip())


def _unsupported(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise _Failure(
            400,
            "10015",
            "Invalid parameter",
            f"{unknown[0]} is not supported (docs/twilio-compat.md)",
            None,
        )


def _available(
    item: AvailableNumber,
    monthly: str,
    upfront: str,
    currency: str,
) -> dict[str, Any]:
    regions = [
        {"region_type": kind, "region_name": value}
        for kind, value in (
            ("country_code", item.country_code),
            ("state", item.administrative_area),
            ("location", item.locality),
            ("rate_center", item.rate_center),
        )
        if value
    ]
    return {
        "record_type": "available_phone_number",
        "phone_number": item.phone_number,
        "vanity_format": None,
        "best_effort": False,
        "quickship": True,
        "reservable": True,
        "region_information": regions,
        "cost_information": {
            "monthly_cost": monthly,
            "upfront_cost": upfront,
            "currency": currency,
        },
        "features": [{"name": f} for f in item.features],
    }


@router.get("/available_phone_numbers")
def available(request: Request, ctx: Ctx) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx)
        _unsupported(request, _FILTERS)
        q = request.query_params
        kind = q.get("filter[phone_number_type]", "local")
        if kind not in _TYPES:
            raise _Failure(
                400,
                "10015",
                "Invalid parameter",
                "phone_number_type is local, toll_free or mobile",
                "/filter/phone_number_type",
            )
        ndc = q.get("filter[national_destination_code]") or None
        starts = q.get("filter[phone_number][starts_with]")
        contains = q.get("filter[phone_number][contains]")
        ends = q.get("filter[phone_number][ends_with]")
        patterns: list[str | None] = [None]
        prefix = (ndc or "") + numbering.compile_pattern(starts) if starts else None
        if prefix:
            patterns = [prefix]
        for part, anchored in ((contains, False), (ends, True)):
            if part:
                digits = numbering.compile_pattern(part, field="filter[phone_number]")
                if anchored:
                    patterns = ["X" * (10 - len(digits)) + digits]
                else:
                    patterns = ["X" * o + digits for o in range(10 - len(digits) + 1)]
        limit_raw = q.get("filter[limit]", "20")
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 50:
            raise ValidationFailed("filter[limit] is 1 to 50", field="filter.limit")
        limit = int(limit_raw)
        state = q.get("filter[administrative_area]")
        found: dict[str, AvailableNumber] = {}
        for pattern in patterns:
            query = SearchQuery(
                country_code=numbering.normalize_country(q.get("filter[country_code]", "US")),
                phone_number_type=_TYPES[kind],  # type: ignore[arg-type]
                area_code=ndc,
                administrative_area=state.upper() if state else None,
                locality=q.get("filter[locality]") or None,
                rate_center=q.get("filter[rate_center]") or None,
                pattern=pattern,
            )
            for item in numbers.search(ctx.db, ctx.carrier, scope, query, 1, 50).data:
                found.setdefault(item.phone_number, item)
            if len(found) >= limit:
                break
        items = sorted(found.values(), key=lambda i: i.phone_number)[:limit]
        data = []
        for item in items:
            price = numbers.price_for(ctx.settings, item.phone_number_type)
            data.append(
                _available(
                    item,
                    outputs.money(price.monthly),
                    outputs.money(price.setup),
                    ctx.settings.currency,
                )
            )
        return JSONResponse(
            {"data": data, "meta": {"total_results": len(data), "best_effort_results": 0}}
        )

    return _answer(work)


class _OrderNumber(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone_number: str


class _OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone_numbers: list[_OrderNumber]
    customer_reference: str | None = None


def _number(row: PhoneNumber) -> dict[str, Any]:
    return {
        "id": row.id,
        "record_type": "phone_number",
        "phone_number": row.e164,
        "status": {
            "active": "active",
            "provisioning": "purchase-pending",
            "releasing": "deleted",
            "released": "deleted",
        }.get(row.status, row.status),
        "tags": [],
        "connection_id": None,
        "connection_name": None,
        "phone_number_type": row.phone_number_type.replace("-", "_"),
        "customer_reference": row.friendly_name,
        "created_at": outputs.when(row.created_at),
        "purchased_at": outputs.when(row.purchased_at) if row.purchased_at else None,
    }


@router.post("/number_orders")
async def order(request: Request, ctx: Ctx) -> Response:
    try:
        body = _OrderRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        pointer = "/" + "/".join(str(p) for p in first["loc"])
        return JSONResponse(
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Invalid parameter",
                        "detail": first["msg"],
                        "source": {"pointer": pointer},
                    }
                ]
            },
            status_code=400,
        )
    return await run_in_threadpool(_order, request, ctx, body)


def _order(request: Request, ctx: Ctx, body: _OrderRequest) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx)
        wanted = [n.phone_number for n in body.phone_numbers]
        result = numbers.purchase(
            ctx.db, ctx.carrier, ctx.settings, scope, wanted, "phone_numbers", gateway=ctx.gateway
        )
        rows = result.numbers
        status = (
            "pending"
            if not result.outcome_known
            else ("success" if all(r.status == "active" for r in rows) else "failure")
        )
        return JSONResponse(
            {
                "data": {
                    "id": result.order_id,
                    "record_type": "number_order",
                    "status": status,
                    "phone_numbers_count": len(rows),
                    "phone_numbers": [
                        {
                            "id": r.id,
                            "record_type": "number_order_phone_number",
                            "phone_number": r.e164,
                            "status": "success"
                            if r.status == "active"
                            else ("pending" if r.status == "provisioning" else "failure"),
                        }
                        for r in rows
                    ],
                    "customer_reference": body.customer_reference,
                    "created_at": outputs.when(rows[0].created_at) if rows else None,
                    "updated_at": outputs.when(rows[0].created_at) if rows else None,
                    "requirements_met": True,
                }
            },
            status_code=200,
        )

    return _answer(work)


@router.get("/phone_numbers")
def list_numbers(request: Request, ctx: Ctx) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx)
        _unsupported(request, {"page[number]", "page[size]", "filter[phone_number]"})
        q = request.query_params
        number_raw, size_raw = q.get("page[number]", "1"), q.get("page[size]", "20")
        if not (number_raw.isdigit() and size_raw.isdigit()) or not (
            int(number_raw) >= 1 and 1 <= int(size_raw) <= 250
        ):
            raise ValidationFailed("page[number] ≥ 1 and page[size] 1 to 250", field="page")
        page_no, size = int(number_raw), int(size_raw)
        wanted = "".join(c for c in q.get("filter[phone_number]", "") if c.isdigit())
        with ctx.db.read_session() as session:
            chosen, _, total = numbers.live_page(
                session, scope, (page_no - 1) * size, size, digits=wanted, count=True
            )
        assert total is not None
        total_pages = max(1, -(-total // size))
        return JSONResponse(
            {
                "data": [_number(r) for r in chosen],
                "meta": {
                    "total_pages": total_pages,
                    "total_results": total,
                    "page_number": page_no,
                    "page_size": size,
                },
            }
        )

    return _answer(work)


@router.get("/phone_numbers/{number_id}")
def get_number(number_id: str, request: Request, ctx: Ctx) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx)
        with ctx.db.read_session() as session:
            return JSONResponse(
                {"data": _number(numbers.get_number(session, scope, number_id, field="id"))}
            )

    return _answer(work)


@router.delete("/phone_numbers/{number_id}")
def delete_number(number_id: str, request: Request, ctx: Ctx) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx)
        row = numbers.release(ctx.db, ctx.carrier, scope, number_id, ctx.settings)
        return JSONResponse({"data": _number(row)})

    return _answer(work)
