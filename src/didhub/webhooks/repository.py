"""The webhook endpoints and events a caller may see: tenancy for
``webhook_endpoints`` and ``events`` in one place. An endpoint is its
account's (a partner's scope reads its tenants' too); an event is readable by
the scope of the account it belongs to and of the tenant it concerns."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_

from didhub.tenancy import Scope
from didhub.webhooks.models import Event, WebhookEndpoint


def readable(scope: Scope) -> ColumnElement[bool]:
    """SQL: a live (not removed) endpoint of an account inside the scope."""
    return scope.owns(WebhookEndpoint.account_id) & WebhookEndpoint.deleted_at.is_(None)


def events_readable(scope: Scope) -> ColumnElement[bool]:
    return or_(scope.owns(Event.account_id), scope.owns(Event.tenant_id))
