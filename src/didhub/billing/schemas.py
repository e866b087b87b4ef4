from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TopupRequest(_Strict):
    amount: Decimal = Field(description="Amount to charge to the card on file, e.g. 25.00")


class CardRequest(_Strict):
    card_token: str = Field(
        min_length=1,
        max_length=255,
        description="The gateway's token for the card (Stripe: pm_…; sandbox: tok_visa)",
    )


class AutoRechargeRequest(_Strict):
    enabled: bool
    threshold: Decimal = Decimal("0")
    amount: Decimal = Decimal("0")


class CallRecordIn(_Strict):
    phone_number: str = Field(description="The DID, E.164")
    direction: str = Field(description="inbound or outbound")
    started_at: AwareDatetime
    # Longer than DIDHUB_MAX_CALL_SECONDS is reported back in ``rejected``, not a 422.
    duration_seconds: int = Field(ge=0)
    call_id: str = Field(min_length=1, max_length=255)


class UsageRequest(_Strict):
    records: list[CallRecordIn] = Field(min_length=1, max_length=10_000)


class RetailPriceRequest(_Strict):
    tenant_id: str | None = Field(
        default=None, description="A tenant's override; omit for the default for all tenants"
    )
    phone_number_type: str = "local"
    monthly: Decimal
    setup: Decimal = Decimal("0")
    per_minute_inbound: Decimal = Decimal("0")
    per_minute_outbound: Decimal = Decimal("0")
