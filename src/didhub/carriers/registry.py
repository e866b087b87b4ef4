"""Which carrier a deployment talks to (``DIDHUB_CARRIER``)."""

from __future__ import annotations

from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database


def make_carrier(settings: Settings, db: Database) -> Carrier:
    if settings.carrier == "sandbox":
        from didhub.carriers.sandbox import SandboxCarrier

        return SandboxCarrier(db, seed=settings.sandbox_seed)
    raise ValueError(f"unknown carrier {settings.carrier!r} (DIDHUB_CARRIER); known: sandbox")
