"""The Stripe payment gateway, over the official ``stripe`` package's ``StripeClient``.

Cards are tokenised client-side (Stripe.js / mobile SDK) into a PaymentMethod
``pm_…``; :meth:`StripeGateway.attach_card` attaches it to a Customer so that
:meth:`StripeGateway.charge` can confirm an off-session PaymentIntent against it.

How Stripe's answers map onto the :class:`~didhub.payments.base.PaymentGateway`
protocol:

- PaymentIntent ``succeeded`` → ``ChargeResult("succeeded", pi_…)``.
- 402 ``card_error`` (declined, insufficient funds, expired, authentication_required…)
  → ``ChargeResult("declined", pi_… or None, decline_code, message)``.
- PaymentIntent ``requires_action`` → declined, ``authentication_required``;
  ``requires_payment_method`` → declined with ``last_payment_error``'s code (else
  ``authentication_required``); ``canceled`` → declined.
- PaymentIntent ``processing``, a timeout, a connection error, 409, or 5xx / 429 once
  the retries are spent → raise ``PaymentOutcomeUnknown``.
- 401, 403, 400 ``invalid_request_error`` / ``idempotency_error`` → raise
  ``StripeConfigurationError`` (our bug or configuration, not the customer's card).

Retries: the stripe client itself retries connection errors, timeouts, 409 and 5xx
``max_retries`` times, always with the same ``Idempotency-Key`` header; it does not
retry a plain 429, so this module retries those (also ``max_retries`` times, same key).
Replaying a request with the same key is safe: Stripe answers the first attempt's result.

The API key is handed to the stripe client and kept nowhere else: it is never logged
and does not appear in ``repr()``.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeVar

import stripe

from didhub.payments.base import CardDetails, ChargeResult, PaymentDeclined, PaymentOutcomeUnknown

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        PaymentIntentCreateParams,
        PaymentMethodAttachParams,
    )

__all__ = ["StripeConfigurationError", "StripeGateway", "to_minor_units"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Stripe's zero-decimal and three-decimal currencies: their minor unit is not a
# hundredth, so "Decimal × 100" would charge the wrong amount. Not supported (yet).
_NOT_TWO_DECIMAL: Final = frozenset(
    {
        # zero-decimal
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
        "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
        # three-decimal
        "bhd", "jod", "kwd", "omr", "tnd",
    }
)  # fmt: skip
_CURRENCY = re.compile(r"^[a-z]{3}$")
_PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]+$")
_MAX_IDEMPOTENCY_KEY = 255  # Stripe's limit
_RATE_LIMIT_INITIAL_DELAY = 0.5
_RATE_LIMIT_MAX_DELAY = 5.0

# Tests replace this to keep the 429 back-off instant.
_sleep: Callable[[float], None] = time.sleep


class StripeConfigurationError(RuntimeError):
    """Stripe refused the request itself (bad API key, missing permission, invalid
    parameters, reused idempotency key): a bug or misconfiguration on our side, not
    something the customer's card did. Carries Stripe's message."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = request_id

    @classmethod
    def from_stripe(cls, error: stripe.StripeError) -> StripeConfigurationError:
        return cls(
            _message(error),
            http_status=error.http_status,
            code=error.code,
            request_id=error.request_id,
        )


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34")`` USD → ``1234``. Refuses sub-cent precision, amounts that
    are not positive, and currencies whose minor unit isn't a hundredth."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a decimal.Decimal, not {type(amount).__name__}")
    currency = currency.lower()
    if not _CURRENCY.match(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    if currency in _NOT_TWO_DECIMAL:
        raise ValueError(f"{currency.upper()} is not a two-decimal currency; not supported")
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"cannot charge {amount}")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} has sub-cent precision")
    return int(cents)


def _message(error: stripe.StripeError) -> str:
    if error.error is not None and error.error.message:
        return error.error.message
    return error.user_message or type(error).__name__


