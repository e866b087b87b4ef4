"""The port-in orders a caller may see: the order's owner and its partner
(``Scope.owns``), the tenant it serves too; anything else is 404."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from didhub.errors import NotFound
from didhub.porting.models import PortOrder
from didhub.tenancy import Scope


def readable(scope: Scope) -> ColumnElement[bool]:
    return or_(scope.owns(PortOrder.owner_id), scope.owns(PortOrder.tenant_id))


def get(session: Session, scope: Scope, order_id: str, *, for_update: bool = False) -> PortOrder:
    query = select(PortOrder).where(PortOrder.id == order_id, readable(scope))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    order = session.scalars(query).first()
    if order is None:
        raise NotFound(f"port order {order_id} not found", field="order_id")
    return order


def listed(session: Session, scope: Scope) -> list[PortOrder]:
    return list(
        session.scalars(
            select(PortOrder).where(readable(scope)).order_by(PortOrder.created_at.desc())
        )
    )
