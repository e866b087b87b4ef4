"""Answers to carriers' own webhooks."""

from __future__ import annotations

from didhub.outputs import ResponseModel


class TelnyxOutcomeOut(ResponseModel):
    event_type: str
    order_id: str | None
    settled: bool
