"""The outbox: record a public event and queue its deliveries in the caller's
transaction, so an event exists exactly when the change it describes committed.

Who hears an event: it belongs to an account (a number's owner, the account
billed) and, for a number serving a tenant, to that tenant too. Every account
whose scope can read those (the accounts themselves and their partner, the
``Scope`` rule) sees it at ``GET /events``, and each of their enabled
endpoints subscribed to its type gets a delivery. So a partner hears about its
numbers, its tenants' numbers and its tenants' billing; a tenant about the
numbers that serve it and its own billing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.db import directory_answer, new_id, table_of
from didhub.tenancy import accounts_table
from didhub.webhooks import catalogue
from didhub.webhooks.models import Event, WebhookDelivery, WebhookEndpoint

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_CACHE_KEY = "didhub.webhook_subscribers"


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    """Dates and Decimals as strings, so the stored event is what is sent."""
    loaded: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return loaded


def _subscribers(
    session: Session, account_id: str, tenant_id: str | None
) -> list[tuple[str, list[str] | None]]:
    """(endpoint id, subscription) of every live endpoint of the accounts that
    can see an event of ``account_id``/``tenant_id``. Cached for the session
    (a purchase of 100 numbers asks once) and, in a server, across sessions
    until a directory table changes (``db.directory_memo``): not in a session
    that changed endpoints itself."""
    cache: dict[tuple[str, str | None], list[tuple[str, list[str] | None]]]
    cache = session.info.setdefault(_CACHE_KEY, {})
    key = (account_id, tenant_id)
    if key not in cache:

        def read() -> list[tuple[str, list[str] | None]]:
            involved = [a for a in (account_id, tenant_id) if a is not None]
            # No autoflush: callers record events mid-loop over rows they are
            # changing, and endpoints don't depend on those changes.
            with session.no_autoflush:
                rows = session.execute(_SUBSCRIBERS, {"involved": involved}).all()
            return [(endpoint_id, events) for endpoint_id, events in rows]

        cache[key] = directory_answer(session, f"subscribers {account_id} {tenant_id or ''}", read)
    return cache[key]


# Built once (docs/performance.md, "Built once").
_SUBSCRIBERS = (
    select(WebhookEndpoint.id, WebhookEndpoint.events)
    .where(
        or_(
            WebhookEndpoint.account_id.in_(bindparam("involved", expanding=True)),
            WebhookEndpoint.account_id.in_(
                select(accounts_table.c.parent_id)
                .where(
                    accounts_table.c.id.in_(bindparam("involved", expanding=True)),
                    accounts_table.c.parent_id.is_not(None),
                )
                .scalar_subquery()
            ),
        ),
        WebhookEndpoint.enabled.is_(True),
        WebhookEndpoint.deleted_at.is_(None),
    )
    .order_by(WebhookEndpoint.id)
)


def forget_subscribers(session: Session) -> None:
    """Endpoints changed in this session: ask again at the next event."""
    session.info.pop(_CACHE_KEY, None)


def emit(
    session: Session,
    event_type: str,
    account_id: str,
    data: Mapping[str, Any],
    *,
    tenant_id: str | None = None,
    number_id: str | None = None,
) -> str:
    """Record a public event and queue a delivery to each subscribed endpoint,
    in ``session``'s transaction (the outbox); the event's id. Written as rows
    at once (no unit of work), after whatever the session still holds
    unwritten (the account or number it may name)."""
    if event_type not in catalogue.EVENT_TYPES:
        raise ValueError(f"{event_type} is not in the event catalogue")
    now = clock.now()
    event_id = new_id("evt")
    row = {
        "id": event_id,
        "type": event_type,
        "account_id": account_id,
        "tenant_id": tenant_id,
        "number_id": number_id,
        "data": _jsonable(data),
        "created_at": now,
    }
    targets = [
        endpoint_id
        for endpoint_id, patterns in _subscribers(session, account_id, tenant_id)
        if catalogue.matches(patterns, event_type)
    ]
    if session.new:
        session.flush()
    if not targets:
        session.execute(_INSERT_EVENT, row)
        return event_id
    seq = session.execute(_INSERT_EVENT_SEQ, row).scalar_one()
    session.execute(
        _INSERT_DELIVERIES,
        [
            {
                "id": new_id("whd"),
                "endpoint_id": endpoint_id,
                "event_seq": seq,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in targets
        ],
    )
    return event_id


_EVENTS = table_of(Event)
_INSERT_EVENT = insert(_EVENTS)
_INSERT_EVENT_SEQ = insert(_EVENTS).returning(_EVENTS.c.seq)
_INSERT_DELIVERIES = insert(table_of(WebhookDelivery))


class Number(Protocol):
    """What an event says of a number (``numbers.models.PhoneNumber``): the
    outbox sits below the domains that write to it and knows no model of theirs."""

    id: str
    e164: str
    phone_number_type: str
    status: str
    owner_id: str
    tenant_id: str | None


def number_summary(number: Number) -> dict[str, Any]:
    return {
        "id": number.id,
        "phone_number": number.e164,
        "phone_number_type": number.phone_number_type,
        "status": number.status,
        "owner_id": number.owner_id,
        "tenant_id": number.tenant_id,
    }


def number_event(session: Session, number: Number, kind: str, data: Mapping[str, Any]) -> None:
    """Publish what an internal number event means (see ``catalogue``); called
    by ``numbers.lifecycle.record`` after the change is applied to ``number``."""
    for published in catalogue.number_events(kind, number.tenant_id, data):
        emit(
            session,
            published.type,
            number.owner_id,
            {"number": number_summary(number), **published.details},
            tenant_id=published.tenant_id,
            number_id=number.id,
        )


def account_event(
    session: Session,
    account_id: str,
    kind: str,
    message: str,
    data: Mapping[str, Any],
) -> None:
    """Publish an account (money) event of ``billing.wallet.event``."""
    event_type = catalogue.account_event(kind)
    if event_type is not None:
        emit(session, event_type, account_id, {"message": message, **data})
