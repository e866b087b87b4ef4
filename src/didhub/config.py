"""Configuration, from ``DIDHUB_*`` environment variables (or a ``.env`` file).

The price list is wholesale by number type: what the platform charges an account
for a number each month and once at setup.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError


class Price(BaseModel):
    monthly: Decimal
    setup: Decimal


def _price_problem(value: Decimal) -> str | None:
    """Why an amount can't be a price (in whole cents, free allowed), or None."""
    if not value.is_finite():
        return "must be a number"
    if value < 0:
        return "must be zero or more"
    if value != value.quantize(Decimal("0.01")):
        return "must have at most 2 decimal places"
    return None


def _default_prices() -> dict[str, Price]:
    return {
        "local": Price(monthly=Decimal("1.00"), setup=Decimal("1.00")),
        "mobile": Price(monthly=Decimal("1.00"), setup=Decimal("1.00")),
        "toll-free": Price(monthly=Decimal("2.50"), setup=Decimal("5.00")),
    }


def _default_usage_rates() -> dict[str, dict[str, Decimal]]:
    # Per minute, by number type and call direction. Toll-free inbound is charged
    # (the caller doesn't pay); local inbound is free by default.
    return {
        "local": {"inbound": Decimal("0.0000"), "outbound": Decimal("0.0100")},
        "mobile": {"inbound": Decimal("0.0000"), "outbound": Decimal("0.0150")},
        "toll-free": {"inbound": Decimal("0.0250"), "outbound": Decimal("0.0100")},
    }


# The FCC's minimum aging period for a disconnected US number (47 CFR
# 52.15(f)(1)(ii), FCC 18-177): a caller still dialling the old owner doesn't
# reach the next one at once.
NUMBER_AGING_DAYS = 45


class CarrierScope(BaseModel):
    """Where a carrier is asked for numbers in a multi-carrier search."""

    countries: list[str] = Field(default_factory=lambda: ["US", "CA"])
    number_types: list[str] = Field(default_factory=lambda: ["local", "toll-free"])


