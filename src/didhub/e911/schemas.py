"""Request shapes for E911. Fields are plain optional text here: the service's
normalization decides what's wrong and names the field (422)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from didhub.e911 import service as e911
from didhub.e911.models import E911Address, Location
from didhub.inputs import RequestModel
from didhub.outputs import ResponseModel, when


class _Strict(RequestModel):
    """Unknown fields refused, text stripped and checked (``didhub.inputs``)."""


class AddressRequest(_Strict):
    street: str | None = Field(default=None, max_length=200)
    unit: str | None = Field(default=None, max_length=40)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=40)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default="US", max_length=40)
    caller_name: str | None = Field(default=None, max_length=100)
    tenant_id: str | None = None


class AttachRequest(_Strict):
    address_id: str


class LocationRequest(_Strict):
    name: str = Field(max_length=200)
    address_id: str


# ------------------------------------------------------------------ answers


class AddressOut(ResponseModel):
    id: str
    tenant_id: str
    street: str
    unit: str | None
    city: str
    state: str
    postal_code: str
    country: str
    caller_name: str
    status: str
    suggestion: dict[str, str | None] | None = Field(
        description="The carrier's corrected address, to accept or ignore"
    )
    carrier: str | None
    carrier_reference: str | None
    created_at: str | None
    validated_at: str | None


class LocationOut(ResponseModel):
    id: str
    tenant_id: str
    name: str
    address_id: str
    created_at: str | None
    address: AddressOut | None = Field(default=None, description="Where the answer shows it")


class ProvisioningOut(ResponseModel):
    number_id: str
    phone_number: str
    address_id: str
    e911_status: str
    e911_reason: str | None


class NumberE911Detail(ProvisioningOut):
    address: AddressOut
    updated_at: str | None
    provisioned_at: str | None


class NumberGapOut(ResponseModel):
    number_id: str
    phone_number: str
    tenant_id: str | None
    owner_id: str
    address_id: str | None
    e911_status: str | None
    e911_reason: str | None
    e911_problem: str


class ComplianceOut(ResponseModel):
    compliant: bool
    locations_without_e911: list[LocationOut]
    numbers_without_e911: list[NumberGapOut]


# ------------------------------------------------------------------ answers


def address_shape(item: E911Address) -> dict[str, Any]:
    return {
        "id": item.id,
        "tenant_id": item.account_id,
        "street": item.street,
        "unit": item.unit,
        "city": item.city,
        "state": item.state,
        "postal_code": item.postal_code,
        "country": item.country,
        "caller_name": item.caller_name,
        "status": item.status,
        "suggestion": item.suggestion,
        "carrier": item.carrier,
        "carrier_reference": item.carrier_ref,
        "created_at": when(item.created_at),
        "validated_at": when(item.validated_at),
    }


def location_shape(item: Location, address: E911Address | None = None) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "id": item.id,
        "tenant_id": item.account_id,
        "name": item.name,
        "address_id": item.address_id,
        "created_at": when(item.created_at),
    }
    if address is not None:
        shaped["address"] = address_shape(address)
    return shaped


def provisioning_shape(item: e911.Provisioning) -> dict[str, Any]:
    return {
        "number_id": item.number_id,
        "phone_number": item.phone_number,
        "address_id": item.address_id,
        "e911_status": item.status,
        "e911_reason": item.reason,
    }


def compliance_shape(report: e911.ComplianceReport) -> dict[str, Any]:
    return {
        "compliant": report.compliant,
        "locations_without_e911": [
            location_shape(location, address) for location, address in report.locations
        ],
        "numbers_without_e911": [_number_gap(gap) for gap in report.numbers],
    }


def _number_gap(gap: e911.NumberGap) -> dict[str, Any]:
    number, row = gap.number, gap.e911
    return {
        "number_id": number.id,
        "phone_number": number.e164,
        "tenant_id": number.tenant_id,
        "owner_id": number.owner_id,
        "address_id": row.address_id if row else None,
        "e911_status": row.status if row else None,
        "e911_reason": row.reason if row else None,
        "e911_problem": gap.problem,
    }
