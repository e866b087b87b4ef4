"""The accounts and agents a caller may see: tenancy for ``accounts`` and
``agents`` in one place. A partner's scope reads itself and its tenants, a
tenant's only itself; an agent is readable where its tenant is."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from didhub.accounts.models import Account, Agent
from didhub.errors import NotFound
from didhub.tenancy import TENANT, Scope


def readable(scope: Scope) -> ColumnElement[bool]:
    """SQL: the account is inside the scope."""
    return scope.owns(Account.id)


def agents_readable(scope: Scope) -> ColumnElement[bool]:
    """SQL: the agent belongs to a tenant inside the scope."""
    return scope.owns(Agent.tenant_id)


def get(
    session: Session,
    scope: Scope,
    account_id: str,
    *,
    kind: str | None = None,
    for_update: bool = False,
    field: str = "account_id",
) -> Account:
    """An account the scope may act on (of ``kind``, when given); 404 otherwise."""
    query = select(Account).where(Account.id == account_id, readable(scope))
    if kind is not None:
        query = query.where(Account.kind == kind)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    account = session.scalars(query).first()
    if account is None:
        what = "tenant" if kind == TENANT else "account"
        raise NotFound(f"{what} {account_id} not found", field=field)
    return account


def get_agent(
    session: Session,
    scope: Scope,
    agent_id: str,
    *,
    for_update: bool = False,
    field: str = "agent_id",
) -> Agent:
    query = select(Agent).where(Agent.id == agent_id, agents_readable(scope))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    agent = session.scalars(query).first()
    if agent is None:
        raise NotFound(f"agent {agent_id} not found", field=field)
    return agent
