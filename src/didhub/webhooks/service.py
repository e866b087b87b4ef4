"""Webhook endpoints, their deliveries and the event feed, scoped by the one
tenancy rule (``Scope``): a partner acts on its own and its tenants'
endpoints, a tenant on its own; anything else reads as not found."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, literal, select, update
from sqlalchemy.orm import Session

from didhub import clock
from didhub.db import new_id
from didhub.errors import NotFound, ValidationFailed
from didhub.inputs import MAX_INT
from didhub.tenancy import Scope
from didhub.webhooks import catalogue, repository, signing, targets
from didhub.webhooks.delivery import ENDPOINT_REMOVED
from didhub.webhooks.events import DELIVERED, FAILED, PENDING, forget_subscribers
from didhub.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)
MAX_ENDPOINTS = 20
MAX_URL = 2000


# ------------------------------------------------------------------ validation


def check_url(value: str, allow_private: bool = False) -> str:
    """A URL a delivery may be POSTed to: http(s), no credentials, and a host
    that is a public address (``webhooks/targets.py``), checked now; the
    delivery checks again."""
    url = value.strip()
    if not url:
        raise ValidationFailed("url is required", field="url")
    if len(url) > MAX_URL:
        raise ValidationFailed(f"url is at most {MAX_URL} characters", field="url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValidationFailed("url must not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that isn't a number 0-65535)
    except ValueError:
        raise ValidationFailed("url is not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationFailed("url must start with http:// or https://", field="url")
    if "@" in parts.netloc:
        raise ValidationFailed(
            "url must not contain a user name or password; the signature authenticates deliveries",
            field="url",
        )
    if not parts.hostname:
        raise ValidationFailed("url must name a host", field="url")
    targets.check_for_registration(url, allow_private)
    return url


def check_events(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    cleaned = [v.strip() for v in values]
    if not cleaned:
        raise ValidationFailed(
            "give at least one event type, or leave events out to receive them all",
            field="events",
        )
    unknown = catalogue.check_patterns(cleaned)
    if unknown is not None:
        raise ValidationFailed(
            f"{unknown!r} is not an event type (see GET /webhooks/event-types; "
            "'number.*' and 'billing.*' take a whole group)",
            field="events",
        )
    return list(dict.fromkeys(cleaned))


def _check_description(value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > 500:
        raise ValidationFailed("description is at most 500 characters", field="description")
    return text


# ------------------------------------------------------------------ cursors


def encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        text = ""
    found, _, value = text.partition(":")
    if found != kind or not value:
        raise ValidationFailed("cursor is not one this API gave out", field="cursor")
    return value


# ------------------------------------------------------------------ endpoints


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def create_endpoint(
    session: Session,
    scope: Scope,
    url: str,
    events: Sequence[str] | None = None,
    description: str | None = None,
    *,
    allow_private: bool = False,
) -> NewEndpoint:
    # Before any query: the host is resolved here, and on SQLite a query would
    # hold the write lock through the lookup.
    clean_url = check_url(url, allow_private)
    patterns = check_events(events)
    text = _check_description(description)
    count = len(
        session.scalars(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.account_id == scope.account_id,
                WebhookEndpoint.deleted_at.is_(None),
            )
        ).all()
    )
    if count >= MAX_ENDPOINTS:
        raise ValidationFailed(
            f"an account has at most {MAX_ENDPOINTS} webhook endpoints; remove one first",
            field="url",
        )
    now = clock.now()
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        account_id=scope.account_id,
        url=clean_url,
        description=text,
        events=patterns,
        secret=secret,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    forget_subscribers(session)
    return NewEndpoint(endpoint, secret)


def list_endpoints(session: Session, scope: Scope) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint).where(repository.readable(scope)).order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(
    session: Session, scope: Scope, endpoint_id: str, field: str = "webhook_id"
) -> WebhookEndpoint:
    endpoint = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, repository.readable(scope))
    ).first()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field=field)
    return endpoint


def update_endpoint(
    session: Session,
    scope: Scope,
    endpoint_id: str,
    *,
    url: str | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    change_events: bool = False,
    events: Sequence[str] | None = None,
    allow_private: bool = False,
) -> WebhookEndpoint:
    """Change what was given; with ``change_events``, ``events=None``
    subscribes to every event type."""
    clean_url = check_url(url, allow_private) if url is not None else None
    endpoint = get_endpoint(session, scope, endpoint_id)
    if clean_url is not None:
        endpoint.url = clean_url
    if change_events:
        endpoint.events = check_events(events)
    if description is not None:
        endpoint.description = _check_description(description)
    if enabled is not None:
        endpoint.enabled = enabled
    endpoint.updated_at = clock.now()
    forget_subscribers(session)
    return endpoint


def remove_endpoint(session: Session, scope: Scope, endpoint_id: str) -> WebhookEndpoint:
    """No more deliveries: the endpoint is gone from lists and its queued
    deliveries fail. Its row stays, because deliveries refer to it."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    now = clock.now()
    endpoint.enabled = False
    endpoint.deleted_at = now
    endpoint.updated_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
        .values(status=FAILED, next_attempt_at=None, last_error=ENDPOINT_REMOVED)
    )
    forget_subscribers(session)
    return endpoint


