"""Tenancy as a type: :class:`Scope`, what a caller may act on.

A partner acts on its own account and its tenants'; a tenant on its own only.
Every query of account-owned rows filters through ``Scope.owns(column)``, and an
id outside the scope reads as "not found", never as someone's data.

Authentication computes the accounts a caller may see once per request
(``accessible``), so each query compares with that list instead of asking the
accounts table again; a scope made without it (a partner switching into a
tenant's view builds a tenant scope, which needs none) asks the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, column, or_, select, table
from sqlalchemy.orm import InstrumentedAttribute, Session

PARTNER = "partner"
TENANT = "tenant"

# The accounts table as tenancy needs it (its id and its partner), without its
# model: everything below the accounts domain may ask who a tenant's partner is.
accounts_table = table("accounts", column("id"), column("parent_id"))
_accounts = accounts_table
# Beyond this many accessible accounts a query asks the table instead of
# carrying them all as parameters (SQLite allows 32,766 per statement).
_LISTED = 500


@dataclass(frozen=True)
class Scope:
    account_id: str
    kind: str
    # The accounts this caller may act on (itself first), when authentication
    # computed them; None: ask the accounts table.
    accessible: frozenset[str] | None = None

    def owns(
        self, col: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]
    ) -> ColumnElement[bool]:
        """SQL: ``col`` names an account inside this scope."""
        if self.kind != PARTNER:
            return col == self.account_id
        if self.accessible is not None and len(self.accessible) <= _LISTED:
            return col.in_(sorted(self.accessible))
        tenants = select(_accounts.c.id).where(_accounts.c.parent_id == self.account_id)
        return or_(col == self.account_id, col.in_(tenants.scalar_subquery()))

    def can_see(self, session: Session, account_id: str | None) -> bool:
        if account_id is None:
            return False
        if account_id == self.account_id:
            return True
        if self.kind != PARTNER:
            return False
        if self.accessible is not None:
            return account_id in self.accessible
        parent = session.execute(
            select(_accounts.c.parent_id).where(_accounts.c.id == account_id)
        ).scalar_one_or_none()
        return parent == self.account_id
