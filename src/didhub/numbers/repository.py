"""The numbers a caller may see and change: tenancy and row locks for
``phone_numbers`` in one place (Polar's ``get_readable_statement``).

A number is readable by its owner's scope (who bought and pays) and its
tenant's (who it serves); it is writable (reassigned, released) by its owner's
scope only.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from didhub.errors import Forbidden, NotFound
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import Scope


def readable(scope: Scope) -> ColumnElement[bool]:
    """SQL: the number is the scope's, as owner or as the tenant it serves."""
    return or_(scope.owns(PhoneNumber.owner_id), scope.owns(PhoneNumber.tenant_id))


def writable(scope: Scope) -> ColumnElement[bool]:
    """SQL: the scope owns the number (may reassign or release it)."""
    return scope.owns(PhoneNumber.owner_id)


def get(
    session: Session,
    scope: Scope,
    number_id: str,
    *,
    for_update: bool = False,
    field: str = "number_id",
) -> PhoneNumber:
    """A number the scope may read (404 otherwise), its row locked with
    ``for_update`` (the lock order: after the owner's wallet, docs/architecture.md)."""
    query = select(PhoneNumber).where(PhoneNumber.id == number_id, readable(scope))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    number = session.scalars(query).first()
    if number is None:
        raise NotFound(f"phone number {number_id} not found", field=field)
    return number


def require_writable(session: Session, scope: Scope, number: PhoneNumber, action: str) -> None:
    """Only the buyer (the account that pays), or its partner, may reassign or
    release a number; a tenant sees and routes numbers its partner assigned to it."""
    if not scope.can_see(session, number.owner_id):
        raise Forbidden(f"only the account that bought {number.e164} can {action} it")
