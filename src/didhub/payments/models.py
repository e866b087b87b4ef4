"""The payments domain's tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, Money, UtcDateTime


class SandboxCharge(Base):
    __tablename__ = "sandbox_charges"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # succeeded | declined
    decline_code: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