def _default_carrier_scopes() -> dict[str, CarrierScope]:
    return {
        "telnyx": CarrierScope(
            countries=["US", "CA", "GB", "AU"], number_types=["local", "toll-free", "mobile"]
        ),
        "twilio": CarrierScope(
            countries=["US", "CA", "GB", "AU"], number_types=["local", "toll-free", "mobile"]
        ),
        "bandwidth": CarrierScope(countries=["US"], number_types=["local", "toll-free"]),
        "stock": CarrierScope(countries=["US", "CA"], number_types=["local", "toll-free"]),
        "sandbox": CarrierScope(
            countries=["US", "CA", "GB", "AU"], number_types=["local", "toll-free", "mobile"]
        ),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DIDHUB_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = "sqlite:///./didhub.db"
    # Connections one process keeps (pool) and may open beyond (overflow). A
    # server runs at most this many requests at once in its threads, so a
    # request never waits on the pool; size PostgreSQL's max_connections for
    # every process (docs/operations.md, "Sizing").
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # Requests a server runs at once (its threads); unset: one per connection
    # above. More threads than connections: requests beyond the pool wait for
    # a connection, so fewer transactions contend for Python's one core and
    # for PostgreSQL's row locks (docs/operations.md, "Sizing").
    request_threads: int | None = Field(default=None, ge=1, le=400)
    # sandbox | stock | telnyx | twilio | bandwidth | multi (= every carrier of `carriers`).
    carrier: str = "sandbox"
    # The carriers a multi-carrier deployment searches, in order of preference
    # (DIDHUB_CARRIERS=telnyx,twilio or a JSON list), and where each is asked
    # (DIDHUB_CARRIER_SCOPES='{"twilio": {"countries": ["US"], "number_types": ["local"]}}').
    carriers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    carrier_scopes: dict[str, CarrierScope] = Field(default_factory=_default_carrier_scopes)
    # Seconds a multi-carrier search waits for each carrier before answering without it.
    carrier_search_deadline_seconds: float = Field(default=8.0, gt=0, le=60)
    carrier_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Days a released number ages before the sandbox or stock carrier sells it
    # again (the FCC's minimum for US numbers is 45; docs/operations.md).
    number_aging_days: int = Field(default=NUMBER_AGING_DAYS, ge=0, le=365)
    carrier_max_attempts: int = Field(default=4, ge=1, le=10)
    # Seconds an order waits for a carrier's asynchronous completion before
    # answering "unknown" (reconcile settles it later).
    carrier_order_wait_seconds: float = Field(default=10.0, ge=0, le=120)
    carrier_search_limit: int = Field(default=100, ge=1, le=1000)
    telnyx_api_key: SecretStr | None = None
    telnyx_base_url: str = "https://api.telnyx.com"
    telnyx_connection_id: str | None = None
    telnyx_messaging_profile_id: str | None = None
    # The account's webhook public key (Telnyx portal, base64 Ed25519): order
    # webhooks to POST /carriers/telnyx/webhooks are accepted only when signed by it.
    telnyx_public_key: str | None = None
    telnyx_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    twilio_account_sid: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    bandwidth_account_id: SecretStr | None = None
    bandwidth_username: SecretStr | None = None
    bandwidth_password: SecretStr | None = None
    bandwidth_site_id: str | None = None
    bandwidth_peer_id: str | None = None
    bandwidth_base_url: str = "https://dashboard.bandwidth.com"
    sandbox_seed: str = "didhub"
    # Porting (docs/porting.md): the sandbox's port moves one step per this many
    # seconds (0: as far as the FOC date allows at each look).
    sandbox_port_step_seconds: float = 60.0
    # Where porting documents (LOAs, bills) are kept: ``local`` (files under
    # ``data_dir``) or ``s3`` (an S3-compatible bucket, the s3_* settings below;
    # docs/porting.md).
    data_dir: str = "./data"
    document_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    # Keys are <s3_prefix><order id>/<document id>.<ext>.
    s3_prefix: str = "didhub/porting/"
    # An S3-compatible server's URL (MinIO, Ceph, R2...); unset: AWS's own.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Unset: boto3's own chain (AWS_* variables, ~/.aws, an instance role).
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # How long a request to the store may take before it is reported unreachable.
    s3_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    hold_minutes: int = Field(default=10, ge=1, le=240)
    # A quote holds numbers only within the account's allowance: at most this
    # many numbers, worth at most its wallet balance (plus hold_card_allowance
    # when auto-recharge would charge its card), each for at most
    # hold_max_total_minutes in a row however often it is quoted again.
    hold_max_numbers: int = Field(default=100, ge=1, le=10_000)
    hold_card_allowance: Decimal = Field(default=Decimal("500.00"), ge=0, le=1_000_000)
    hold_max_total_minutes: int = Field(default=30, ge=1, le=24 * 60)
    currency: str = "USD"
    prices: dict[str, Price] = Field(default_factory=_default_prices)
    usage_rates: dict[str, dict[str, Decimal]] = Field(default_factory=_default_usage_rates)
    # Calls are billed in increments of this many seconds, with a minimum.
    usage_increment_seconds: int = Field(default=6, ge=1)
    usage_minimum_seconds: int = Field(default=6, ge=0)
    # An outbound call with a destination no prefix of the outbound rate table
    # covers is rated at this a minute (``didhub outbound rates-import``).
    outbound_default_rate: Decimal = Field(default=Decimal("0.0200"), ge=0, le=100)
    # The longest call billed: the SIP edge ends a call at this length (Kamailio's
    # dialog timeout, MAX_CALL_SECONDS in deploy/kamailio/kamailio.cfg, must be the
    # same), and a longer usage record is reported back, not charged. 4 hours,
    # as carriers cap calls by default.
    max_call_seconds: int = Field(default=14_400, ge=60, le=7 * 24 * 3600)
    # The platform's SIP edge (e.g. sip:edge.example.com): where an imported
    # number's provider route (connection, trunk, SIP peer) must send calls.
    sip_edge_uri: str | None = None
    # The bearer token the SIP edge presents on /routing/inbound and /billing/usage;
    # unset, one is generated into edge_token_file on first start (`didhub edge
    # token` prints it). edge_trust_loopback lets requests from this machine in
    # without it (labs only: behind a reverse proxy on the host, every request
    # is local).
    edge_token: str | None = Field(default=None, min_length=16)
    edge_token_file: str = "didhub-edge.token"
    edge_trust_loopback: bool = False
    unassigned_announcement: str = "This number isn't configured"
    # Where the SIP edge sends calls forwarded to a phone number (host[:port]
    # of a PSTN gateway) and calls for voicemail ("sip:{mailbox}@vm.example").
    pstn_gateway: str | None = None
    # The SIP digest realm agents authenticate to on the edge (outbound calls).
    sip_realm: str = "didhub"
    voicemail_uri: str | None = None
    suspended_announcement: str = "This number is temporarily unavailable"
    # Inbound routes are kept in memory (routing/cache.py). A change made through
    # this server is routed at once; one committed by another process (the CLI,
    # another server) within about this many seconds. 0 = no cache.
    routing_cache_seconds: float = Field(default=0.1, ge=0, le=60)
    payment_gateway: str = "sandbox"
    stripe_api_key: str | None = None
    # The publishable key (pk_live_… / pk_test_…): the dashboard's card entry
    # is then Stripe's card element (Stripe.js from js.stripe.com).
    stripe_publishable_key: str | None = None
    # Seconds between rounds of the periodic jobs (renewals, reconcile, CNAM and
    # E911 re-pushes, card charges); 0 = off. On PostgreSQL a schedule's step
    # must divide the minute or the hour: the nearest such step not more often
    # is used (7 -> every 10 s). See docs/operations.md, "Periodic jobs".
    sweep_seconds: int = Field(default=300, ge=0)
    # How long an Idempotency-Key's answer is replayed (then the key is forgotten).
    idempotency_keep_hours: float = Field(default=24, gt=0)
    # Whether `didhub serve` runs the periodic jobs itself: in-process on SQLite,
    # as a job-queue worker on PostgreSQL (beside any `didhub worker`).
    serve_jobs: bool = True
    # Log lines as JSON objects (one a line, with the request id) or as text
    # (docs/operations.md, "Logs").
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    # GET /metrics: answered to a caller bearing this token (Authorization:
    # Bearer …), or, without one, only to callers on this machine (loopback).
    metrics_token: SecretStr | None = None
    # Connections a renewal run bills on at once (PostgreSQL; SQLite uses one).
    renewal_workers: int = Field(default=2, ge=1, le=16)
    # Days a past-due account keeps service, then days suspended before release.
    grace_days: int = Field(default=7, ge=0)
    # What releasing a number mid-month gives back: "none" (the month is kept)
    # or "prorated" (the unused days, rounded down to the cent).
    release_refund: Literal["none", "prorated"] = "none"
    # Prices include this tax where one is configured (e.g. DIDHUB_TAX_NAME=GST,
    # DIDHUB_TAX_RATE=0.10): invoices show the tax contained in the charges.
    tax_name: str | None = None
    tax_rate: Decimal = Field(default=Decimal("0"), ge=0, le=1)
    release_after_days: int = Field(default=30, ge=0)
    # Seconds between the server's webhook delivery runs; 0 = off (run
    # `didhub webhooks deliver` instead). A POST waits at most webhook_timeout_seconds;
    # a delivery is given up after webhook_max_attempts (see docs/webhooks.md).
    webhook_seconds: float = Field(default=5, ge=0)
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=30)
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    # Webhook URLs must name public addresses (not loopback, private ranges,
    # link-local cloud metadata, ...); true allows them, for labs and tests.
    webhook_allow_private: bool = False
    # The dashboard: the key that signs session cookies. Unset, one is generated
    # into ``secret_key_file`` on first start (fine for one machine; production
    # sets the same key on every worker). Sessions end ``session_hours`` after
    # sign-in; ``secure_cookies`` sends the cookie over HTTPS only.
    secret_key: str | None = Field(default=None, min_length=32)
    secret_key_file: str = "didhub-secret.key"
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    secure_cookies: bool = False

    @field_validator("prices")
    @classmethod
    def _whole_cents(cls, prices: dict[str, Price]) -> dict[str, Price]:
        # Checked at start: a negative price would credit wallets every month,
        # and a fraction of a cent can't be posted to the ledger.
        for number_type, price in prices.items():
            for part in ("monthly", "setup"):
                problem = _price_problem(getattr(price, part))
                if problem is not None:
                    raise ValueError(f"DIDHUB_PRICES: {number_type}.{part} {problem}")
        return prices

    @property
    def requests_at_once(self) -> int:
        """A server's request threads: ``DIDHUB_REQUEST_THREADS``, else one per
        pooled connection."""
        return self.request_threads or self.db_pool_size + self.db_max_overflow

    @model_validator(mode="after")
    def _s3_bucket_named(self) -> Settings:
        if self.document_store == "s3" and not self.s3_bucket:
            raise ValueError("DIDHUB_DOCUMENT_STORE=s3 needs DIDHUB_S3_BUCKET")
        return self

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return database_url(value)

    @field_validator("carriers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value


_URL_EXAMPLES = "sqlite:///./didhub.db or postgresql+psycopg://user:password@host:5432/didhub"


def database_url(value: str) -> str:
    """``DIDHUB_DATABASE_URL`` as SQLAlchemy takes it, or a ``DIDHUB_…`` error
    saying what to write: Heroku-style ``postgres://`` and a bare
    ``postgresql://`` mean PostgreSQL through psycopg (the driver didhub
    installs); any other database or driver is refused at start."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(value)
    except (ArgumentError, ValueError):
        # The value itself may hold a password: not repeated.
        raise ValueError(
            f"DIDHUB_DATABASE_URL: not a database URL; write it as {_URL_EXAMPLES}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise ValueError(
                f"DIDHUB_DATABASE_URL: didhub talks to PostgreSQL with psycopg, not {driver}; "
                "begin the URL with postgresql+psycopg://"
            )
        return "postgresql+psycopg" + value[value.index("://") :]
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return value
    raise ValueError(
        f"DIDHUB_DATABASE_URL: didhub runs on SQLite or PostgreSQL, not {parsed.drivername}; "
        f"write it as {_URL_EXAMPLES}"
    )


@cache
def get_settings() -> Settings:
    return Settings()


def describe(error: ValidationError | SettingsError) -> str:
    """A settings error in one line an operator can act on, naming the
    variable: ``DIDHUB_PRICES: toll-free.monthly must be zero or more``."""
    if isinstance(error, SettingsError):  # a value that isn't even JSON
        field = re.search(r'field "(\w+)"', str(error))
        name = f"DIDHUB_{field.group(1).upper()}" if field else "settings"
        return f"{name}: can't be read ({error})"
    lines = []
    for item in error.errors():
        if item["type"] == "value_error" and str(item["ctx"]["error"]).startswith("DIDHUB_"):
            lines.append(str(item["ctx"]["error"]))
            continue
        name, *rest = [str(part) for part in item["loc"]] or ["settings"]
        where = f" {'.'.join(rest)}:" if rest else ""
        lines.append(f"DIDHUB_{name.upper()}:{where} {item['msg']}")
    return "; ".join(lines)
