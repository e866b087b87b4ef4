from __future__ import annotations

from typing import Any

from pydantic import Field

from didhub.inputs import RequestModel
from didhub.outputs import CursorMeta, ResponseModel, when
from didhub.webhooks.models import WebhookEndpoint
from didhub.webhooks.service import DeliveryRow


class _Strict(RequestModel):
    """Unknown fields refused, text stripped and checked (``didhub.inputs``)."""


class EndpointRequest(_Strict):
    url: str = Field(description="Where to POST events: http:// or https://, no credentials")
    events: list[str] | None = Field(
        default=None,
        description="Event types to receive (or 'number.*', 'billing.*'); omit for all",
        max_length=100,
    )
    description: str | None = Field(default=None, max_length=500)


class EndpointPatch(_Strict):
    url: str | None = None
    events: list[str] | None = Field(
        default=None, description="null: every event type", max_length=100
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


# ------------------------------------------------------------------ answers


class EventTypeOut(ResponseModel):
    type: str
    description: str


class WebhookEndpointOut(ResponseModel):
    id: str
    account_id: str
    url: str
    description: str
    events: list[str] | None = Field(description="null: every event type")
    enabled: bool
    created_at: str | None
    updated_at: str | None


class CreatedWebhookOut(WebhookEndpointOut):
    secret: str = Field(description="Signs every delivery; shown only in this answer")


class DeliveryOut(ResponseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str | None


class AttemptOut(ResponseModel):
    attempted_at: str | None
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryList(ResponseModel):
    data: list[DeliveryOut]
    meta: CursorMeta


class EventOut(ResponseModel):
    """As a webhook delivers it."""

    id: str
    type: str
    created_at: str
    account_id: str | None
    data: dict[str, Any]


class EventList(ResponseModel):
    data: list[EventOut]
    meta: CursorMeta


# ------------------------------------------------------------------ answers


def webhook_endpoint(item: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": item.id,
        "account_id": item.account_id,
        "url": item.url,
        "description": item.description,
        "events": item.events,
        "enabled": item.enabled,
        "created_at": when(item.created_at),
        "updated_at": when(item.updated_at),
    }


def webhook_delivery(row: DeliveryRow) -> dict[str, Any]:
    d = row.delivery
    return {
        "id": d.id,
        "webhook_id": d.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "last_attempt_at": when(d.last_attempt_at),
        "next_attempt_at": when(d.next_attempt_at),
        "delivered_at": when(d.delivered_at),
        "created_at": when(d.created_at),
    }
