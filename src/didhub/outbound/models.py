"""Outbound tables: an agent's SIP digest credential (only the HA1 is kept) and
the operator's outbound trunks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, Money, UtcDateTime


class SipCredential(Base):
    """One live credential per agent; rotating replaces ``ha1``. The password
    itself is shown once and never stored: ``ha1`` = MD5(username:realm:password),
    which is all the edge's digest check needs."""

    __tablename__ = "sip_credentials"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    realm: Mapped[str] = mapped_column(String(255))
    ha1: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboundTrunk(Base):
    """A carrier trunk calls leave by: destinations starting with ``prefix``
    (E.164 digits, "" for all) cost ``cost`` a minute; ``emergency`` trunks
    carry 911/933 only. A trunk that challenges the edge (401/407) is answered
    with ``auth_username``/``auth_password`` (both NULL: the carrier knows the
    edge by its address). The password is an operator's secret kept as given
    (the edge's digest answer needs it); only the edge's lookup ever sees it."""

    __tablename__ = "outbound_trunks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16), default="")
    tech_prefix: Mapped[str] = mapped_column(String(16), default="")
    cost: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    emergency: Mapped[bool] = mapped_column(default=False)
    auth_username: Mapped[str | None] = mapped_column(String(128), default=None)
    auth_password: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboundSettings(Base):
    """An account's outbound guards; NULL everywhere means "inherit": a tenant
    falls back to its partner, a partner to the platform's defaults (see
    ``outbound/settings.py``). Lists are stored comma-separated."""

    __tablename__ = "outbound_settings"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    caller_id_policy: Mapped[str | None] = mapped_column(String(16), default=None)
    # ISO alpha-2 codes beside the caller ID's own country, or "*" for every country.
    allowed_countries: Mapped[str | None] = mapped_column(String(1000), default=None)
    denied_number_types: Mapped[str | None] = mapped_column(String(200), default=None)
    daily_spend_limit: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    max_concurrent_calls: Mapped[int | None] = mapped_column(default=None)
    allowed_ips: Mapped[str | None] = mapped_column(String(2000), default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
