"""Imports every model so ``Base.metadata`` knows every table (Alembic, tests)."""

from didhub.accounts.models import Account, Agent, ApiKey
from didhub.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from didhub.carriers.sandbox import SandboxAllocation
from didhub.idempotency import IdempotencyRecord
from didhub.numbers.models import (
    NumberAssignment,
    NumberEvent,
    NumberHold,
    NumberOrder,
    PhoneNumber,
)

__all__ = [
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
]
