"""Request shapes for E911. Fields are plain optional text here: the service's
normalization decides what's wrong and names the field (422)."""

from __future__ import annotations

from pydantic import Field

from didhub.inputs import RequestModel
from didhub.outputs import ResponseModel


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
