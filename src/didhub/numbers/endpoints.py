from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from didhub import numbering, outputs
from didhub.accounts.models import Agent
from didhub.api.contract import KEYED, accepted, errors
from didhub.api.deps import Caller, Ctx, IdempotencyKey
from didhub.billing.service import assignments
from didhub.e911 import service as e911
from didhub.errors import CarrierError, ValidationFailed
from didhub.idempotency import run_once
from didhub.numbers import byo, cnam, lifecycle
from didhub.numbers import schemas as number_schemas
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import STATUSES
from didhub.numbers.models import PhoneNumber
from didhub.numbers.schemas import (
    AssignAnswer,
    AssignmentOut,
    AssignRequest,
    BulkTenantRequest,
    ImportAnswer,
    ImportRequest,
    LocalityOut,
    NumberAnswer,
    NumberList,
    PatchNumberRequest,
    PhoneNumberOut,
    PurchaseAnswer,
    PurchaseRequest,
    QuoteOut,
    QuoteRequest,
    ReleaseImportRequest,
    ReleaseRequest,
    SearchAnswer,
    SearchRequest,
    UnassignRequest,
)
from didhub.outputs import Data

router = APIRouter(prefix="/telephony", tags=["numbers"])


@router.post(
    "/numbers/search",
    response_model=SearchAnswer,
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 502),
)
def search(body: SearchRequest, ctx: Ctx, scope: Caller) -> Response:
    page = numbers.search(ctx.db, ctx.carrier, scope, body.to_query(), body.page, body.page_size)
    meta: dict[str, Any] = {
        "page": page.page,
        "page_size": page.page_size,
        "count": len(page.data),
        "has_more": page.has_more,
        "carrier": ctx.carrier.name,
    }
    if page.failed_carriers:
        # A multi-carrier search answered without some carriers (names only:
        # their error text is for the operator's log, not the buyer).
        meta["partial"] = True
        meta["failed_carriers"] = sorted(page.failed_carriers)
    return outputs.sent(
        {
            "data": [number_schemas.available(ctx.settings, item) for item in page.data],
            "meta": meta,
        }
    )


