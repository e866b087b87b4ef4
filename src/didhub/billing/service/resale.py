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
| an outbound call to a destination | its rate | rate + markup %, at least retail outbound |

An event is resold as it happened, whenever the charge is written: to the
tenant the number served at the event's moment, at the retail price in force
then (``retail_price_versions``), and not at all if no retail price applied.
The moment is when the assignment was made, the 00:00 UTC start of a renewal's
period, a call's start. Who a number served comes from its history
(``number_events``: ``tenant.assigned`` / ``tenant.unassigned``).

Each resold event is a ``ResaleCharge`` with a unique ``source``, inserted
with ``ON CONFLICT (source) DO NOTHING``: a sweep and a request may both find
the same event due, and whichever records it second records, and charges,
nothing. A tenant's wallet may go below zero for these charges: that is what
it owes its partner.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_UP, Decimal

from sqlalchemy import ColumnElement, String, cast, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from didhub import clock
from didhub.accounts import service as accounts
from didhub.accounts.models import Account
from didhub.billing.models import (
    Renewal,
    ResaleCharge,
    RetailPrice,
    RetailPriceVersion,
    UsageRecord,
)
from didhub.billing.service.rating import RATE_PLACES, charge_for
from didhub.config import Settings
from didhub.db import Database, table_of
from didhub.errors import Forbidden, ValidationFailed
from didhub.numbers.lifecycle import ACTIVE
from didhub.numbers.models import NumberEvent, PhoneNumber
from didhub.tenancy import Scope
from didhub.wallet import ledger

DEFAULT = "default"
NUMBER_TYPES = ("local", "toll-free", "mobile")
TENANT_ASSIGNED = "tenant.assigned"
TENANT_UNASSIGNED = "tenant.unassigned"
_CHUNK = 5000  # ids per IN list: well under SQLite's bound-parameter limit


