from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, Field

from didhub.inputs import Amount, BigInt, RequestModel


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
