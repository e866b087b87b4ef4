"""The one PaymentGateway protocol; the sandbox and Stripe implement it.

Only the gateway's own token for a card and what a person needs to recognise
it (brand, last 4, expiry) are ever stored: never a card number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol


@dataclass(frozen=True)
class CardDetails:
    """A card the gateway holds for us. ``token`` is the gateway's id for it
    (a Stripe PaymentMethod ``pm_…``), ``customer`` its customer id if it has one."""

    token: str
    last4: str
    brand: str
    exp_month: int
    exp_year: int
    customer: str | None = None


@dataclass(frozen=True)
class ChargeResult:
    status: Literal["succeeded", "declined"]
    charge_id: str | None  # the gateway's id (a PaymentIntent ``pi_…``)
    decline_code: str | None = None
    message: str | None = None


class PaymentDeclined(Exception):
    """The gateway refused to store a card (bad token, expired...)."""


class PaymentOutcomeUnknown(Exception):
    """We can't tell whether the charge happened (timeout, 5xx after retries).
    Retrying with the same idempotency key is safe: the gateway answers the
    first attempt's result."""


class PaymentGateway(Protocol):
    name: str

    def attach_card(self, account_id: str, card_token: str, customer: str | None) -> CardDetails:
        """Store a card the client tokenised (a Stripe ``pm_…`` or a sandbox test
        token) for off-session charges; raises PaymentDeclined if it can't."""
        ...

    def charge(
        self,
        *,
        card: CardDetails,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> ChargeResult:
        """Charge a stored card off-session. The same ``idempotency_key`` never
        charges twice. Raises PaymentOutcomeUnknown when the outcome is unknown."""
        ...
