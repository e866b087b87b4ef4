from __future__ import annotations

from typing import Any

from pydantic import Field

from didhub.inputs import RequestModel
from didhub.outputs import CursorMeta, ResponseModel


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