def _amount(value: Decimal, field: str, places: str) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValidationFailed("must be zero or more", field=field)
    # Before quantizing: past 28 digits, quantize raises instead of answering.
    if value > 10_000:
        raise ValidationFailed("at most 10000", field=field)
    if value != value.quantize(Decimal(places)):
        raise ValidationFailed(f"at most {len(places) - 2} decimal places", field=field)
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
    outbound_markup_percent: Decimal = Decimal("0"),
) -> RetailPrice:
    """Set a retail price from now on. Events before now keep the price they
    happened under (or none): a new version is added, none is changed."""
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
    monthly = _amount(monthly, "monthly", "0.01")
    setup = _amount(setup, "setup", "0.01")
    per_minute_inbound = _amount(per_minute_inbound, "per_minute_inbound", "0.0001")
    per_minute_outbound = _amount(per_minute_outbound, "per_minute_outbound", "0.0001")
    outbound_markup_percent = _amount(outbound_markup_percent, "outbound_markup_percent", "0.01")
    now = clock.now()
    # The row exists once, whoever sets it first: two first PUTs at once both
    # insert, one of them does nothing, and each then takes the row's lock (only
    # this path locks it) and writes in turn; the later write is the price.
    table = table_of(RetailPrice)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    session.execute(
        insert.values(
            partner_id=scope.account_id,
            applies_to=applies_to,
            phone_number_type=phone_number_type,
            monthly=monthly,
            setup=setup,
            per_minute_inbound=per_minute_inbound,
            per_minute_outbound=per_minute_outbound,
            outbound_markup_percent=outbound_markup_percent,
            updated_at=now,
        ).on_conflict_do_nothing(
            index_elements=[table.c.partner_id, table.c.applies_to, table.c.phone_number_type]
        )
    )
    price = session.scalars(
        select(RetailPrice)
        .where(
            RetailPrice.partner_id == scope.account_id,
            RetailPrice.applies_to == applies_to,
            RetailPrice.phone_number_type == phone_number_type,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    price.monthly = monthly
    price.setup = setup
    price.per_minute_inbound = per_minute_inbound
    price.per_minute_outbound = per_minute_outbound
    price.outbound_markup_percent = outbound_markup_percent
    price.updated_at = now
    session.add(
        RetailPriceVersion(
            partner_id=scope.account_id,
            applies_to=applies_to,
            phone_number_type=phone_number_type,
            monthly=monthly,
            setup=setup,
            per_minute_inbound=per_minute_inbound,
            per_minute_outbound=per_minute_outbound,
            outbound_markup_percent=outbound_markup_percent,
            valid_from=now,
        )
    )
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


class _PriceBook:
    """Every version of the retail prices of the partners that resell: which
    price applied to a tenant's number of a type at a moment."""

    def __init__(self, versions: Iterable[RetailPriceVersion]) -> None:
        by_key: dict[tuple[str, str, str], list[RetailPriceVersion]] = defaultdict(list)
        for v in sorted(versions, key=lambda v: (v.valid_from, v.id)):
            by_key[(v.partner_id, v.applies_to, v.phone_number_type)].append(v)
        self._versions = dict(by_key)
        self._starts = {k: [v.valid_from for v in vs] for k, vs in by_key.items()}
        self.partners = {partner for partner, _, _ in by_key}
        # Nothing before a partner's first price is ever resold: the lower bound
        # of every event query.
        self.since = min((vs[0].valid_from for vs in by_key.values()), default=None)

    @classmethod
    def load(cls, session: Session, partner_id: str | None) -> _PriceBook:
        query = select(RetailPriceVersion)
        if partner_id is not None:
            query = query.where(RetailPriceVersion.partner_id == partner_id)
        return cls(session.scalars(query))

    def _version(self, key: tuple[str, str, str], moment: datetime) -> RetailPriceVersion | None:
        starts = self._starts.get(key)
        if not starts:
            return None
        # The last version set at or before the moment (ties: the later one set).
        index = bisect.bisect_right(starts, moment)
        return self._versions[key][index - 1] if index else None

    def at(
        self, partner: str, tenant: str, kind: str, moment: datetime
    ) -> RetailPriceVersion | None:
        """The tenant's own price in force at ``moment``, else the default's."""
        return self._version((partner, tenant, kind), moment) or self._version(
            (partner, DEFAULT, kind), moment
        )


class _Tenancies:
    """Who each number served when, from its tenant events. A number with none
    still serves whom it was created for (a tenant that bought it, or nobody)."""

    def __init__(
        self, initial: dict[str, str | None], changes: dict[str, list[tuple[datetime, str | None]]]
    ) -> None:
        self._initial = initial
        self._changes = changes
        self._starts = {k: [when for when, _ in v] for k, v in changes.items()}

    @classmethod
    def load(cls, session: Session, numbers: Iterable[PhoneNumber]) -> _Tenancies:
        by_id = {n.id: n for n in numbers}
        changes: dict[str, list[tuple[datetime, str | None]]] = defaultdict(list)
        first: dict[str, str | None] = {}
        ids = sorted(by_id)
        for start in range(0, len(ids), _CHUNK):
            for number_id, created_at, data in session.execute(
                select(NumberEvent.number_id, NumberEvent.created_at, NumberEvent.data)
                .where(
                    NumberEvent.number_id.in_(ids[start : start + _CHUNK]),
                    NumberEvent.kind.in_((TENANT_ASSIGNED, TENANT_UNASSIGNED)),
                )
                .order_by(NumberEvent.number_id, NumberEvent.created_at, NumberEvent.id)
            ):
                if number_id not in first:
                    before = data.get("previous_tenant_id")
                    first[number_id] = before if isinstance(before, str) else None
                after = data.get("tenant_id")
                changes[number_id].append((created_at, after if isinstance(after, str) else None))
        initial = {
            number_id: first.get(number_id, number.tenant_id) for number_id, number in by_id.items()
        }
        return cls(initial, dict(changes))

    def at(self, number_id: str, moment: datetime) -> str | None:
        starts = self._starts.get(number_id)
        if starts:
            # A change made at the very moment counts: an assignment is at its own time.
            index = bisect.bisect_right(starts, moment)
            if index:
                return self._changes[number_id][index - 1][1]
        return self._initial.get(number_id)

    def tenants(self) -> set[str]:
        named = {t for v in self._changes.values() for _, t in v if t is not None}
        return named | {t for t in self._initial.values() if t is not None}


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


def _unsold(source: ColumnElement[str]) -> ColumnElement[bool]:
    return ~exists().where(ResaleCharge.source == source)


def _ever_served(number: type[PhoneNumber]) -> ColumnElement[bool]:
    """A partner's number never given to a tenant has nothing to resell."""
    return exists().where(NumberEvent.number_id == number.id, NumberEvent.kind == TENANT_ASSIGNED)


def _assignments(session: Session, book: _PriceBook, since: datetime) -> list[_Due]:
    """Each tenant pays setup + first month once per number, for the first
    assignment of it made while a retail price applied (the number active)."""
    tenant = aliased(Account)
    assigned_to = NumberEvent.data["tenant_id"].as_string()
    source = literal("assign:") + PhoneNumber.id + literal(":") + assigned_to
    rows = session.execute(
        select(NumberEvent.created_at, tenant.id, PhoneNumber)
        .join(PhoneNumber, PhoneNumber.id == NumberEvent.number_id)
        .join(tenant, tenant.id == assigned_to)
        .where(
            NumberEvent.kind == TENANT_ASSIGNED,
            NumberEvent.created_at >= since,
            tenant.parent_id == PhoneNumber.owner_id,
            PhoneNumber.owner_id.in_(book.partners),
            PhoneNumber.is_managed.is_(True),
            PhoneNumber.status == ACTIVE,
            _unsold(source),
        )
        .order_by(NumberEvent.created_at, NumberEvent.id)
    )
    due: dict[str, _Due] = {}
    for moment, tenant_id, number in rows:
        key = f"assign:{number.id}:{tenant_id}"
        price = book.at(number.owner_id, tenant_id, number.phone_number_type, moment)
        if price is None or key in due:
            continue
        due[key] = _Due(
            key,
            "setup",
            number.owner_id,
            tenant_id,
            number.id,
            price.setup + price.monthly,
            # what the partner paid at purchase for the same setup + month
            number.upfront_cost + number.monthly_cost,
            number.currency,
            moment.date(),
        )
    return list(due.values())


def _served_by(
    book: _PriceBook,
    tenancies: _Tenancies,
    parents: dict[str, str | None],
    number: PhoneNumber,
    moment: datetime,
) -> tuple[str, RetailPriceVersion] | None:
    """The partner's tenant the number served at ``moment`` and the retail
    price that applied to it then; None if either is missing."""
    tenant_id = tenancies.at(number.id, moment)
    if tenant_id is None or parents.get(tenant_id) != number.owner_id:
        return None
    price = book.at(number.owner_id, tenant_id, number.phone_number_type, moment)
    return (tenant_id, price) if price is not None else None


def _renewals(session: Session, book: _PriceBook, since: datetime) -> list[_Due]:
    renewed = literal("renewal:") + cast(Renewal.id, String)
    rows = session.execute(
        select(Renewal, PhoneNumber)
        .join(PhoneNumber, PhoneNumber.id == Renewal.number_id)
        .where(
            PhoneNumber.owner_id.in_(book.partners),
            PhoneNumber.is_managed.is_(True),
            Renewal.period_start >= since.date(),
            _ever_served(PhoneNumber),
            _unsold(renewed),
        )
    )
    found = list(rows)
    tenancies = _Tenancies.load(session, {n.id: n for _, n in found}.values())
    parents = _parents(session, tenancies)
    due: list[_Due] = []
    for renewal, number in found:
        # A month is the tenant's who was served when it began.
        moment = datetime.combine(renewal.period_start, time(), UTC)
        served = _served_by(book, tenancies, parents, number, moment)
        if served is None:
            continue
        tenant_id, price = served
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
    return due


def _calls(
    session: Session, book: _PriceBook, since: datetime, calls: Sequence[int] | None
) -> list[_Due]:
    called = literal("usage:") + cast(UsageRecord.id, String)
    query = (
        select(UsageRecord, PhoneNumber)
        .join(PhoneNumber, PhoneNumber.id == UsageRecord.number_id)
        .where(
            PhoneNumber.owner_id.in_(book.partners),
            PhoneNumber.is_managed.is_(True),
            UsageRecord.posted_at.is_not(None),
            UsageRecord.started_at >= since,
            _ever_served(PhoneNumber),
            _unsold(called),
        )
    )
    if calls is not None:
        query = query.where(UsageRecord.id.in_(calls))
    found = list(session.execute(query))
    tenancies = _Tenancies.load(session, {n.id: n for _, n in found}.values())
    parents = _parents(session, tenancies)
    due: list[_Due] = []
    for call, number in found:
        # The tenant served when the call began, not when it was rated.
        served = _served_by(book, tenancies, parents, number, call.started_at)
        if served is None:
            continue
        tenant_id, price = served
        rate = retail_rate(price, call)
        due.append(
            _Due(
                f"usage:{call.id}",
                "usage",
                number.owner_id,
                tenant_id,
                number.id,
                charge_for(rate, call.billable_seconds),
                call.amount,
                call.currency,
                call.started_at.date(),
            )
        )
    return due


def retail_rate(price: RetailPriceVersion, call: UsageRecord) -> Decimal:
    """A call's retail rate a minute. Inbound and outbound calls without a
    destination: the partner's flat per-minute price. An outbound call rated
    by destination: the platform's rate plus the partner's markup, but never
    below the flat outbound price (a domestic call costs the tenant what the
    partner advertises; a dearer destination is resold at cost plus markup,
    never at a loss)."""
    if call.direction == "inbound":
        return price.per_minute_inbound
    if call.destination is None:
        return price.per_minute_outbound
    marked_up = (call.rate * (100 + price.outbound_markup_percent) / 100).quantize(
        RATE_PLACES, rounding=ROUND_UP
    )
    return max(price.per_minute_outbound, marked_up)


def _parents(session: Session, tenancies: _Tenancies) -> dict[str, str | None]:
    ids = sorted(tenancies.tenants())
    parents: dict[str, str | None] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Account.id, Account.parent_id).where(Account.id.in_(ids[start : start + _CHUNK]))
        )
        parents.update({tenant_id: parent_id for tenant_id, parent_id in rows})
    return parents


