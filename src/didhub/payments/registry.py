"""Which payment gateway a deployment uses (``DIDHUB_PAYMENT_GATEWAY``)."""

from __future__ import annotations

from didhub.config import Settings
from didhub.db import Database
from didhub.payments.base import PaymentGateway


def make_gateway(settings: Settings, db: Database) -> PaymentGateway:
    if settings.payment_gateway == "sandbox":
        from didhub.payments.sandbox_gateway import SandboxGateway

        return SandboxGateway(db)
    if settings.payment_gateway == "stripe":
        from didhub.payments.stripe_gateway import StripeGateway

        if not settings.stripe_api_key:
            raise ValueError("DIDHUB_STRIPE_API_KEY is required with DIDHUB_PAYMENT_GATEWAY=stripe")
        return StripeGateway(settings.stripe_api_key)
    raise ValueError(
        f"unknown payment gateway {settings.payment_gateway!r} (DIDHUB_PAYMENT_GATEWAY); "
        "known: sandbox, stripe"
    )
