"""The inventory: a number, a page of numbers, counts."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from didhub.accounts import service as accounts
from didhub.errors import (
    NotFound,
    ValidationFailed,
)
from didhub.numbering.parsing import parse_e164
from didhub.numbers import lifecycle, repository
from didhub.numbers.lifecycle import LIVE_STATUSES
from didhub.numbers.models import (
    NumberAssignment,
    PhoneNumber,
)
from didhub.tenancy import Scope


def get_number(
    session: Session, scope: Scope, number_id: str, field: str = "number_id"
) -> PhoneNumber:
    return repository.get(session, scope, number_id, field=field)


def resolve_number_id(session: Session, scope: Scope, value: str, field: str = "number_id") -> str:
    """The id of the number ``value`` names: an id as it is, or a phone number
    (E.164 or national) the scope holds live; 404 naming ``field`` otherwise."""
    if value.startswith("num_"):
        return value
    e164 = parse_e164(value, field)
    found = session.scalars(
        select(PhoneNumber.id).where(
            PhoneNumber.e164 == e164,
            PhoneNumber.status.in_(LIVE_STATUSES),
            repository.readable(scope),
        )
    ).first()
    if found is None:
        raise NotFound(f"you hold no number {e164}", field=field)
    return found


def lock_number(
    session: Session, scope: Scope, number_id: str, field: str = "number_id"
) -> PhoneNumber:
    """A number the scope sees, its row locked (``SELECT … FOR UPDATE``)."""
    return repository.get(session, scope, number_id, for_update=True, field=field)


FRIENDLY_NAME_MAX = 64


def set_friendly_name(
    session: Session, scope: Scope, number_id: str, name: str | None
) -> PhoneNumber:
    """Label a number (``None`` or blank: no label); its owner's scope only."""
    number = lock_number(session, scope, number_id)
    repository.require_writable(session, scope, number, "rename")
    text = (name or "").strip() or None
    if text is not None and len(text) > FRIENDLY_NAME_MAX:
        raise ValidationFailed(
            f"friendly_name is at most {FRIENDLY_NAME_MAX} characters", field="friendly_name"
        )
    if text != number.friendly_name:
        number.friendly_name = text
        lifecycle.record(session, number, "friendly_name.set", scope.account_id, name=text)
    session.flush()
    return number


@dataclass(frozen=True)
class InventoryFilter:
    status: str | None = None  # a status, "all", or None for live numbers
    tenant_id: str | None = None
    assigned: bool | None = None
    phone_number_type: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class InventoryPage:
    data: list[PhoneNumber]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API gave out", field="cursor") from None
    if not value.startswith("num_"):
        raise ValidationFailed("cursor is not one this API gave out", field="cursor")
    return value


def live_page(
    session: Session,
    scope: Scope,
    offset: int,
    limit: int,
    *,
    digits: str = "",
    named: tuple[str, str | None] | None = None,
    count: bool = False,
) -> tuple[list[PhoneNumber], bool, int | None]:
    """One offset page of the scope's live numbers in id order, filtered in
    SQL (the Twilio- and Telnyx-compatible lists): ``digits`` found in the
    E.164, ``named`` = (a friendly name, the E.164 whose default friendly name
    it is, if any). Returns the page, whether more follow, and with ``count``
    how many match in all."""
    query = select(PhoneNumber).where(
        repository.readable(scope), PhoneNumber.status.in_(LIVE_STATUSES)
    )
    if digits:
        query = query.where(PhoneNumber.e164.contains(digits))
    if named is not None:
        name, default_of = named
        matches: list[ColumnElement[bool]] = [PhoneNumber.friendly_name == name]
        if default_of is not None:
            matches.append((PhoneNumber.friendly_name.is_(None)) & (PhoneNumber.e164 == default_of))
        query = query.where(or_(*matches))
    total = session.scalar(select(func.count()).select_from(query.subquery())) if count else None
    rows = list(session.scalars(query.order_by(PhoneNumber.id).offset(offset).limit(limit + 1)))
    return rows[:limit], len(rows) > limit, total


def list_numbers(
    session: Session,
    scope: Scope,
    filters: InventoryFilter,
    limit: int = 50,
    cursor: str | None = None,
) -> InventoryPage:
    query = select(PhoneNumber).where(repository.readable(scope))
    if filters.status is None:
        query = query.where(PhoneNumber.status.in_(LIVE_STATUSES))
    elif filters.status != "all":
        query = query.where(PhoneNumber.status == filters.status)
    if filters.tenant_id is not None:
        tenant = accounts.get_tenant(session, scope, filters.tenant_id)
        query = query.where(PhoneNumber.tenant_id == tenant.id)
    if filters.assigned is True:
        query = query.where(PhoneNumber.tenant_id.is_not(None))
    elif filters.assigned is False:
        query = query.where(PhoneNumber.tenant_id.is_(None))
    if filters.phone_number_type is not None:
        query = query.where(PhoneNumber.phone_number_type == filters.phone_number_type)
    if filters.q:
        text = filters.q.strip()
        digits = "".join(ch for ch in text if ch.isdigit())
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        conditions: list[ColumnElement[bool]] = [
            PhoneNumber.locality.ilike(like, escape="\\"),
            PhoneNumber.rate_center.ilike(like, escape="\\"),
            PhoneNumber.administrative_area.ilike(like, escape="\\"),
        ]
        if digits:
            conditions.append(PhoneNumber.e164.contains(digits))
        query = query.where(or_(*conditions))
    if cursor is not None:
        query = query.where(PhoneNumber.id > decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(PhoneNumber.id).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return InventoryPage(rows[:limit], next_cursor)


def count_by_tenant(session: Session, scope: Scope) -> dict[str, int]:
    """Live numbers per tenant, for the tenants the scope sees."""
    rows = session.execute(
        select(PhoneNumber.tenant_id, func.count())
        .where(
            repository.readable(scope),
            PhoneNumber.status.in_(LIVE_STATUSES),
            PhoneNumber.tenant_id.is_not(None),
        )
        .group_by(PhoneNumber.tenant_id)
    )
    return {tenant_id: count for tenant_id, count in rows if tenant_id is not None}


def live_assignments(
    session: Session, number_ids: Sequence[str]
) -> dict[str, dict[str, NumberAssignment]]:
    out: dict[str, dict[str, NumberAssignment]] = {}
    if not number_ids:
        return out
    for assignment in session.scalars(
        select(NumberAssignment).where(
            NumberAssignment.number_id.in_(number_ids), NumberAssignment.ended_at.is_(None)
        )
    ):
        out.setdefault(assignment.number_id, {})[assignment.assignment_type] = assignment
    return out