# ------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class DeliveryRow:
    delivery: WebhookDelivery
    event_id: str
    event_type: str


@dataclass(frozen=True)
class DeliveryPage:
    data: list[DeliveryRow]
    next_cursor: str | None


def list_deliveries(
    session: Session,
    scope: Scope,
    endpoint_id: str,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    """An endpoint's deliveries, newest first."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationFailed(
            f"status must be one of {', '.join(DELIVERY_STATUSES)}", field="status"
        )
    query = (
        select(WebhookDelivery, Event.id, Event.type)
        .join(Event, Event.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if cursor is not None:
        query = query.where(WebhookDelivery.id < decode_cursor("whd", cursor))
    rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)).all()
    page = [DeliveryRow(d, event_id, event_type) for d, event_id, event_type in rows[:limit]]
    next_cursor = encode_cursor("whd", page[-1].delivery.id) if len(rows) > limit else None
    return DeliveryPage(page, next_cursor)


def get_delivery(
    session: Session, scope: Scope, delivery_id: str, *, for_update: bool = False
) -> DeliveryRow:
    query = (
        select(WebhookDelivery, Event.id, Event.type)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Event, Event.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.id == delivery_id, repository.readable(scope))
    )
    if for_update:
        query = query.with_for_update(of=WebhookDelivery)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found", field="delivery_id")
    return DeliveryRow(row[0], row[1], row[2])


def attempts(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    )


def retry_delivery(session: Session, scope: Scope, delivery_id: str) -> DeliveryRow:
    """Queue a delivery again, due now, whatever its status: a failed one
    gets one more attempt, a delivered one is sent again (same event id)."""
    row = get_delivery(session, scope, delivery_id, for_update=True)
    delivery = row.delivery
    delivery.status = PENDING
    delivery.next_attempt_at = clock.now()
    delivery.delivered_at = None
    return row


# ------------------------------------------------------------------ events


@dataclass(frozen=True)
class EventPage:
    data: list[Event]
    next_cursor: str | None


def list_events(
    session: Session,
    scope: Scope,
    event_type: str | None = None,
    number_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> EventPage:
    """The events the caller's scope can read, newest first (the same ones
    its webhooks receive)."""
    query = select(Event).where(repository.events_readable(scope))
    if event_type is not None:
        if catalogue.check_patterns([event_type]) is not None:
            raise ValidationFailed(f"{event_type!r} is not an event type", field="type")
        if event_type.endswith(".*"):
            query = query.where(Event.type.startswith(event_type[:-1], autoescape=True))
        else:
            query = query.where(Event.type == event_type)
    if number_id is not None:
        query = query.where(Event.number_id == number_id)
    if cursor is not None:
        seq = decode_cursor("evt", cursor)
        if not (seq.isascii() and seq.isdigit() and len(seq) <= 19 and int(seq) <= MAX_INT):
            raise ValidationFailed("cursor is not one this API gave out", field="cursor")
        # As BIGINT: a cursor past the INTEGER column's range is older than every event.
        query = query.where(Event.seq < literal(int(seq), BigInteger))
    rows = list(session.scalars(query.order_by(Event.seq.desc()).limit(limit + 1)))
    next_cursor = encode_cursor("evt", str(rows[limit - 1].seq)) if len(rows) > limit else None
    return EventPage(rows[:limit], next_cursor)


def get_event(session: Session, scope: Scope, event_id: str) -> Event:
    event = session.scalars(
        select(Event).where(Event.id == event_id, repository.events_readable(scope))
    ).first()
    if event is None:
        raise NotFound(f"event {event_id} not found", field="event_id")
    return event
