"""The API's answer shapes (the seeds' field names), shared by every router."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub.accounts.models import Account, Agent
from didhub.accounts.settings import AccountSettingsView, UnassignedBehaviour
from didhub.carriers.base import AvailableNumber
from didhub.config import Settings
from didhub.e911 import service as e911
from didhub.e911.models import NumberE911
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.numbers.models import NumberAssignment, PhoneNumber
from didhub.routing.service import InboundRoute
from didhub.webhooks.models import WebhookEndpoint
from didhub.webhooks.service import DeliveryRow


def error(code: str, message: str, field: str | None) -> dict[str, Any]:
    """Every API error's body."""
    return {"error": {"code": code, "message": message, "field": field}}


def inbound_route(route: InboundRoute) -> dict[str, Any]:
    return {
        "phone_number": route.phone_number,
        "number_id": route.number_id,
        "tenant_id": route.tenant_id,
        "action": route.action,
        "agent_id": route.agent_id,
        "agent_name": route.agent_name,
        "text": route.text,
        "sip_uri": route.sip_uri,
        "mailbox": route.mailbox,
        "destination": route.destination,
        "source": route.source,
    }


def money(value: Decimal) -> str:
    """Two places, or four when per-minute charges left fractions of a cent."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:.4f}"


def when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def cost(monthly: Decimal, upfront: Decimal, currency: str) -> dict[str, str]:
    return {"monthly_cost": money(monthly), "upfront_cost": money(upfront), "currency": currency}


def available(settings: Settings, item: AvailableNumber) -> dict[str, Any]:
    price = numbers.price_for(settings, item.phone_number_type)
    return {
        "phone_number": item.phone_number,
        "phone_number_type": item.phone_number_type,
        "country_code": item.country_code,
        "locality": item.locality,
        "administrative_area": item.administrative_area,
        "rate_center": item.rate_center,
        "features": list(item.features),
        "cost_information": cost(price.monthly, price.setup, settings.currency),
    }


def account(item: Account) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "name": item.name,
        "partner_id": item.parent_id,
        "created_at": when(item.created_at),
    }


def agent(item: Agent) -> dict[str, Any]:
    return {
        "id": item.id,
        "tenant_id": item.tenant_id,
        "name": item.name,
        "sip_uri": item.sip_uri,
        "created_at": when(item.created_at),
    }


def assignment(item: NumberAssignment, agent_name: str | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "number_id": item.number_id,
        "agent_id": item.agent_id,
        "agent_name": agent_name,
        "assignment_type": item.assignment_type,
        "assigned_at": when(item.assigned_at),
        "ended_at": when(item.ended_at),
    }


def phone_numbers(
    session: Session,
    rows: list[PhoneNumber],
    e911_states: Mapping[str, tuple[NumberE911, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Numbers with their tenant, live agent assignments, CNAM listing and E911
    state: the same few queries for a page of any size (``e911_states``: from
    ``e911.number_states``, when the caller needed them too)."""
    live = numbers.live_assignments(session, [r.id for r in rows])
    tenant_ids = {r.tenant_id for r in rows if r.tenant_id}
    agent_ids = {a.agent_id for by_type in live.values() for a in by_type.values()}
    tenants = {t.id: t.name for t in _get_all(session, Account, tenant_ids)}
    agents = {a.id: a.name for a in _get_all(session, Agent, agent_ids)}
    listings = cnam.describe(session, rows)
    if e911_states is None:
        e911_states = e911.number_states(session, [r.id for r in rows])
    out = []
    for row in rows:
        by_type = live.get(row.id, {})
        out.append(
            {
                "id": row.id,
                "phone_number": row.e164,
                "phone_number_type": row.phone_number_type,
                "country_code": row.country_code,
                "status": row.status,
                "is_managed": row.is_managed,
                "carrier_missing_since": when(row.carrier_missing_since),
                "locality": row.locality,
                "administrative_area": row.administrative_area,
                "rate_center": row.rate_center,
                "features": list(row.features or []),
                "tenant_id": row.tenant_id,
                "tenant_name": tenants.get(row.tenant_id) if row.tenant_id else None,
                "assigned_to": tenants.get(row.tenant_id, "Unassigned")
                if row.tenant_id
                else "Unassigned",
                "assignments": {
                    kind: assignment(a, agents.get(a.agent_id))
                    if (a := by_type.get(kind))
                    else None
                    for kind in numbers.ASSIGNMENT_TYPES
                },
                "cost_information": cost(row.monthly_cost, row.upfront_cost, row.currency),
                "cnam": cnam_view(listings[row.id]),
                "e911": e911_view(e911_states.get(row.id)),
                "carrier": row.carrier,
                "order_id": row.order_id,
                "failure_reason": row.failure_reason,
                "created_at": when(row.created_at),
                "purchased_at": when(row.purchased_at),
                "renews_on": when(row.renews_on),
                "released_at": when(row.released_at),
            }
        )
    return out


def e911_view(state: tuple[NumberE911, Any] | None) -> dict[str, Any] | None:
    """A number's E911 address and its provisioning (None: no address)."""
    if state is None:
        return None
    row = state[0]
    return {"address_id": row.address_id, "status": row.status, "reason": row.reason}


def cnam_view(view: cnam.CnamView) -> dict[str, Any]:
    return {
        "name": view.name,
        "source": view.source,
        "status": view.status,
        "reason": view.reason,
        "updated_at": when(view.updated_at),
    }


def unassigned_behaviour(item: UnassignedBehaviour | None) -> dict[str, Any] | None:
    if item is None:
        return None
    shaped: dict[str, Any] = {"action": item.action}
    for name in ("text", "mailbox", "destination"):
        if getattr(item, name) is not None:
            shaped[name] = getattr(item, name)
    return shaped


def account_settings(view: AccountSettingsView) -> dict[str, Any]:
    return {
        "account_id": view.account_id,
        "kind": view.account_kind,
        "default_cnam": view.default_cnam,
        "unassigned": unassigned_behaviour(view.unassigned),
        "effective": {
            "default_cnam": {"name": view.effective_cnam, "source": view.effective_cnam_source},
            "unassigned": {
                **(unassigned_behaviour(view.effective_unassigned) or {}),
                "source": view.effective_unassigned_source,
            },
        },
        "updated_at": when(view.updated_at),
    }


def _get_all(session: Session, model: type[Any], ids: set[str]) -> list[Any]:
    if not ids:
        return []
    return list(session.scalars(select(model).where(model.id.in_(ids))))


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
