from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, Field

from didhub.inputs import Amount, BigInt, RequestModel
from didhub.outputs import CursorMeta, ResponseModel


class _Strict(RequestModel):
    """Unknown fields refused, text stripped and checked (``didhub.inputs``)."""


class CallRecordIn(_Strict):
    phone_number: str = Field(description="The DID, E.164")
    direction: str = Field(description="inbound or outbound")
    started_at: AwareDatetime
    # Longer than DIDHUB_MAX_CALL_SECONDS is reported back in ``rejected``, not a 422.
    duration_seconds: BigInt = Field(ge=0)
    call_id: str = Field(min_length=1, max_length=255)
    destination: str | None = Field(
        default=None, max_length=32, description="An outbound call's dialled number, E.164"
    )


class UsageRequest(_Strict):
    records: list[CallRecordIn] = Field(min_length=1, max_length=10_000)


class RetailPriceRequest(_Strict):
    tenant_id: str | None = Field(
        default=None, description="A tenant's override; omit for the default for all tenants"
    )
    phone_number_type: str = "local"
    monthly: Amount
    setup: Amount = Decimal("0")
    per_minute_inbound: Amount = Decimal("0")
    per_minute_outbound: Amount = Decimal("0")
    outbound_markup_percent: Amount = Field(
        default=Decimal("0"),
        description="Percent over the platform's rate for outbound calls rated by destination "
        "(the tenant pays at least per_minute_outbound)",
    )


class UsageReportOut(ResponseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]
    charged: str


class RetailPriceOut(ResponseModel):
    tenant_id: str | None
    phone_number_type: str
    monthly: str
    setup: str
    per_minute_inbound: str
    per_minute_outbound: str
    outbound_markup_percent: str


class MarginLineOut(ResponseModel):
    tenant_id: str
    tenant_name: str
    month: str
    retail: str
    wholesale: str
    margin: str
    currency: str


class InvoiceTaxOut(ResponseModel):
    name: str
    rate: str
    included: str


class InvoiceLineOut(ResponseModel):
    date: str
    kind: str
    description: str
    phone_number: str | None
    period_start: str | None
    period_end: str | None
    minutes: int | None
    amount: str


class InvoiceSummaryOut(ResponseModel):
    account_id: str
    month: str
    currency: str
    opening_balance: str
    credits: str
    charges: str
    closing_balance: str
    tax: InvoiceTaxOut | None


class InvoiceOut(InvoiceSummaryOut):
    lines: list[InvoiceLineOut]


class CallOut(ResponseModel):
    id: int
    call_id: str
    phone_number: str
    number_id: str
    direction: str
    started_at: str | None
    duration_seconds: int
    billable_seconds: int
    charge: str | None
    currency: str
    tenant_id: str | None
    destination: str | None = None


class CallList(ResponseModel):
    data: list[CallOut]
    meta: CursorMeta
