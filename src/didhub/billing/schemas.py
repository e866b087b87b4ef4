from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, Field

from didhub.inputs import Amount, BigInt, RequestModel
from didhub.outputs import ResponseModel


class _Strict(RequestModel):
    """Unknown fields refused, text stripped and checked (``didhub.inputs``)."""


class TopupRequest(_Strict):
    amount: Amount = Field(description="Amount to charge to the card on file, e.g. 25.00")


class CardRequest(_Strict):
    card_token: str = Field(
        min_length=1,
        max_length=255,
        description="The gateway's token for the card (Stripe: pm_…; sandbox: tok_visa)",
    )


class AutoRechargeRequest(_Strict):
    enabled: bool
    threshold: Amount = Decimal("0")
    amount: Amount = Decimal("0")


class CallRecordIn(_Strict):
    phone_number: str = Field(description="The DID, E.164")
    direction: str = Field(description="inbound or outbound")
    started_at: AwareDatetime
    # Longer than DIDHUB_MAX_CALL_SECONDS is reported back in ``rejected``, not a 422.
    duration_seconds: BigInt = Field(ge=0)
    call_id: str = Field(min_length=1, max_length=255)


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


# ------------------------------------------------------------------ answers


class CardOut(ResponseModel):
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    gateway: str


class AutoRechargeOut(ResponseModel):
    enabled: bool
    threshold: str
    amount: str


class WalletOut(ResponseModel):
    balance: str
    currency: str
    standing: str
    past_due_since: str | None
    suspended_since: str | None
    auto_recharge: AutoRechargeOut
    card: CardOut | None


class TopupOut(ResponseModel):
    charge_id: str
    status: str
    amount: str
    balance: str
    renewals_paid: int
    currency: str


class BillingEventOut(ResponseModel):
    id: int
    kind: str
    message: str
    data: dict[str, Any]
    created_at: str | None


class TransactionOut(ResponseModel):
    id: int
    transaction_id: str
    kind: str
    description: str
    reference: str | None
    amount: str
    currency: str
    created_at: str | None


class TransactionsMeta(ResponseModel):
    next_before: int | None = Field(description="Pass as ?before= for the next page")


class TransactionsAnswer(ResponseModel):
    data: list[TransactionOut]
    meta: TransactionsMeta


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