@router.get("/localities", response_model=Data[list[LocalityOut]], responses=errors(*KEYED))
def localities(
    ctx: Ctx,
    scope: Caller,
    q: str = Query("", max_length=100),
    country_code: str = Query("US"),
    administrative_area: str | None = Query(None, max_length=3),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    country = numbering.normalize_country(country_code)
    state = administrative_area.upper() if administrative_area else None
    found = numbering.localities(country, state, q.strip(), limit)
    return {"data": [{"locality": name, "administrative_area": area} for name, area in found]}


@router.post(
    "/numbers/quote", response_model=Data[QuoteOut], responses=errors(*KEYED, 404, 409, 502)
)
def quote(body: QuoteRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    q = numbers.quote(ctx.db, ctx.carrier, ctx.settings, scope, body.phone_numbers)
    return {
        "data": {
            "quote_id": q.id,
            "held": q.held,
            "expires_at": outputs.when(q.expires_at) if q.expires_at else None,
            "hold_refused": q.hold_refused,
            "phone_numbers": [
                {
                    "phone_number": line.number.phone_number,
                    "phone_number_type": line.number.phone_number_type,
                    "locality": line.number.locality,
                    "administrative_area": line.number.administrative_area,
                    "rate_center": line.number.rate_center,
                    "monthly_cost": outputs.money(line.monthly_cost),
                    "upfront_cost": outputs.money(line.upfront_cost),
                    "total": outputs.money(line.total),
                }
                for line in q.lines
            ],
            "monthly_total": outputs.money(q.monthly_total),
            "upfront_total": outputs.money(q.upfront_total),
            "total": outputs.money(q.total),
            "currency": q.currency,
            "wallet_balance": outputs.money(q.wallet_balance),
            "sufficient_funds": q.wallet_balance >= q.total,
        }
    }


@router.post(
    "/numbers/purchase",
    response_model=PurchaseAnswer,
    responses={
        **errors(*KEYED, 402, 403, 404, 409, 502),
        **accepted(
            PurchaseAnswer,
            "The carrier's answer isn't known yet: settled later, "
            "never charged for numbers not provided",
        ),
    },
)
def purchase(
    body: PurchaseRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    single = body.phone_number is not None
    wanted = [body.phone_number] if body.phone_number is not None else body.phone_numbers or []
    field = "phone_number" if single else "phone_numbers"

    def answer(result: numbers.PurchaseResult) -> tuple[int, Any]:
        with ctx.db.read_session() as session:
            shaped = number_schemas.phone_numbers(session, result.numbers, fresh=result.fresh)
        meta = {
            "order_id": result.order_id,
            "charged": outputs.money(result.charged),
            "refunded": outputs.money(result.refunded),
            "currency": ctx.settings.currency,
            "outcome_known": result.outcome_known,
            "errors": result.errors,
        }
        return (200 if result.outcome_known else 202), {
            "data": shaped[0] if single else shaped,
            "meta": meta,
        }

    def work() -> tuple[int, Any]:
        return answer(
            numbers.purchase(
                ctx.db, ctx.carrier, ctx.settings, scope, wanted, field, gateway=ctx.gateway
            )
        )

    def current(stored: tuple[int, Any]) -> tuple[int, Any]:
        # A replay of a 202: the order as it stands now, answered as a fresh
        # purchase would have been (200, or 502 when none could be provided).
        result = numbers.order_outcome(ctx.db, stored[1]["meta"]["order_id"], wanted)
        numbers.refuse_if_none_provided(result, ctx.settings, field)
        return answer(result)

    status, body_out = run_once(
        ctx.db, scope.account_id, idempotency_key, "purchase", body.model_dump(), work, current
    )
    return JSONResponse(body_out, status_code=status)


@router.post(
    "/numbers/import",
    status_code=201,
    response_model=ImportAnswer,
    responses=errors(*KEYED, 403, 409, 502),
)
def import_numbers(body: ImportRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Bring your own numbers (docs/carriers.md). No Idempotency-Key: the body
    carries credentials, which didhub never stores; importing twice is a 409."""
    result = byo.import_numbers(
        ctx.db,
        ctx.settings,
        scope,
        body.provider,
        body.credentials,
        body.phone_numbers,
        body.voice,
    )
    with ctx.db.session() as session:
        shaped = number_schemas.phone_numbers(session, result.numbers)
    return {
        "data": shaped,
        "meta": {"provider": result.provider, "edge_uri": result.edge_uri, "charged": "0.00"},
    }


@router.post(
    "/numbers/{number_id}/release-import",
    response_model=Data[PhoneNumberOut],
    responses=errors(*KEYED, 403, 404, 409, 502),
)
def release_import(
    number_id: str, body: ReleaseImportRequest, ctx: Ctx, scope: Caller
) -> dict[str, Any]:
    number = byo.release_import(ctx.db, ctx.settings, scope, number_id, body.credentials)
    with ctx.db.session() as session:
        return {"data": number_schemas.phone_numbers(session, [number])[0]}


@router.get("/numbers", response_model=NumberList, responses=errors(*KEYED, 404))
def list_numbers(
    ctx: Ctx,
    scope: Caller,
    status: str | None = Query(None, description="a status, or 'all'; default: live numbers"),
    tenant_id: str | None = None,
    assigned: bool | None = None,
    phone_number_type: Literal["local", "toll-free", "mobile"] | None = None,
    q: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    if status is not None and status not in (*STATUSES, "all"):
        raise ValidationFailed(
            f"status must be one of {', '.join(STATUSES)} or all", field="status"
        )
    filters = numbers.InventoryFilter(status, tenant_id, assigned, phone_number_type, q)
    with ctx.db.read_session() as session:
        page = numbers.list_numbers(session, scope, filters, limit, cursor)
        data = number_schemas.phone_numbers(session, page.data)
    return {"data": data, "meta": {"next_cursor": page.next_cursor, "count": len(data)}}


@router.get(
    "/numbers/{number_id}", response_model=Data[PhoneNumberOut], responses=errors(*KEYED, 404)
)
def get_number(number_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        number = numbers.get_number(session, scope, number_id)
        return {"data": number_schemas.phone_numbers(session, [number])[0]}


@router.patch(
    "/numbers/{number_id}",
    response_model=NumberAnswer,
    responses={
        **errors(*KEYED, 403, 404, 409, 502),
        **accepted(NumberAnswer, "The caller name is pending at the carrier"),
    },
)
def patch_number(
    number_id: str,
    body: PatchNumberRequest,
    ctx: Ctx,
    scope: Caller,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    fields = body.model_fields_set

    def work() -> tuple[int, Any]:
        change = assignments.NumberChange(
            tenant_id=body.tenant_id,
            change_tenant="tenant_id" in fields,
            cnam=body.cnam,
            change_cnam="cnam" in fields,
            friendly_name=body.friendly_name,
            change_friendly_name="friendly_name" in fields,
        )
        number = assignments.update_number(
            ctx.db, ctx.carrier, ctx.settings, scope, number_id, change
        )
        return shaped(number)

    def shaped(number: PhoneNumber) -> tuple[int, Any]:
        with ctx.db.read_session() as session:
            answer: dict[str, Any] = {"data": number_schemas.phone_numbers(session, [number])[0]}
        if "cnam" in fields:
            answer["meta"] = {"notice": cnam.CACHE_NOTICE}
        return _cnam_status(answer), answer

    def current(stored: tuple[int, Any]) -> tuple[int, Any]:
        # A replay while the caller name was pending: the listing as it is now.
        with ctx.db.read_session() as session:
            number = numbers.get_number(session, scope, number_id)
        return shaped(number)

    status, answer = run_once(
        ctx.db,
        scope.account_id,
        idempotency_key,
        f"patch:{number_id}",
        body.model_dump(exclude_unset=True),
        work,
        current,
    )
    return JSONResponse(answer, status_code=status)


@router.post(
    "/numbers/assign-tenant",
    response_model=Data[list[PhoneNumberOut]],
    responses=errors(*KEYED, 403, 404, 409),
)
def assign_tenant_many(
    body: BulkTenantRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    """Assign many numbers to one tenant in one step (the dashboard's bulk assign)."""

    def work() -> tuple[int, Any]:
        changed = assignments.assign_tenant_many(
            ctx.db, ctx.carrier, ctx.settings, scope, body.number_ids, body.tenant_id
        )
        with ctx.db.read_session() as session:
            rows = number_schemas.phone_numbers(
                session, [numbers.get_number(session, scope, n.id) for n in changed]
            )
        return 200, {"data": rows}

    status, answer = run_once(
        ctx.db,
        scope.account_id,
        idempotency_key,
        "assign-tenant",
        body.model_dump(),
        work,
    )
    return JSONResponse(answer, status_code=status)


def _cnam_status(answer: dict[str, Any]) -> int:
    """202 while the carrier's answer on the caller name is not known."""
    return 202 if answer["data"]["cnam"]["status"] == cnam.PENDING else 200


@router.post(
    "/numbers/{number_id}/cnam/retry",
    response_model=NumberAnswer,
    responses={
        **errors(*KEYED, 404, 409, 502),
        **accepted(NumberAnswer, "The caller name is pending at the carrier"),
    },
)
def retry_cnam(number_id: str, ctx: Ctx, scope: Caller) -> JSONResponse:
    """Push a failed (or still pending) caller-name listing to the carrier again."""
    number = cnam.retry(ctx.db, ctx.carrier, scope, number_id)
    with ctx.db.session() as session:
        answer = {
            "data": number_schemas.phone_numbers(session, [number])[0],
            "meta": {"notice": cnam.CACHE_NOTICE},
        }
    return JSONResponse(answer, status_code=_cnam_status(answer))


@router.post(
    "/numbers/assign", response_model=AssignAnswer, responses=errors(*KEYED, 403, 404, 409)
)
def assign(
    body: AssignRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    def work() -> tuple[int, Any]:
        a = assignments.assign_to_agent(
            ctx.db,
            ctx.carrier,
            ctx.settings,
            scope,
            body.number_id,
            body.agent_id,
            body.assignment_type,
        )
        with ctx.db.session() as session:
            agent = session.get_one(Agent, a.agent_id)
            # Calling out from a number with no E911 address is allowed, but said.
            warnings = (
                e911.outbound_warnings(session, a.number_id)
                if body.assignment_type == "outbound"
                else []
            )
            return 200, {"data": number_schemas.assignment(a, agent.name), "warnings": warnings}

    status, answer = run_once(
        ctx.db, scope.account_id, idempotency_key, "assign", body.model_dump(), work
    )
    return JSONResponse(answer, status_code=status)


@router.post(
    "/numbers/unassign",
    response_model=Data[AssignmentOut],
    responses=errors(*KEYED, 403, 404, 409),
)
def unassign(
    body: UnassignRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    def work() -> tuple[int, Any]:
        with ctx.db.session() as session:
            a = numbers.unassign_agent(session, scope, body.number_id, body.assignment_type)
            return 200, {
                "data": number_schemas.assignment(a, session.get_one(Agent, a.agent_id).name)
            }

    status, answer = run_once(
        ctx.db, scope.account_id, idempotency_key, "unassign", body.model_dump(), work
    )
    return JSONResponse(answer, status_code=status)


@router.post(
    "/numbers/release",
    response_model=Data[PhoneNumberOut],
    responses={
        **errors(*KEYED, 403, 404, 409, 502),
        **accepted(Data[PhoneNumberOut], "The carrier hasn't confirmed: the number is releasing"),
    },
)
def release(
    body: ReleaseRequest, ctx: Ctx, scope: Caller, idempotency_key: IdempotencyKey
) -> JSONResponse:
    def shaped(number: PhoneNumber) -> tuple[int, Any]:
        with ctx.db.read_session() as session:
            data = number_schemas.phone_numbers(session, [number])[0]
        return (200 if number.status == "released" else 202), {"data": data}

    def work() -> tuple[int, Any]:
        return shaped(numbers.release(ctx.db, ctx.carrier, scope, body.number_id, ctx.settings))

    def current(stored: tuple[int, Any]) -> tuple[int, Any]:
        # A replay while the carrier hadn't confirmed: the number as it is now.
        with ctx.db.read_session() as session:
            number = numbers.get_number(session, scope, body.number_id)
        if number.status not in (lifecycle.RELEASING, lifecycle.RELEASED):
            # Reconcile asked again and the carrier refused: the number is back,
            # as a fresh request would have answered (which frees the key).
            raise CarrierError(
                f"the carrier refused to release {number.e164}; it is {number.status} again",
                field="number_id",
            )
        return shaped(number)

    status, answer = run_once(
        ctx.db, scope.account_id, idempotency_key, "release", body.model_dump(), work, current
    )
    return JSONResponse(answer, status_code=status)
