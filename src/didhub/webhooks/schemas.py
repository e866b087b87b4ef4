from __future__ import annotations

from pydantic import Field

from didhub.inputs import RequestModel


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
