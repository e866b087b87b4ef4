"""Changing what a number serves, as one step for every edge (the API, the
dashboard and the CLI call these, never the pieces):

1. the change itself (``numbers``: the tenant, an agent, the own caller name),
   in one transaction;
2. the caller name pushed to the carrier at once: a number that changed tenant
   inherits another default name (an unknown outcome stays ``pending`` for the
   sweep);
3. resale: a partner's tenant pays its partner retail for a number it was just
   given (``billing/service/resale.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from didhub.billing.service import resale
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import ValidationFailed
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.numbers.models import NumberAssignment, PhoneNumber
from didhub.tenancy import Scope


def assign_tenant(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    number_id: str,
    tenant_id: str | None,
) -> PhoneNumber:
    """Give a number to a tenant (``None``: take it back)."""
    return update_number(db, carrier, settings, scope, number_id, NumberChange(tenant_id=tenant_id))


MAX_BULK = 500


def assign_tenant_many(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    number_ids: Sequence[str],
    tenant_id: str | None,
) -> list[PhoneNumber]:
    """Give many numbers to one tenant (``None``: take them back), all or
    none: one transaction, the numbers locked in id order (the documented lock
    order), then one caller-name push and one resale bill for all of them."""
    wanted = sorted({n.strip() for n in number_ids if n.strip()})
    if not wanted:
        raise ValidationFailed("number_ids: choose at least one number", field="number_ids")
    if len(wanted) > MAX_BULK:
        raise ValidationFailed(
            f"number_ids: at most {MAX_BULK} numbers at once", field="number_ids"
        )
    with db.session() as session:
        changed = [numbers.set_tenant(session, scope, number_id, tenant_id) for number_id in wanted]
        owners = {n.owner_id for n in changed}
    cnam.push(db, carrier, [n.id for n in changed], scope.account_id)
    for owner_id in sorted(owners):
        resale.bill_tenants(db, settings, owner_id)
    return changed


@dataclass(frozen=True)
class NumberChange:
    """What ``PATCH /telephony/numbers/{id}`` changes: each field only when given."""

    tenant_id: str | None = None
    change_tenant: bool = True
    cnam: str | None = None
    change_cnam: bool = False
    friendly_name: str | None = None
    change_friendly_name: bool = False


def update_number(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    number_id: str,
    change: NumberChange,
) -> PhoneNumber:
    with db.session() as session:
        number = numbers.get_number(session, scope, number_id)
        if change.change_tenant:
            number = numbers.set_tenant(session, scope, number_id, change.tenant_id)
        if change.change_cnam:
            number, _ = cnam.set_own_name(session, scope, number_id, change.cnam)
        if change.change_friendly_name:
            number = numbers.set_friendly_name(session, scope, number_id, change.friendly_name)
    cnam.push(db, carrier, [number.id], scope.account_id)
    if change.change_tenant:
        resale.bill_tenants(db, settings, number.owner_id)
    return number


def assign_to_agent(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    number_id: str,
    agent_id: str,
    assignment_type: str,
) -> NumberAssignment:
    """Point a number at an agent for one direction; a number not yet given to
    a tenant goes to the agent's (named, and resold, as above)."""
    with db.session() as session:
        assignment = numbers.assign_agent(session, scope, number_id, agent_id, assignment_type)
        owner_id = session.get_one(PhoneNumber, assignment.number_id).owner_id
    cnam.push(db, carrier, [assignment.number_id], scope.account_id)
    resale.bill_tenants(db, settings, owner_id)
    return assignment
