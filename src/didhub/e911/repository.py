"""The E911 addresses and locations a caller may see: tenancy for
``e911_addresses`` and ``locations`` in one place."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from didhub.e911.models import E911Address, Location
from didhub.errors import NotFound
from didhub.tenancy import Scope


def readable(scope: Scope) -> ColumnElement[bool]:
    """SQL: the address is an account's inside the scope."""
    return scope.owns(E911Address.account_id)


def locations_readable(scope: Scope) -> ColumnElement[bool]:
    return scope.owns(Location.account_id)


def get(
    session: Session, scope: Scope, address_id: str, *, for_update: bool = False,
    field: str = "address_id",
) -> E911Address:  # fmt: skip
    query = select(E911Address).where(E911Address.id == address_id, readable(scope))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    address = session.scalars(query).first()
    if address is None:
        raise NotFound(f"E911 address {address_id} not found", field=field)
    return address


def get_location(
    session: Session, scope: Scope, location_id: str, *, field: str = "location_id"
) -> Location:
    location = session.scalars(
        select(Location).where(Location.id == location_id, locations_readable(scope))
    ).first()
    if location is None:
        raise NotFound(f"location {location_id} not found", field=field)
    return location
