"""E911 endpoints: addresses, a number's E911 address, locations, compliance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from didhub import outputs
from didhub.api.contract import KEYED, accepted, errors
from didhub.api.deps import Caller, Ctx
from didhub.e911 import service as e911
from didhub.e911.models import E911Address
from didhub.e911.schemas import (
    AddressOut,
    AddressRequest,
    AttachRequest,
    ComplianceOut,
    LocationOut,
    LocationRequest,
    NumberE911Detail,
    ProvisioningOut,
    address_shape,
    compliance_shape,
    location_shape,
    provisioning_shape,
)
from didhub.numbers.models import PhoneNumber
from didhub.outputs import Data

router = APIRouter(tags=["e911"])


# ---------------------------------------------------------------- addresses


@router.post(
    "/e911/addresses",
    status_code=201,
    response_model=Data[AddressOut],
    responses=errors(*KEYED, 403, 404, 502),
)
def create_address(body: AddressRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    address = e911.create_address(ctx.db, ctx.carrier, scope, body.model_dump())
    return {"data": address_shape(address)}


@router.get("/e911/addresses", response_model=Data[list[AddressOut]], responses=errors(*KEYED, 404))
def list_addresses(ctx: Ctx, scope: Caller, tenant_id: str | None = None) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        rows = e911.list_addresses(session, scope, tenant_id)
        return {"data": [address_shape(row) for row in rows]}


@router.get(
    "/e911/addresses/{address_id}",
    response_model=Data[AddressOut],
    responses=errors(*KEYED, 404),
)
def get_address(address_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": address_shape(e911.get_address(session, scope, address_id))}


@router.post(
    "/e911/addresses/{address_id}/accept-suggestion",
    response_model=Data[AddressOut],
    responses=errors(*KEYED, 404, 409),
)
def accept_suggestion(address_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        return {"data": address_shape(e911.accept_suggestion(session, scope, address_id))}


@router.delete(
    "/e911/addresses/{address_id}",
    response_model=Data[None],
    responses=errors(*KEYED, 404, 409),
)
def delete_address(address_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        e911.delete_address(session, scope, address_id)
    return {"data": None}


# ---------------------------------------------------------------- a number's E911


@router.get(
    "/telephony/numbers/{number_id}/e911",
    response_model=Data[NumberE911Detail | None],
    responses=errors(*KEYED, 404),
)
def get_number_e911(number_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        row = e911.get_number_e911(session, scope, number_id)
        if row is None:
            return {"data": None}
        number = session.get_one(PhoneNumber, number_id)
        address = session.get_one(E911Address, row.address_id)
        return {
            "data": {
                **provisioning_shape(
                    e911.Provisioning(
                        number.id, number.e164, row.address_id, row.status, row.reason
                    )
                ),
                "address": address_shape(address),
                "updated_at": outputs.when(row.updated_at),
                "provisioned_at": outputs.when(row.provisioned_at),
            }
        }


def _answer(result: e911.Provisioning) -> JSONResponse:
    # 202: the carrier's answer was lost; the sweep pushes again.
    status = 202 if result.status == e911.PENDING else 200
    return JSONResponse({"data": provisioning_shape(result)}, status_code=status)


@router.put(
    "/telephony/numbers/{number_id}/e911",
    response_model=Data[ProvisioningOut],
    responses={
        **errors(*KEYED, 403, 404, 409, 502),
        **accepted(Data[ProvisioningOut], "The carrier's answer was lost; pushed again later"),
    },
)
def attach(number_id: str, body: AttachRequest, ctx: Ctx, scope: Caller) -> JSONResponse:
    return _answer(e911.attach(ctx.db, ctx.carrier, scope, number_id, body.address_id))


@router.post(
    "/telephony/numbers/{number_id}/e911/retry",
    response_model=Data[ProvisioningOut],
    responses={
        **errors(*KEYED, 403, 404, 409, 502),
        **accepted(Data[ProvisioningOut], "The carrier's answer was lost; pushed again later"),
    },
)
def retry(number_id: str, ctx: Ctx, scope: Caller) -> JSONResponse:
    return _answer(e911.retry(ctx.db, ctx.carrier, scope, number_id))


@router.delete(
    "/telephony/numbers/{number_id}/e911",
    response_model=Data[None],
    responses=errors(*KEYED, 403, 404, 409, 502),
)
def detach(number_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    e911.detach(ctx.db, ctx.carrier, scope, number_id)
    return {"data": None}


# ---------------------------------------------------------------- locations


@router.post(
    "/e911/locations",
    status_code=201,
    response_model=Data[LocationOut],
    response_model_exclude_unset=True,
    responses=errors(*KEYED, 404),
)
def create_location(body: LocationRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        location = e911.create_location(session, scope, body.name, body.address_id)
        return {"data": location_shape(location, session.get(E911Address, location.address_id))}


@router.get(
    "/e911/locations",
    response_model=Data[list[LocationOut]],
    response_model_exclude_unset=True,
    responses=errors(*KEYED),
)
def list_locations(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        rows = e911.list_locations(session, scope)
        return {"data": [location_shape(row) for row in rows]}


@router.delete(
    "/e911/locations/{location_id}",
    response_model=Data[None],
    responses=errors(*KEYED, 404),
)
def delete_location(location_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        e911.delete_location(session, scope, location_id)
    return {"data": None}


# ---------------------------------------------------------------- compliance


@router.get(
    "/compliance/e911",
    response_model=Data[ComplianceOut],
    response_model_exclude_unset=True,
    responses=errors(*KEYED),
)
def compliance(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": compliance_shape(e911.compliance_report(session, scope))}
