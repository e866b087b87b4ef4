"""Configuration, from ``DIDHUB_*`` environment variables (or a ``.env`` file).

The price list is wholesale by number type: what the platform charges an account
for a number each month and once at setup.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Price(BaseModel):
    monthly: Decimal
    setup: Decimal


def _default_prices() -> dict[str, Price]:
    return {
        "local": Price(monthly=Decimal("1.00"), setup=Decimal("1.00")),
        "mobile": Price(monthly=Decimal("1.00"), setup=Decimal("1.00")),
        "toll-free": Price(monthly=Decimal("2.50"), setup=Decimal("5.00")),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DIDHUB_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = "sqlite:///./didhub.db"
    carrier: str = "sandbox"
    sandbox_seed: str = "didhub"
    hold_minutes: int = Field(default=10, ge=1, le=240)
    currency: str = "USD"
    prices: dict[str, Price] = Field(default_factory=_default_prices)
    # Shared secret the SIP edge presents on /routing/inbound; unset = open (loopback dev).
    edge_token: str | None = None
    unassigned_announcement: str = "This number isn't configured"
    suspended_announcement: str = "This number is temporarily unavailable"
    payment_gateway: str = "sandbox"
    stripe_api_key: str | None = None
    # Days a past-due account keeps service, then days suspended before release.
    # Seconds between the server's periodic sweeps (renewals, reconcile); 0 = off.
    sweep_seconds: int = Field(default=300, ge=0)
    grace_days: int = Field(default=7, ge=0)
    release_after_days: int = Field(default=30, ge=0)


@cache
def get_settings() -> Settings:
    return Settings()