class StripeGateway:
    """:class:`~didhub.payments.base.PaymentGateway` backed by Stripe (PaymentMethods,
    Customers and off-session PaymentIntents)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.stripe.com",
        timeout: float = 20.0,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base_url},
            http_client=self._http,
            max_network_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"StripeGateway(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        # HTTPXClient.close() carries no annotations in the stripe package.
        self._http.close()  # type: ignore[no-untyped-call]

    # -- PaymentGateway -----------------------------------------------------------------

    def attach_card(self, account_id: str, card_token: str, customer: str | None) -> CardDetails:
        if not _PAYMENT_METHOD_ID.match(card_token):
            raise PaymentDeclined(f"{card_token!r} is not a Stripe PaymentMethod id (pm_…)")
        try:
            if customer is None:
                customer = self._create_customer(account_id)
            attach: PaymentMethodAttachParams = {"customer": customer}
            payment_method = self._rate_limited(
                lambda: self._client.v1.payment_methods.attach(card_token, params=attach)
            )
        except stripe.CardError as e:
            raise PaymentDeclined(_message(e)) from e
        except stripe.InvalidRequestError as e:
            if _is_missing_payment_method(e):
                raise PaymentDeclined(_message(e)) from e
            raise StripeConfigurationError.from_stripe(e) from e
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as e:
            log.warning("stripe: attaching %s: no usable answer (%s)", card_token, type(e).__name__)
            raise PaymentOutcomeUnknown(
                f"Stripe did not answer usably while attaching the card: {_message(e)}"
            ) from e
        except stripe.StripeError as e:
            raise StripeConfigurationError.from_stripe(e) from e

        card = payment_method.card
        if payment_method.type != "card" or card is None:
            raise PaymentDeclined(f"{card_token} is a {payment_method.type}, not a card")
        return CardDetails(
            token=payment_method.id,
            last4=card.last4,
            brand=card.brand,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            customer=customer,
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
        minor = to_minor_units(amount, currency)
        if not idempotency_key or len(idempotency_key) > _MAX_IDEMPOTENCY_KEY:
            raise ValueError("idempotency_key must be 1 to 255 characters")
        if card.customer is None:
            raise ValueError("a Stripe card must belong to a customer to be charged off-session")
        params: PaymentIntentCreateParams = {
            "amount": minor,
            "currency": currency.lower(),
            "customer": card.customer,
            "payment_method": card.token,
            # Off-session: nobody is there to follow a redirect, and without this
            # Stripe refuses confirm=true with no return_url.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "confirm": True,
            "off_session": True,
            "description": description,
        }
        try:
            intent = self._rate_limited(
                lambda: self._client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": idempotency_key}
                )
            )
        except stripe.CardError as e:
            return _declined(e)
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as e:
            # Timeouts, connection errors, 409 (a concurrent request with this key),
            # 5xx and 429 once the retries are spent: the charge may or may not exist.
            log.warning(
                "stripe: charge %s: outcome unknown (%s, request %s)",
                idempotency_key,
                type(e).__name__,
                e.request_id,
            )
            raise PaymentOutcomeUnknown(
                f"Stripe did not answer usably; retry with the same idempotency key: {_message(e)}"
            ) from e
        except stripe.StripeError as e:
            raise StripeConfigurationError.from_stripe(e) from e
        return _result(intent, idempotency_key)

    # -- helpers ------------------------------------------------------------------------

    def _create_customer(self, account_id: str) -> str:
        params: CustomerCreateParams = {"metadata": {"didhub_account_id": account_id}}
        # One key per account: a retried attach within Stripe's 24h idempotency
        # window gets the same Customer back instead of making a second one.
        key = f"didhub-customer-{account_id}"
        created = self._rate_limited(
            lambda: self._client.v1.customers.create(
                params=params, options={"idempotency_key": key}
            )
        )
        return created.id

    def _rate_limited(self, call: Callable[[], _T]) -> _T:
        """Run ``call``, retrying a 429 up to ``max_retries`` times with exponential
        back-off (the stripe client retries 5xx/409/network errors, not 429)."""
        attempt = 0
        while True:
            try:
                return call()
            except stripe.RateLimitError:
                if attempt >= self.max_retries:
                    raise
                delay = min(_RATE_LIMIT_INITIAL_DELAY * 2**attempt, _RATE_LIMIT_MAX_DELAY)
                _sleep(delay * random.uniform(0.5, 1.0))
                attempt += 1


def _is_missing_payment_method(error: stripe.InvalidRequestError) -> bool:
    """Stripe's answer to a bad/unknown ``pm_…`` (``resource_missing``), as opposed
    to an unknown customer, which is our bug."""
    if error.code != "resource_missing":
        return False
    return error.param != "customer" and not _message(error).lower().startswith("no such customer")


def _declined(error: stripe.CardError) -> ChargeResult:
    details = error.error
    intent = details.payment_intent if details is not None else None
    code = details.code if details is not None else error.code
    decline_code = details.decline_code if details is not None else None
    if code == "authentication_required":
        decline_code = "authentication_required"
    return ChargeResult(
        "declined",
        intent.id if intent is not None else None,
        decline_code or code or "card_declined",
        _message(error),
    )


def _result(intent: stripe.PaymentIntent, idempotency_key: str) -> ChargeResult:
    status = intent.status
    if status == "succeeded":
        return ChargeResult("succeeded", intent.id)
    if status == "requires_action":
        return ChargeResult(
            "declined",
            intent.id,
            "authentication_required",
            "The card's issuer requires the cardholder to authenticate this payment.",
        )
    if status == "requires_payment_method":
        last = intent.last_payment_error
        code = (last.decline_code or last.code) if last is not None else None
        message = last.message if last is not None else None
        return ChargeResult(
            "declined",
            intent.id,
            code or "authentication_required",
            message or "The card's issuer requires the cardholder to authenticate this payment.",
        )
    if status == "canceled":
        return ChargeResult(
            "declined",
            intent.id,
            intent.cancellation_reason or "canceled",
            "The payment was canceled.",
        )
    if status == "processing":
        raise PaymentOutcomeUnknown(
            f"Stripe is still processing {intent.id}; retry with the same idempotency key later"
        )
    # requires_capture / requires_confirmation: we asked for neither.
    raise StripeConfigurationError(
        f"unexpected PaymentIntent status {status!r} for {intent.id} (key {idempotency_key})"
    )
