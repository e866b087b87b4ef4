"""Partners getting paid by their tenants.

A partner sets retail prices for its tenants (a default per number type, and
per-tenant overrides). Whenever the platform charges the partner wholesale for
a number that serves one of its tenants, the tenant's wallet pays the partner's
wallet retail for the same event:

| event | wholesale (partner → platform) | retail (tenant → partner) |
|---|---|---|
| number assigned to the tenant | (paid at purchase) | retail setup + first month |
| a monthly renewal | monthly fee | retail monthly |
| a call | per-minute rate | retail per-minute rate |

Each resold event is a ``ResaleCharge`` with a unique ``source``, so a sweep can
run any number of times and resell nothing twice. A tenant's wallet may go below
zero for these charges: that is what it owes its partner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, String, cast, exists, literal, select
from sqlalchemy.orm import Session, aliased

from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts.models import Account
from didhub.accounts.service import Scope
from didhub.billing import ledger
from didhub.billing.models import Renewal, ResaleCharge, RetailPrice, UsageRecord
from didhub.billing.usage import charge_for
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import Forbidden, ValidationFailed
from didhub.numbers.lifecycle import ACTIVE
from didhub.numbers.models import PhoneNumber

DEFAULT = "default"
NUMBER_TYPES = ("local", "toll-free", "mobile")


def _amount(value: Decimal, field: str, places: str) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValidationFailed("must be zero or more", field=field)
    if value != value.quantize(Decimal(places)):
        raise ValidationFailed(f"at most {len(places) - 2} decimal places", field=field)
    if value > 10_000:
        raise ValidationFailed("at most 10000", field=field)
    return value


def set_retail_price(
    session: Session,
    scope: Scope,
    tenant_id: str | None,
    phone_number_type: str,
    monthly: Decimal,
    setup: Decimal,
    per_minute_inbound: Decimal,
    per_minute_outbound: Decimal,
) -> RetailPrice:
    if scope.kind != accounts.PARTNER:
        raise Forbidden("only a partner sets retail prices for its tenants")
    if phone_number_type not in NUMBER_TYPES:
        raise ValidationFailed(
            f"must be one of {', '.join(NUMBER_TYPES)}", field="phone_number_type"
        )
    if tenant_id is not None:
        tenant = accounts.get_tenant(session, scope, tenant_id)
        if tenant.parent_id != scope.account_id:
            raise Forbidden("retail prices are for your own tenants")
    applies_to = tenant_id or DEFAULT
    price = session.scalars(
        select(RetailPrice).where(
            RetailPrice.partner_id == scope.account_id,
            RetailPrice.applies_to == applies_to,
            RetailPrice.phone_number_type == phone_number_type,
        )
    ).first()
    if price is None:
        price = RetailPrice(
            partner_id=scope.account_id,
            applies_to=applies_to,
            phone_number_type=phone_number_type,
        )
        session.add(price)
    price.monthly = _amount(monthly, "monthly", "0.01")
    price.setup = _amount(setup, "setup", "0.01")
    price.per_minute_inbound = _amount(per_minute_inbound, "per_minute_inbound", "0.0001")
    price.per_minute_outbound = _amount(per_minute_outbound, "per_minute_outbound", "0.0001")
    price.updated_at = clock.now()
    session.flush()
    return price


def retail_prices(session: Session, scope: Scope) -> list[RetailPrice]:
    return list(
        session.scalars(
            select(RetailPrice)
            .where(RetailPrice.partner_id == scope.account_id)
            .order_by(RetailPrice.applies_to, RetailPrice.phone_number_type)
        )
    )


def _price_book(session: Session, partner_ids: set[str]) -> dict[tuple[str, str, str], RetailPrice]:
    rows = session.scalars(select(RetailPrice).where(RetailPrice.partner_id.in_(partner_ids)))
    return {(r.partner_id, r.applies_to, r.phone_number_type): r for r in rows}


def _retail(
    book: dict[tuple[str, str, str], RetailPrice], partner: str, tenant: str, kind: str
) -> RetailPrice | None:
    return book.get((partner, tenant, kind)) or book.get((partner, DEFAULT, kind))


@dataclass(frozen=True)
class _Due:
    source: str
    kind: str
    partner_id: str
    tenant_id: str
    number_id: str
    retail: Decimal
    wholesale: Decimal
    currency: str
    occurred_on: date


def _candidates(
    session: Session, partner_id: str | None, calls: Sequence[int] | None = None
) -> list[_Due]:
    """Events of numbers serving a partner's tenant that have no resale charge
    yet, found with anti-joins on the unique ``source`` (no history in memory).
    With ``calls``, only those usage records (a batch just rated)."""
    partners = set(session.scalars(select(RetailPrice.partner_id).distinct()))
    if partner_id is not None:
        partners &= {partner_id}
    if not partners:
        return []  # nobody resells: nothing to look at
    book = _price_book(session, partners)
    tenant = aliased(Account)
    serving = (
        select(PhoneNumber, tenant.id)
        .join(tenant, tenant.id == PhoneNumber.tenant_id)
        .where(
            tenant.parent_id == PhoneNumber.owner_id,
            PhoneNumber.owner_id.in_(partners),
            PhoneNumber.is_managed.is_(True),
        )
    )

    def unsold(source: ColumnElement[str]) -> ColumnElement[bool]:
        return ~exists().where(ResaleCharge.source == source)

    due: list[_Due] = []
    if calls is None:
        assigned = literal("assign:") + PhoneNumber.id + literal(":") + tenant.id
        for number, tenant_id in session.execute(
            serving.where(PhoneNumber.status == ACTIVE, unsold(assigned))
        ).tuples():
            price = _retail(book, number.owner_id, tenant_id, number.phone_number_type)
            if price is not None:
                due.append(
                    _Due(
                        f"assign:{number.id}:{tenant_id}",
                        "setup",
                        number.owner_id,
                        tenant_id,
                        number.id,
                        price.setup + price.monthly,
                        # what the partner paid at purchase for the same setup + month
                        number.upfront_cost + number.monthly_cost,
                        number.currency,
                        clock.now().date(),
                    )
                )
        renewed = literal("renewal:") + cast(Renewal.id, String)
        for renewal, number, tenant_id in session.execute(
            select(Renewal, PhoneNumber, tenant.id)
            .join(PhoneNumber, PhoneNumber.id == Renewal.number_id)
            .join(tenant, tenant.id == PhoneNumber.tenant_id)
            .where(
                tenant.parent_id == PhoneNumber.owner_id,
                PhoneNumber.owner_id.in_(partners),
                PhoneNumber.is_managed.is_(True),
                unsold(renewed),
            )
        ).tuples():
            price = _retail(book, number.owner_id, tenant_id, number.phone_number_type)
            if price is not None:
                due.append(
                    _Due(
                        f"renewal:{renewal.id}",
                        "monthly",
                        number.owner_id,
                        tenant_id,
                        number.id,
                        price.monthly,
                        renewal.amount,
                        renewal.currency,
                        renewal.period_start,
                    )
                )
    called = literal("usage:") + cast(UsageRecord.id, String)
    usage_rows = (
        select(UsageRecord, PhoneNumber)
        .join(PhoneNumber, PhoneNumber.id == UsageRecord.number_id)
        .join(tenant, tenant.id == UsageRecord.tenant_id)
        .where(
            tenant.parent_id == PhoneNumber.owner_id,
            PhoneNumber.owner_id.in_(partners),
            PhoneNumber.is_managed.is_(True),
            UsageRecord.posted_at.is_not(None),
            unsold(called),
        )
    )
    if calls is not None:
        usage_rows = usage_rows.where(UsageRecord.id.in_(calls))
    for call, number in session.execute(usage_rows).tuples():
        assert call.tenant_id is not None
        price = _retail(book, number.owner_id, call.tenant_id, number.phone_number_type)
        if price is not None:
            rate = (
                price.per_minute_inbound
                if call.direction == "inbound"
                else price.per_minute_outbound
            )
            due.append(
                _Due(
                    f"usage:{call.id}",
                    "usage",
                    number.owner_id,
                    call.tenant_id,
                    number.id,
                    charge_for(rate, call.billable_seconds),
                    call.amount,
                    call.currency,
                    call.started_at.date(),
                )
            )
    return due


def bill_tenants(
    db: Database,
    settings: Settings,
    partner_id: str | None = None,
    calls: Sequence[int] | None = None,
) -> Decimal:
    """Charge tenants retail for every resold event not charged yet (or, with
    ``calls``, for those usage records only); one ledger transaction per
    tenant. Returns the total retail charged."""
    with db.session() as session:
        due = _candidates(session, partner_id, calls)
    by_tenant: dict[tuple[str, str], list[_Due]] = defaultdict(list)
    for item in due:
        by_tenant[(item.partner_id, item.tenant_id)].append(item)
    total = Decimal("0")
    for (partner, tenant), items in by_tenant.items():
        with db.session() as session:
            fresh = set(
                session.scalars(
                    select(ResaleCharge.source).where(
                        ResaleCharge.source.in_([i.source for i in items])
                    )
                )
            )
            items = [i for i in items if i.source not in fresh]
            amount = sum((i.retail for i in items), Decimal("0"))
            txn_id = None
            if amount:
                txn = ledger.transfer(
                    session,
                    kind="resale",
                    description=f"Your provider's charges: {len(items)} item(s)",
                    debit=ledger.ensure_wallet(session, tenant, settings.currency),
                    credit=ledger.ensure_wallet(session, partner, settings.currency),
                    amount=amount,
                    reference=f"resale:{tenant}",
                )
                txn_id = txn.id
            now = clock.now()
            session.add_all(
                ResaleCharge(
                    source=i.source,
                    kind=i.kind,
                    partner_id=i.partner_id,
                    tenant_id=i.tenant_id,
                    number_id=i.number_id,
                    retail=i.retail,
                    wholesale=i.wholesale,
                    currency=i.currency,
                    occurred_on=i.occurred_on,
                    ledger_transaction_id=txn_id,
                    created_at=now,
                )
                for i in items
            )
            total += amount
    return total


@dataclass(frozen=True)
class MarginLine:
    tenant_id: str
    tenant_name: str
    month: str
    retail: Decimal
    wholesale: Decimal

    @property
    def margin(self) -> Decimal:
        return self.retail - self.wholesale


def margin_report(
    session: Session, scope: Scope, start: date | None = None, end: date | None = None
) -> list[MarginLine]:
    """Retail − wholesale by tenant and month, for a partner."""
    if scope.kind != accounts.PARTNER:
        raise Forbidden("the margin report is a partner's")
    query = (
        select(ResaleCharge, Account.name)
        .join(Account, Account.id == ResaleCharge.tenant_id)
        .where(ResaleCharge.partner_id == scope.account_id)
    )
    rows = session.execute(query).tuples().all()
    totals: dict[tuple[str, str, str], list[Decimal]] = {}
    for charge, name in rows:
        day = charge.occurred_on
        if (start and day < start) or (end and day >= end):
            continue
        key = (charge.tenant_id, name, day.strftime("%Y-%m"))
        acc = totals.setdefault(key, [Decimal("0"), Decimal("0")])
        acc[0] += charge.retail
        acc[1] += charge.wholesale
    return [
        MarginLine(t, n, m, r, w)
        for (t, n, m), (r, w) in sorted(totals.items(), key=lambda kv: (kv[0][2], kv[0][1]))
    ]
