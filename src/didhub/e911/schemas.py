"""Request shapes for E911. Fields are plain optional text here: the service's
normalization decides what's wrong and names the field (422)."""

from __future__ import annotations

from pydantic import Field

from didhub.inputs import RequestModel


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
