"""Assigning numbers to tenants and to agents, per direction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts.models import Account, Agent
from didhub.db import new_id
from didhub.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
)
from didhub.numbers import cnam, lifecycle, repository
from didhub.numbers.lifecycle import ACTIVE, PROVISIONING
from didhub.numbers.models import (
    NumberAssignment,
    PhoneNumber,
)
from didhub.numbers.service.inventory import lock_number
from didhub.tenancy import Scope

ASSIGNMENT_TYPES = ("inbound", "outbound")


def _require_active(number: PhoneNumber, field: str = "number_id") -> None:
    if number.status != ACTIVE:
        raise Conflict(
            f"{number.e164} is {number.status}; only an active number can be assigned",
            field=field,
            code="number_not_active",
        )


def _live_assignment(
    session: Session, number_id: str, assignment_type: str
) -> NumberAssignment | None:
    return session.scalars(
        select(NumberAssignment).where(
            NumberAssignment.number_id == number_id,
            NumberAssignment.assignment_type == assignment_type,
            NumberAssignment.ended_at.is_(None),
        )
    ).first()


def _end_assignment(
    session: Session,
    number: PhoneNumber,
    assignment: NumberAssignment,
    account_id: str | None,
    reason: str,
) -> None:
    assignment.ended_at = clock.now()
    lifecycle.record(
        session,
        number,
        "agent.unassigned",
        account_id,
        agent_id=assignment.agent_id,
        assignment_type=assignment.assignment_type,
        reason=reason,
    )
    # Flushed now: the live-assignment unique index must see it ended before
    # a new assignment for the same direction is inserted.
    session.flush()


def end_assignments(
    session: Session, number: PhoneNumber, account_id: str | None, reason: str
) -> None:
    for assignment in session.scalars(
        select(NumberAssignment).where(
            NumberAssignment.number_id == number.id, NumberAssignment.ended_at.is_(None)
        )
    ).all():
        _end_assignment(session, number, assignment, account_id, reason)


def set_tenant(
    session: Session, scope: Scope, number_id: str, tenant_id: str | None
) -> PhoneNumber:
    """Assign a number to a tenant (``None`` unassigns). Its agent assignments
    belonged to the previous tenant's agents, so they end."""
    number = lock_number(session, scope, number_id)
    repository.require_writable(session, scope, number, "reassign")
    if number.status not in (PROVISIONING, ACTIVE, lifecycle.SUSPENDED):
        raise Conflict(
            f"{number.e164} is {number.status} and can't be assigned",
            field="number_id",
            code="number_not_active",
        )
    tenant: Account | None = None
    if tenant_id is not None:
        tenant = accounts.get_tenant(session, scope, tenant_id)
    if number.tenant_id == (tenant.id if tenant else None):
        return number
    end_assignments(session, number, scope.account_id, "tenant changed")
    previous = number.tenant_id
    number.tenant_id = tenant.id if tenant else None
    lifecycle.record(
        session,
        number,
        "tenant.assigned" if tenant else "tenant.unassigned",
        scope.account_id,
        tenant_id=number.tenant_id,
        previous_tenant_id=previous,
    )
    session.flush()
    # An inherited caller name now comes from the new tenant: the listing goes
    # pending here and is pushed by the caller (cnam.push) or the sweep.
    cnam.mark(session, number, scope.account_id, reason="tenant changed")
    return number


def _check_assignment_type(value: str) -> str:
    if value not in ASSIGNMENT_TYPES:
        raise ValidationFailed(
            "assignment_type must be 'inbound' or 'outbound'", field="assignment_type"
        )
    return value


def assign_agent(
    session: Session, scope: Scope, number_id: str, agent_id: str, assignment_type: str
) -> NumberAssignment:
    """Point a number at an agent for one direction. A number not yet assigned
    to a tenant goes to the agent's tenant; a number of another tenant can't."""
    _check_assignment_type(assignment_type)
    number = lock_number(session, scope, number_id)
    agent: Agent = accounts.get_agent(session, scope, agent_id)
    _require_active(number)
    if number.tenant_id is None:
        repository.require_writable(session, scope, number, "assign")
        number.tenant_id = agent.tenant_id
        lifecycle.record(
            session, number, "tenant.assigned", scope.account_id, tenant_id=agent.tenant_id
        )
        cnam.mark(session, number, scope.account_id, reason="tenant changed")
    elif number.tenant_id != agent.tenant_id:
        raise Conflict(
            f"{number.e164} belongs to tenant {number.tenant_id}, agent {agent.id} to "
            f"tenant {agent.tenant_id}; assign the number to that tenant first",
            field="agent_id",
            code="tenant_mismatch",
        )
    current = _live_assignment(session, number.id, assignment_type)
    if current is not None:
        if current.agent_id == agent.id:
            return current
        _end_assignment(session, number, current, scope.account_id, "reassigned")
    assignment = NumberAssignment(
        id=new_id("asg"),
        number_id=number.id,
        agent_id=agent.id,
        assignment_type=assignment_type,
        assigned_at=clock.now(),
    )
    session.add(assignment)
    lifecycle.record(
        session,
        number,
        "agent.assigned",
        scope.account_id,
        agent_id=agent.id,
        assignment_type=assignment_type,
    )
    session.flush()
    return assignment


def unassign_agent(
    session: Session, scope: Scope, number_id: str, assignment_type: str
) -> NumberAssignment:
    _check_assignment_type(assignment_type)
    number = lock_number(session, scope, number_id)
    current = _live_assignment(session, number.id, assignment_type)
    if current is None:
        raise NotFound(
            f"{number.e164} has no {assignment_type} assignment", field="assignment_type"
        )
    _end_assignment(session, number, current, scope.account_id, "unassigned")
    return current
