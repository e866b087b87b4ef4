from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from didhub.db import Base, BigId, UtcDateTime


class WebhookEndpoint(Base):
    """A URL an account wants events POSTed to. ``secret`` signs every delivery,
    so it is kept as given (shown to the account once, at creation). A removed
    endpoint keeps its row (``deleted_at``) because deliveries refer to it."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # None: every event type; else catalogue names and group wildcards ("number.*").
    events: Mapped[list[str] | None] = mapped_column(JSON, nullable=True, default=None)
    secret: Mapped[str] = mapped_column(String(80))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class Event(Base):
    """One public event (a catalogue type, see ``webhooks/catalogue.py``): the
    feed at ``GET /events`` and the outbox webhooks are delivered from.

    ``account_id`` is the account the event is about (a number's owner, the
    account billed); ``tenant_id`` the tenant a number event concerns. Both
    accounts' scopes may read it, like the number itself. ``seq`` orders the
    feed; ``id`` is the public id receivers de-duplicate on."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=None
    )
    number_id: Mapped[str | None] = mapped_column(
        ForeignKey("phone_numbers.id"), index=True, default=None
    )
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One event to one endpoint: ``pending`` until a 2xx (``delivered``) or
    until it runs out of attempts (``failed``). ``next_attempt_at`` is when a
    worker may next take it; a worker that takes it pushes it ahead (a lease),
    so a crashed worker's delivery is simply tried again later."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_seq: Mapped[int] = mapped_column(BigId, ForeignKey("events.seq"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    # Lets the outbox add a delivery beside its new event without a flush.
    event: Mapped[Event] = relationship(lazy="raise")


class WebhookAttempt(Base):
    """One POST of a delivery: what came back (a status code or an error) and
    how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    duration_ms: Mapped[int]
