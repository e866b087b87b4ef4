"""Imports every model so ``Base.metadata`` knows every table (Alembic, tests)."""

from didhub.accounts.models import (
    Account,
    AccountSettings,
    Agent,
    ApiKey,
    DashboardSession,
    SignInFailures,
    User,
)
from didhub.billing.models import (
    OutboundRate,
    Renewal,
    ResaleCharge,
    RetailPrice,
    RetailPriceVersion,
    UsageRecord,
)
from didhub.carriers.models import SandboxAllocation, StockNumber
from didhub.e911.models import E911Address, Location, NumberE911
from didhub.idempotency import IdempotencyRecord
from didhub.jobs.models import JobTick
from didhub.numbers.models import (
    CnamListing,
    NumberAssignment,
    NumberEvent,
    NumberHold,
    NumberOrder,
    PhoneNumber,
)
from didhub.outbound.models import OutboundSettings, OutboundTrunk, SipCredential
from didhub.payments.models import SandboxCharge
from didhub.porting.models import PortCarrierOrder, PortDocument, PortNumber, PortOrder, PortOutPin
from didhub.routing.models import RoutingGeneration
from didhub.wallet.models import (
    AccountEvent,
    BillingProfile,
    CardCharge,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentCard,
)
from didhub.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "OutboundRate",
    "OutboundSettings",
    "OutboundTrunk",
    "SipCredential",
    "PortCarrierOrder",
    "PortDocument",
    "PortNumber",
    "PortOrder",
    "PortOutPin",
    "AccountEvent",
    "BillingProfile",
    "CardCharge",
    "PaymentCard",
    "Renewal",
    "RoutingGeneration",
    "ResaleCharge",
    "RetailPrice",
    "RetailPriceVersion",
    "SandboxCharge",
    "UsageRecord",
    "Account",
    "AccountSettings",
    "CnamListing",
    "Agent",
    "ApiKey",
    "IdempotencyRecord",
    "JobTick",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "NumberAssignment",
    "NumberEvent",
    "NumberHold",
    "NumberOrder",
    "PhoneNumber",
    "SandboxAllocation",
    "StockNumber",
    "E911Address",
    "Location",
    "NumberE911",
    "Event",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "User",
    "DashboardSession",
    "SignInFailures",
]