def _candidates(
    session: Session, partner_id: str | None, calls: Sequence[int] | None = None
) -> list[_Due]:
    """Events of partners' numbers that happened while they served a tenant
    under a retail price and have no resale charge yet (anti-joins on the
    unique ``source``). With ``calls``, only those usage records (a batch just
    rated)."""
    book = _PriceBook.load(session, partner_id)
    if book.since is None:
        return []  # nobody resells: nothing to look at
    due: list[_Due] = []
    if calls is None:
        due += _assignments(session, book, book.since)
        due += _renewals(session, book, book.since)
    due += _calls(session, book, book.since, calls)
    return due


def _insert_new(session: Session, rows: list[dict[str, object]]) -> list[tuple[int, Decimal]]:
    """Insert the charges no one recorded yet, skip the rest: ``(id, retail)``
    of the rows actually inserted. A concurrent writer's row wins silently."""
    table = table_of(ResaleCharge)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_nothing(index_elements=[table.c.source]).returning(
        table.c.id, table.c.retail
    )
    return [(row_id, retail) for row_id, retail in session.execute(statement, rows)]


def bill_tenants(
    db: Database,
    settings: Settings,
    partner_id: str | None = None,
    calls: Sequence[int] | None = None,
) -> Decimal:
    """Charge tenants retail for every resold event not charged yet (or, with
    ``calls``, for those usage records only); one ledger transaction per
    tenant, for exactly the charges it inserted. Safe to run beside itself:
    returns the total retail this call charged."""
    with db.session() as session:
        due = _candidates(session, partner_id, calls)
    by_tenant: dict[tuple[str, str], list[_Due]] = defaultdict(list)
    for item in due:
        by_tenant[(item.partner_id, item.tenant_id)].append(item)
    total = Decimal("0")
    for (partner, tenant), items in by_tenant.items():
        with db.session() as session:
            tenant_wallet = ledger.ensure_wallet(session, tenant, settings.currency)
            partner_wallet = ledger.ensure_wallet(session, partner, settings.currency)
            # The lock order's first level, before any write: a sweep and a
            # request billing the same tenant take turns here.
            ledger.lock_wallets(session, [tenant, partner], settings.currency)
            now = clock.now()
            inserted = _insert_new(
                session,
                [
                    {
                        "source": i.source,
                        "kind": i.kind,
                        "partner_id": i.partner_id,
                        "tenant_id": i.tenant_id,
                        "number_id": i.number_id,
                        "retail": i.retail,
                        "wholesale": i.wholesale,
                        "currency": i.currency,
                        "occurred_on": i.occurred_on,
                        "ledger_transaction_id": None,
                        "created_at": now,
                    }
                    for i in items
                ],
            )
            amount = sum((retail for _, retail in inserted), Decimal("0"))
            if amount:
                txn = ledger.transfer(
                    session,
                    kind="resale",
                    description=f"Your provider's charges: {len(inserted)} item(s)",
                    debit=tenant_wallet,
                    credit=partner_wallet,
                    amount=amount,
                    reference=f"resale:{tenant}",
                )
                ids = [row_id for row_id, _ in inserted]
                for start in range(0, len(ids), _CHUNK):
                    session.execute(
                        update(ResaleCharge)
                        .where(ResaleCharge.id.in_(ids[start : start + _CHUNK]))
                        .values(ledger_transaction_id=txn.id)
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
    rows = session.execute(query).all()
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
