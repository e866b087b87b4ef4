"""The wallet's request and answer shapes."""

from decimal import Decimal
from typing import Any

from pydantic import Field

from didhub.inputs import Amount, RequestModel
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
