"""Webhook endpoints, their deliveries, and the account's event feed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from didhub import outputs
from didhub.api.contract import KEYED, errors
from didhub.api.deps import Caller, Ctx
from didhub.outputs import Data
from didhub.webhooks import catalogue
from didhub.webhooks import schemas as webhook_schemas
from didhub.webhooks import service as webhooks
from didhub.webhooks.delivery import payload
from didhub.webhooks.models import WebhookAttempt
from didhub.webhooks.schemas import (
    CreatedWebhookOut,
    DeliveryDetailOut,
    DeliveryList,
    DeliveryOut,
    EndpointPatch,
    EndpointRequest,
    EventList,
    EventOut,
    EventTypeOut,
    WebhookEndpointOut,
)

router = APIRouter(tags=["webhooks"])


def _attempt(item: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": outputs.when(item.attempted_at),
        "status_code": item.status_code,
        "error": item.error,
        "duration_ms": item.duration_ms,
    }


@router.get("/webhooks/event-types", response_model=Data[list[EventTypeOut]], responses=errors())
def event_types() -> dict[str, Any]:
    """The event catalogue: every type an endpoint can subscribe to."""
    return {
        "data": [
            {"type": name, "description": text} for name, text in catalogue.EVENT_TYPES.items()
        ]
    }


@router.post(
    "/webhooks",
    status_code=201,
    response_model=Data[CreatedWebhookOut],
    responses=errors(*KEYED),
)
def create_webhook(body: EndpointRequest, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Register a URL. The answer's ``secret`` signs every delivery; it is
    shown only here."""
    with ctx.db.session() as session:
        new = webhooks.create_endpoint(
            session,
            scope,
            body.url,
            body.events,
            body.description,
            allow_private=ctx.settings.webhook_allow_private,
        )
        return {"data": {**webhook_schemas.webhook_endpoint(new.endpoint), "secret": new.secret}}


@router.get("/webhooks", response_model=Data[list[WebhookEndpointOut]], responses=errors(*KEYED))
def list_webhooks(ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {
            "data": [
                webhook_schemas.webhook_endpoint(e) for e in webhooks.list_endpoints(session, scope)
            ]
        }


@router.get(
    "/webhooks/{webhook_id}",
    response_model=Data[WebhookEndpointOut],
    responses=errors(*KEYED, 404),
)
def get_webhook(webhook_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {
            "data": webhook_schemas.webhook_endpoint(
                webhooks.get_endpoint(session, scope, webhook_id)
            )
        }


@router.patch(
    "/webhooks/{webhook_id}",
    response_model=Data[WebhookEndpointOut],
    responses=errors(*KEYED, 404),
)
def patch_webhook(webhook_id: str, body: EndpointPatch, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        endpoint = webhooks.update_endpoint(
            session,
            scope,
            webhook_id,
            url=body.url,
            description=body.description,
            enabled=body.enabled,
            change_events="events" in body.model_fields_set,
            events=body.events,
            allow_private=ctx.settings.webhook_allow_private,
        )
        return {"data": webhook_schemas.webhook_endpoint(endpoint)}


@router.delete("/webhooks/{webhook_id}", response_model=Data[None], responses=errors(*KEYED, 404))
def delete_webhook(webhook_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.session() as session:
        webhooks.remove_endpoint(session, scope, webhook_id)
    return {"data": None}


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=errors(*KEYED, 404),
)
def list_deliveries(
    webhook_id: str,
    ctx: Ctx,
    scope: Caller,
    status: str | None = Query(None, description="pending, delivered or failed"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first."""
    with ctx.db.read_session() as session:
        page = webhooks.list_deliveries(session, scope, webhook_id, status, limit, cursor)
        data = [webhook_schemas.webhook_delivery(row) for row in page.data]
    return {"data": data, "meta": {"next_cursor": page.next_cursor, "count": len(data)}}


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    response_model=Data[DeliveryDetailOut],
    responses=errors(*KEYED, 404),
)
def get_delivery(delivery_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """One delivery with every attempt's status code, error and duration."""
    with ctx.db.read_session() as session:
        row = webhooks.get_delivery(session, scope, delivery_id)
        tried = webhooks.attempts(session, delivery_id)
        return {
            "data": {
                **webhook_schemas.webhook_delivery(row),
                "attempt_log": [_attempt(a) for a in tried],
            }
        }


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    response_model=Data[DeliveryOut],
    responses=errors(*KEYED, 404, 409),
)
def retry_delivery(delivery_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    """Send a delivery again as soon as the worker runs (within
    ``DIDHUB_WEBHOOK_SECONDS``)."""
    with ctx.db.session() as session:
        return {
            "data": webhook_schemas.webhook_delivery(
                webhooks.retry_delivery(session, scope, delivery_id)
            )
        }


@router.get("/events", tags=["events"], response_model=EventList, responses=errors(*KEYED))
def list_events(
    ctx: Ctx,
    scope: Caller,
    type: str | None = Query(None, description="an event type, or 'number.*' / 'billing.*'"),
    number_id: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    """The events your webhooks receive, newest first, in the webhook payload's shape."""
    with ctx.db.read_session() as session:
        page = webhooks.list_events(session, scope, type, number_id, limit, cursor)
        data = [payload(e) for e in page.data]
    return {"data": data, "meta": {"next_cursor": page.next_cursor, "count": len(data)}}


@router.get(
    "/events/{event_id}",
    tags=["events"],
    response_model=Data[EventOut],
    responses=errors(*KEYED, 404),
)
def get_event(event_id: str, ctx: Ctx, scope: Caller) -> dict[str, Any]:
    with ctx.db.read_session() as session:
        return {"data": payload(webhooks.get_event(session, scope, event_id))}
