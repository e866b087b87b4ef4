"""Port-in request and answer shapes."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from didhub.carriers.base import Portability
from didhub.inputs import RequestModel
from didhub.outputs import ResponseModel, when
from didhub.porting import lifecycle
from didhub.porting import service as porting
from didhub.porting.models import PortOrder


class CheckRequest(RequestModel):
    phone_numbers: list[str] = Field(min_length=1, max_length=100)


class OrderFields(RequestModel):
    entity_name: str | None = Field(default=None, max_length=200)
    authorized_person: str | None = Field(default=None, max_length=200)
    account_number: str | None = Field(default=None, max_length=60)
    pin: str | None = Field(default=None, max_length=20)
    billing_phone_number: str | None = Field(default=None, max_length=20)
    e911_address_id: str | None = Field(default=None, max_length=40)
    agent_id: str | None = Field(default=None, max_length=40)
    cnam: str | None = Field(default=None, max_length=15)


class CreateRequest(OrderFields):
    phone_numbers: list[str] = Field(min_length=1, max_length=100)
    tenant_id: str | None = Field(default=None, max_length=40)


class SubmitRequest(RequestModel):
    foc_date: date | None = None


class PinRequest(RequestModel):
    pin: str = Field(max_length=10)


class PortabilityOut(ResponseModel):
    phone_number: str
    portable: bool
    fast_portable: bool
    reason: str | None
    losing_carrier: str | None


class PortNumberOut(ResponseModel):
    phone_number: str
    fast_portable: bool
    losing_carrier: str | None
    carrier_order_id: str | None
    number_id: str | None


class CarrierOrderOut(ResponseModel):
    carrier_order_id: str
    status: str
    losing_carrier: str | None
    foc_date: str | None
    reason: str | None
    phone_numbers: list[str]


class DocumentOut(ResponseModel):
    id: str
    kind: str
    filename: str
    content_type: str
    size: int
    signed: bool
    created_at: str | None


class PortOrderOut(ResponseModel):
    id: str
    status: str
    next_step: str
    owner_id: str
    tenant_id: str
    carrier: str
    entity_name: str
    authorized_person: str
    account_number: str
    pin_set: bool
    billing_phone_number: str
    e911_address_id: str | None
    agent_id: str | None
    cnam: str | None
    foc_date_requested: str | None
    foc_date: str | None
    ported_on: str | None
    reason: str | None
    phone_numbers: list[PortNumberOut]
    carrier_orders: list[CarrierOrderOut]
    documents: list[DocumentOut]
    created_at: str | None
    submitted_at: str | None


class FocDatesOut(ResponseModel):
    foc_dates: list[str]


class PinOut(ResponseModel):
    set_on: list[str]
    refused: dict[str, str]


def portability_shape(p: Portability) -> dict[str, Any]:
    return {
        "phone_number": p.phone_number,
        "portable": p.portable,
        "fast_portable": p.fast_portable,
        "reason": p.reason,
        "losing_carrier": p.losing_carrier,
    }


def order_shape(session: Session, order: PortOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "next_step": lifecycle.NEXT_STEP[order.status],
        "owner_id": order.owner_id,
        "tenant_id": order.tenant_id,
        "carrier": order.carrier,
        "entity_name": order.entity_name,
        "authorized_person": order.authorized_person,
        # Only the last 4 characters: the account number is the losing
        # carrier's key to the customer's account.
        "account_number": "…" + order.account_number[-4:],
        "pin_set": order.pin is not None,
        "billing_phone_number": order.billing_phone_number,
        "e911_address_id": order.e911_address_id,
        "agent_id": order.agent_id,
        "cnam": order.cnam,
        "foc_date_requested": when(order.foc_date_requested),
        "foc_date": when(order.foc_date),
        "ported_on": when(order.ported_on),
        "reason": order.reason,
        "phone_numbers": [
            {
                "phone_number": r.e164,
                "fast_portable": r.fast_portable,
                "losing_carrier": r.losing_carrier,
                "carrier_order_id": r.carrier_order_id,
                "number_id": r.number_id,
            }
            for r in porting.port_numbers(session, order.id)
        ],
        "carrier_orders": [
            {
                "carrier_order_id": c.carrier_order_id,
                "status": c.status,
                "losing_carrier": c.losing_carrier,
                "foc_date": when(c.foc_date),
                "reason": c.reason,
                "phone_numbers": list(c.phone_numbers),
            }
            for c in porting.carrier_orders(session, order.id)
        ],
        "documents": [
            {
                "id": d.id,
                "kind": d.kind,
                "filename": d.filename,
                "content_type": d.content_type,
                "size": d.size,
                "signed": d.signed,
                "created_at": when(d.created_at),
            }
            for d in porting.order_documents(session, order.id)
        ],
        "created_at": when(order.created_at),
        "submitted_at": when(order.submitted_at),
    }
