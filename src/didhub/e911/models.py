from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, UtcDateTime


class E911Address(Base):
    """A tenant's emergency address, normalized (``postal/normalize.py``) and
    validated by the carrier. ``status``: ``validated`` (may be attached),
    ``needs_confirmation`` (the carrier suggested a correction, in
    ``suggestion``; accepting it validates the address)."""

    __tablename__ = "e911_addresses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    street: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str | None] = mapped_column(String(20), default=None)
    city: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(2))
    postal_code: Mapped[str] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2))
    caller_name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    carrier: Mapped[str] = mapped_column(String(32))
    carrier_ref: Mapped[str | None] = mapped_column(String(80), default=None)
    suggestion: Mapped[dict[str, str | None] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    validated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class Location(Base):
    """A tenant's physical site. Kari's Law and RAY BAUM'S Act want at least
    one number whose E911 address is the site's address."""

    __tablename__ = "e911_locations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address_id: Mapped[str] = mapped_column(ForeignKey("e911_addresses.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NumberE911(Base):
    """A number's E911 address and its provisioning at the carrier:
    ``pending`` (pushed, no answer yet) -> ``provisioned`` | ``failed``
    (``reason``). ``attempt`` grows with every push so an old push's answer
    never overwrites a newer one."""

    __tablename__ = "number_e911"

    number_id: Mapped[str] = mapped_column(ForeignKey("phone_numbers.id"), primary_key=True)
    address_id: Mapped[str] = mapped_column(ForeignKey("e911_addresses.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    attempt: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    provisioned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
