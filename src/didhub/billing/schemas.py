from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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
