"""The sandbox payment gateway: Stripe-like test cards, nothing leaves the machine.

| card number / token | what happens |
|---|---|
| 4242 4242 4242 4242, `tok_visa` | charges succeed |
| 5555 5555 5555 4444, `tok_mastercard` | charges succeed |
| 4000 0000 0000 0002, `tok_chargeDeclined` | declined: `card_declined` |
| 4000 0000 0000 9995, `tok_chargeDeclinedInsufficientFunds` | declined: `insufficient_funds` |
| 4000 0000 0000 0119, `tok_timeout` | the charge happens but the answer times out (once per key) |

Charges are remembered by idempotency key in ``sandbox_charges``, so a retry with
the same key answers the first attempt's result and never charges twice.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from didhub import clock
from didhub.db import Database, new_id
from didhub.payments.base import CardDetails, ChargeResult, PaymentDeclined, PaymentOutcomeUnknown
from didhub.payments.models import SandboxCharge

_CARDS: dict[str, tuple[str, str, str]] = {
    # token: (behaviour, brand, last4)
    "tok_visa": ("succeed", "visa", "4242"),
    "tok_mastercard": ("succeed", "mastercard", "4444"),
    "tok_chargeDeclined": ("card_declined", "visa", "0002"),
    "tok_chargeDeclinedInsufficientFunds": ("insufficient_funds", "visa", "9995"),
    "tok_timeout": ("timeout", "visa", "0119"),
}
_NUMBERS = {
    "4242424242424242": "tok_visa",
    "5555555555554444": "tok_mastercard",
    "4000000000000002": "tok_chargeDeclined",
    "4000000000009995": "tok_chargeDeclinedInsufficientFunds",
    "4000000000000119": "tok_timeout",
}


class SandboxGateway:
    name = "sandbox"

    def __init__(self, db: Database) -> None:
        self.db = db

    def attach_card(self, account_id: str, card_token: str, customer: str | None) -> CardDetails:
        token = _NUMBERS.get(card_token.replace(" ", "").replace("-", ""), card_token)
        if token not in _CARDS:
            raise PaymentDeclined(
                f"{card_token!r} is not a sandbox test card; use tok_visa or 4242 4242 4242 4242"
            )
        _, brand, last4 = _CARDS[token]
        return CardDetails(
            token=token,
            last4=last4,
            brand=brand,
            exp_month=12,
            exp_year=clock.now().year + 3,
            customer=customer or f"cus_sandbox_{account_id}",
        )

    def charge(
        self,
        *,
        card: CardDetails,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        description: str,
    ) -> ChargeResult:
        behaviour = _CARDS.get(card.token, ("card_declined", "", ""))[0]
        try:
            return self._charge(card, amount, currency, idempotency_key, behaviour)
        except IntegrityError:
            # Stripe answers 409 idempotency_key_in_use to a request made while
            # another with its key is under way: we can't tell the outcome yet.
            raise PaymentOutcomeUnknown(
                "sandbox: a charge with this idempotency key is still in progress"
            ) from None

    def _charge(
        self,
        card: CardDetails,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        behaviour: str,
    ) -> ChargeResult:
        with self.db.session() as session:
            charge = session.get(SandboxCharge, idempotency_key)
            first_time = charge is None
            if charge is None:
                declined = behaviour not in ("succeed", "timeout")
                charge = SandboxCharge(
                    idempotency_key=idempotency_key,
                    charge_id=new_id("pi"),
                    token=card.token,
                    amount=amount,
                    currency=currency,
                    status="declined" if declined else "succeeded",
                    decline_code=behaviour if declined else None,
                    created_at=clock.now(),
                )
                session.add(charge)
            status, charge_id, code = charge.status, charge.charge_id, charge.decline_code
        if first_time and behaviour == "timeout":
            # Stored before the "timeout": the money moved, the answer didn't.
            raise PaymentOutcomeUnknown("sandbox: the gateway did not answer in time")
        if status == "succeeded":
            return ChargeResult("succeeded", charge_id)
        message = (
            "Your card has insufficient funds."
            if code == "insufficient_funds"
            else "Your card was declined."
        )
        return ChargeResult("declined", charge_id, code, message)
