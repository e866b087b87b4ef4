"""Imports every model so ``Base.metadata`` knows every table (Alembic, tests)."""

from didhub.accounts.models import Account, Agent, ApiKey, User
from didhub.billing.models import (
    AccountEvent,
    BillingProfile,
    CardCharge,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentCard,
    Renewal,
    ResaleCharge,
    RetailPrice,
    UsageRecord,
)
from didhub.carriers.sandbox import SandboxAllocation
from didhub.idempotency import IdempotencyRecord
from didhub.numbers.models import (
    NumberAssignment,
    NumberEvent,
    NumberHold,
    NumberOrder,
    PhoneNumber,
)
from didhub.payments.sandbox_gateway import SandboxCharge

__all__ = [
    "AccountEvent",
    "BillingProfile",
    "CardCharge",
    "PaymentCard",
    "Renewal",
    "ResaleCharge",
    "RetailPrice",
    "SandboxCharge",
    "UsageRecord",
    "Account",
    "Agent",
    "ApiKey",
    "IdempotencyRecord",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "NumberAssignment",
    "NumberEvent",
    "NumberHold",
    "NumberOrder",
    "PhoneNumber",
    "SandboxAllocation",
    "User",
]
