"""The number lifecycle's rules: search, quote (with holds), the purchase saga,
inventory, tenant and agent assignment, release, and reconciliation.

Services take a Session (or the Database where a carrier call sits between two
transactions) and know nothing of HTTP; the API, the dashboard and the CLI all
call these functions.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.accounts import service as accounts
from didhub.accounts.models import Account, Agent
from didhub.accounts.service import Scope
from didhub.billing import ledger, resale
from didhub.billing import wallet as billing_wallet
from didhub.carriers.base import (
    AvailableNumber,
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    NumberOrderResult,
    SearchQuery,
    searches_by_postal_code,
)
from didhub.carriers.multi import SearchResults
from didhub.config import Price, Settings
from didhub.db import Database, new_id
from didhub.errors import (
    CarrierError,
    Conflict,
    Forbidden,
    InsufficientFunds,
    NotFound,
    NumberUnavailable,
    ValidationFailed,
)
from didhub.numbers import cnam, lifecycle
from didhub.numbers.lifecycle import ACTIVE, FAILED, LIVE_STATUSES, PROVISIONING, RELEASED
from didhub.numbers.models import NumberAssignment, NumberHold, NumberOrder, PhoneNumber
from didhub.payments.base import PaymentGateway

ASSIGNMENT_TYPES = ("inbound", "outbound")
MAX_NUMBERS_PER_ORDER = 100


# ---------------------------------------------------------------- prices


def price_for(settings: Settings, number_type: str) -> Price:
    try:
        return settings.prices[number_type]
    except KeyError:
        raise ValidationFailed(
            f"no price is configured for {number_type} numbers", field="phone_number_type"
        ) from None


@functools.lru_cache(maxsize=65536)
def add_months(start: date, months: int) -> date:
    """The monthly anniversary: the 31st becomes the month's last day."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


# ---------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchPage:
    data: list[AvailableNumber]
    page: int
    page_size: int
    has_more: bool
    # Carriers a multi-carrier search answered without (name -> why): a partial page.
    failed_carriers: dict[str, str] = field(default_factory=dict)


def _held_by_others(session: Session, scope: Scope, now: datetime) -> frozenset[str]:
    rows = session.scalars(
        select(NumberHold.e164).where(
            NumberHold.expires_at > now, NumberHold.holder_id != scope.account_id
        )
    )
    return frozenset(rows)


def search(
    db: Database,
    carrier: Carrier,
    scope: Scope,
    query: SearchQuery,
    page: int = 1,
    page_size: int = 20,
) -> SearchPage:
    """One page of available numbers. Numbers held for another buyer's quote are
    hidden; numbers the carrier sold are never offered."""
    # The carrier is asked outside our transaction: on SQLite a transaction
    # holds the database lock, and the carrier (the sandbox) opens its own.
    if query.postal_code and not searches_by_postal_code(carrier):
        raise ValidationFailed(
            f"the {carrier.name} carrier can't search by ZIP code; search by state, "
            "city or rate center",
            field="postal_code",
        )
    with db.read_session() as session:
        exclude = _held_by_others(session, scope, clock.now())
    start = (page - 1) * page_size
    try:
        results = carrier.search(query, exclude)
        found = list(itertools.islice(results, start, start + page_size + 1))
    except CarrierFailure as exc:
        # Never an empty page: "nothing found" would read as "nothing available".
        raise CarrierError(f"the carrier search failed: {exc}") from exc
    return SearchPage(
        data=found[:page_size],
        page=page,
        page_size=page_size,
        has_more=len(found) > page_size,
        failed_carriers=dict(results.failed) if isinstance(results, SearchResults) else {},
    )


# ---------------------------------------------------------------- quote and holds


@dataclass(frozen=True)
class QuoteLine:
    number: AvailableNumber
    monthly_cost: Decimal
    upfront_cost: Decimal

    @property
    def total(self) -> Decimal:
        return self.monthly_cost + self.upfront_cost


@dataclass(frozen=True)
class Quote:
    id: str
    lines: list[QuoteLine]
    currency: str
    expires_at: datetime
    wallet_balance: Decimal

    @property
    def monthly_total(self) -> Decimal:
        return sum((line.monthly_cost for line in self.lines), Decimal("0.00"))

    @property
    def upfront_total(self) -> Decimal:
        return sum((line.upfront_cost for line in self.lines), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.monthly_total + self.upfront_total


def validate_numbers(values: Sequence[str], field: str) -> list[str]:
    if not values:
        raise ValidationFailed("give at least one phone number", field=field)
    if len(values) > MAX_NUMBERS_PER_ORDER:
        raise ValidationFailed(f"at most {MAX_NUMBERS_PER_ORDER} numbers per request", field=field)
    numbers: list[str] = []
    for index, value in enumerate(values):
        where = f"{field}[{index}]" if len(values) > 1 else field
        e164 = numbering.parse_e164(value, field=where)
        if numbering.region_of(e164) not in numbering.SUPPORTED_COUNTRIES:
            raise ValidationFailed(
                f"{e164}: numbers of {numbering.region_of(e164)} are not supported yet "
                f"(supported: {', '.join(numbering.SUPPORTED_COUNTRIES)})",
                field=where,
            )
        if e164 in numbers:
            raise ValidationFailed(f"{e164} is listed twice", field=field)
        numbers.append(e164)
    return numbers


def _describe(carrier: Carrier, numbers: Sequence[str], field: str) -> list[AvailableNumber]:
    described = []
    for e164 in numbers:
        try:
            info = carrier.lookup(e164)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            # A carrier we couldn't ask must not read as "not available".
            raise CarrierError(
                f"could not ask the carrier about {e164}: {exc}", field=field
            ) from exc
        if info is None:
            raise NumberUnavailable(f"{e164} is not available", field=field)
        described.append(info)
    return described


def _line(settings: Settings, info: AvailableNumber) -> QuoteLine:
    price = price_for(settings, info.phone_number_type)
    return QuoteLine(info, price.monthly, price.setup)


def _check_not_taken(
    session: Session, scope: Scope, numbers: Sequence[str], now: datetime, field: str
) -> None:
    """409 for a number someone owns or holds; locks existing holds (PostgreSQL)."""
    holds = session.scalars(
        select(NumberHold).where(NumberHold.e164.in_(numbers)).with_for_update()
    ).all()
    for hold in holds:
        if hold.holder_id != scope.account_id and hold.expires_at > now:
            raise NumberUnavailable(
                f"{hold.e164} is held for another buyer's purchase", field=field
            )
    owned = session.scalars(
        select(PhoneNumber.e164).where(
            PhoneNumber.e164.in_(numbers), PhoneNumber.status.in_(LIVE_STATUSES)
        )
    ).first()
    if owned is not None:
        raise NumberUnavailable(f"{owned} is not available", field=field)


def quote(
    db: Database, carrier: Carrier, settings: Settings, scope: Scope, phone_numbers: Sequence[str]
) -> Quote:
    """Price numbers (first month + one-time setup) and hold them for the buyer
    for ``hold_minutes``, so the confirmation dialog's numbers can't be taken."""
    field_name = "phone_numbers"
    numbers = validate_numbers(phone_numbers, field_name)
    lines = [_line(settings, info) for info in _describe(carrier, numbers, field_name)]
    quote_id = new_id("quo")
    now = clock.now()
    expires_at = now + timedelta(minutes=settings.hold_minutes)
    try:
        with db.session() as session:
            _check_not_taken(session, scope, numbers, now, field_name)
            session.execute(delete(NumberHold).where(NumberHold.e164.in_(numbers)))
            session.add_all(
                NumberHold(
                    e164=n, holder_id=scope.account_id, quote_id=quote_id, expires_at=expires_at
                )
                for n in sorted(numbers)
            )
            session.flush()
            balance = ledger.wallet_balance(session, scope.account_id, settings.currency)
    except IntegrityError:
        raise NumberUnavailable(
            "a number was just held by another buyer", field=field_name
        ) from None
    carrier.reserve(numbers, quote_id, settings.hold_minutes)
    return Quote(quote_id, lines, settings.currency, expires_at, balance)


def expire_holds(session: Session) -> int:
    """Set-based sweep of lapsed holds (they're already ignored once expired)."""
    result = session.execute(delete(NumberHold).where(NumberHold.expires_at <= clock.now()))
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- purchase saga


@dataclass
class PurchaseResult:
    order_id: str
    numbers: list[PhoneNumber]
    charged: Decimal
    refunded: Decimal = Decimal("0.00")
    outcome_known: bool = True
    errors: dict[str, str] = field(default_factory=dict)


def purchase(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    phone_numbers: Sequence[str],
    field_name: str = "phone_numbers",
    gateway: PaymentGateway | None = None,
) -> PurchaseResult:
    """The purchase saga (see docs/architecture.md):

    1. validate and price; 2. one transaction: lock the wallet, check funds,
    debit, insert the numbers as ``provisioning`` under a new order id;
    3. order from the carrier with that id; 4. settle: ``active``, or ``failed``
    with an exact refund; an unknown outcome stays ``provisioning`` for
    ``reconcile``.
    """
    numbers = validate_numbers(phone_numbers, field_name)
    lines = [_line(settings, info) for info in _describe(carrier, numbers, field_name)]
    total = sum((line.total for line in lines), Decimal("0.00"))
    order_id = new_id("ord")
    with db.session() as session:
        billing_wallet.require_good_standing(session, scope.account_id)
    # The partner guide: an empty wallet is charged to the card when
    # auto-recharge is on. That top-up stays in the wallet whatever follows.
    billing_wallet.cover(db, gateway, settings, scope.account_id, total, order_id)
    now = clock.now()
    try:
        with db.session() as session:
            wallet = ledger.lock_wallet(session, scope.account_id, settings.currency)
            _check_not_taken(session, scope, numbers, now, field_name)
            if wallet.balance < total:
                raise InsufficientFunds(
                    f"this purchase costs {total:.2f} {settings.currency} but the wallet "
                    f"holds {wallet.balance:.2f}; top up and try again",
                    field="wallet",
                )
            revenue = ledger.ensure_platform_book(session, ledger.REVENUE, settings.currency)
            txn = ledger.transfer(
                session,
                kind="purchase",
                description=f"Purchase of {len(numbers)} number(s): first month and setup",
                debit=wallet.id,
                credit=revenue,
                amount=total,
                reference=order_id,
            )
            session.add(
                NumberOrder(
                    id=order_id,
                    account_id=scope.account_id,
                    carrier=carrier.name,
                    status="pending",
                    total=total,
                    currency=settings.currency,
                    ledger_transaction_id=txn.id,
                    created_at=now,
                )
            )
            session.flush()
            # A tenant buying for itself owns and serves the number (the
            # AI-agent seed); a partner's number starts Unassigned.
            tenant_id = scope.account_id if scope.kind == accounts.TENANT else None
            rows = [
                PhoneNumber(
                    id=new_id("num"),
                    e164=line.number.phone_number,
                    country_code=line.number.country_code,
                    phone_number_type=line.number.phone_number_type,
                    locality=line.number.locality,
                    administrative_area=line.number.administrative_area,
                    rate_center=line.number.rate_center,
                    features=list(line.number.features),
                    status=PROVISIONING,
                    is_managed=True,
                    carrier=carrier.name,
                    order_id=order_id,
                    owner_id=scope.account_id,
                    tenant_id=tenant_id,
                    monthly_cost=line.monthly_cost,
                    upfront_cost=line.upfront_cost,
                    currency=settings.currency,
                    created_at=now,
                )
                # Inserted in E.164 order, as quote inserts holds: two buyers
                # of [A, B] and [B, A] then wait for each other, never deadlock.
                for line in sorted(lines, key=lambda item: item.number.phone_number)
            ]
            session.add_all(rows)
            session.flush()
            for row in rows:
                lifecycle.record(
                    session, row, "status.provisioning", scope.account_id, order_id=order_id
                )
            session.execute(delete(NumberHold).where(NumberHold.e164.in_(numbers)))
    except IntegrityError:
        # The live-number unique index: someone else's purchase won the race.
        raise NumberUnavailable(
            "a number was just bought by someone else", field=field_name
        ) from None

    try:
        results = carrier.order(order_id, numbers)
    except CarrierFailure as exc:
        results = [
            NumberOrderResult(n, "failed", str(exc) or "carrier refused the order") for n in numbers
        ]
    except CarrierOutcomeUnknown:
        with db.session() as session:
            pending = list(
                session.scalars(select(PhoneNumber).where(PhoneNumber.order_id == order_id))
            )
        pending.sort(key=lambda n: numbers.index(n.e164))
        return PurchaseResult(order_id, pending, charged=total, outcome_known=False)

    settled = settle_order(db, carrier, settings, order_id, results, authoritative=True)
    settled.numbers.sort(key=lambda n: numbers.index(n.e164))  # the order asked for
    billing_wallet.recharge_below_threshold(db, gateway, settings, scope.account_id, order_id)
    refuse_if_none_provided(settled, settings, field_name)
    return settled


def refuse_if_none_provided(result: PurchaseResult, settings: Settings, field_name: str) -> None:
    """A settled order the carrier provided none of is a 502 naming the refund."""
    if result.outcome_known and all(n.status == FAILED for n in result.numbers):
        reasons = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        raise CarrierError(
            f"the carrier could not provide the number(s) ({reasons}); "
            f"{result.refunded:.2f} {settings.currency} was refunded to the wallet",
            field=field_name,
        )


def order_outcome(db: Database, order_id: str, requested: Sequence[str]) -> PurchaseResult:
    """An order as it stands now, as :func:`purchase` answers it (the numbers in
    ``requested`` order): what a replayed purchase whose carrier outcome wasn't
    known answers once ``reconcile`` (or the carrier's webhook) settled it."""
    with db.read_session() as session:
        order = session.get_one(NumberOrder, order_id)
        rows = list(session.scalars(select(PhoneNumber).where(PhoneNumber.order_id == order_id)))
    place = {e164: i for i, e164 in enumerate(requested)}
    rows.sort(key=lambda n: place.get(n.e164, len(place)))
    failed = [n for n in rows if n.status == FAILED]
    return PurchaseResult(
        order_id,
        rows,
        charged=order.total,
        # settle_order refunds exactly a failed number's monthly and setup.
        refunded=sum((n.monthly_cost + n.upfront_cost for n in failed), Decimal("0.00")),
        outcome_known=order.status == "settled",
        errors={n.e164: n.failure_reason or "failed" for n in failed},
    )


def settle_order(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    order_id: str,
    results: Sequence[NumberOrderResult],
    authoritative: bool,
) -> PurchaseResult:
    """Apply the carrier's answer for an order. Only ``provisioning`` numbers
    change, so settling twice refunds nothing twice. With ``authoritative``,
    a number the answer doesn't mention failed (the carrier never took it)."""
    by_number = {r.phone_number: r for r in results}
    with db.session() as session:
        order = session.scalars(
            select(NumberOrder).where(NumberOrder.id == order_id).with_for_update()
        ).one()
        wallet = ledger.lock_wallet(session, order.account_id, order.currency)
        rows = list(
            session.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.order_id == order_id)
                .order_by(PhoneNumber.id)
                .with_for_update()
            )
        )
        now = clock.now()
        refund = Decimal("0.00")
        errors: dict[str, str] = {}
        orphans: list[str] = []
        to_list: list[str] = []
        for row in rows:
            result = by_number.get(row.e164)
            if row.status == FAILED and result is not None and result.status == "active":
                # Failed (and refunded) by a reconcile while the carrier was still
                # filling the order: the carrier now holds a number nobody pays for.
                orphans.append(row.e164)
            if row.status != PROVISIONING:
                continue
            if result is not None and result.status == "active":
                lifecycle.transition(session, row, ACTIVE, order.account_id, order_id=order_id)
                row.purchased_at = now
                row.renews_on = add_months(now.date(), 1)
                # A partner's (or tenant's) default caller name applies at once.
                if cnam.mark(session, row, order.account_id):
                    to_list.append(row.id)
            elif (result is not None and result.status == "failed") or (
                result is None and authoritative
            ):
                reason = (result.reason if result else None) or "the carrier has no record of it"
                lifecycle.transition(session, row, FAILED, order.account_id, reason=reason)
                row.failure_reason = reason
                errors[row.e164] = reason
                refund += row.monthly_cost + row.upfront_cost
        if refund:
            revenue = ledger.ensure_platform_book(session, ledger.REVENUE, order.currency)
            ledger.transfer(
                session,
                kind="refund",
                description=f"Refund for {len(errors)} number(s) the carrier could not provide",
                debit=revenue,
                credit=wallet.id,
                amount=refund,
                reference=order_id,
            )
        if all(row.status != PROVISIONING for row in rows):
            order.status = "settled"
            order.settled_at = now
        for row in rows:
            if row.status == FAILED and row.e164 not in errors:
                errors[row.e164] = row.failure_reason or "failed"
        settled = PurchaseResult(
            order_id, rows, charged=order.total, refunded=refund, outcome_known=True, errors=errors
        )
    for e164 in orphans:
        with contextlib.suppress(CarrierFailure, CarrierOutcomeUnknown):
            carrier.release(e164)
    cnam.push(db, carrier, to_list, settled.numbers[0].owner_id if settled.numbers else None)
    return settled


# ---------------------------------------------------------------- inventory


def _visible(scope: Scope) -> ColumnElement[bool]:
    return or_(scope.owns(PhoneNumber.owner_id), scope.owns(PhoneNumber.tenant_id))


def get_number(
    session: Session, scope: Scope, number_id: str, field: str = "number_id"
) -> PhoneNumber:
    number = session.scalars(
        select(PhoneNumber).where(PhoneNumber.id == number_id, _visible(scope))
    ).first()
    if number is None:
        raise NotFound(f"phone number {number_id} not found", field=field)
    return number


def lock_number(
    session: Session, scope: Scope, number_id: str, field: str = "number_id"
) -> PhoneNumber:
    """A number the scope sees, its row locked (``SELECT … FOR UPDATE``)."""
    number = get_number(session, scope, number_id, field)
    return session.scalars(
        select(PhoneNumber)
        .where(PhoneNumber.id == number.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


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


def list_numbers(
    session: Session,
    scope: Scope,
    filters: InventoryFilter,
    limit: int = 50,
    cursor: str | None = None,
) -> InventoryPage:
    query = select(PhoneNumber).where(_visible(scope))
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
            _visible(scope),
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


# ---------------------------------------------------------------- assignment


def _require_owner(session: Session, scope: Scope, number: PhoneNumber, action: str) -> None:
    """Only the buyer (the account that pays), or its partner, may reassign or
    release a number; a tenant sees and routes numbers its partner assigned to it."""
    if not scope.can_see(session, number.owner_id):
        raise Forbidden(f"only the account that bought {number.e164} can {action} it")


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


def _end_assignments(
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
    _require_owner(session, scope, number, "reassign")
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
    _end_assignments(session, number, scope.account_id, "tenant changed")
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


def assign_tenant(
    db: Database, settings: Settings, scope: Scope, number_id: str, tenant_id: str | None
) -> PhoneNumber:
    """:func:`set_tenant` in its own transaction, then resale: a partner's tenant
    pays its partner retail for the number it was just given."""
    with db.session() as session:
        number = set_tenant(session, scope, number_id, tenant_id)
    resale.bill_tenants(db, settings, number.owner_id)
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
        _require_owner(session, scope, number, "assign")
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


def assign_to_agent(
    db: Database,
    settings: Settings,
    scope: Scope,
    number_id: str,
    agent_id: str,
    assignment_type: str,
) -> NumberAssignment:
    """:func:`assign_agent` in its own transaction, then resale: assigning to an
    agent may have given the number to the agent's tenant."""
    with db.session() as session:
        assignment = assign_agent(session, scope, number_id, agent_id, assignment_type)
        owner_id = session.get_one(PhoneNumber, assignment.number_id).owner_id
    resale.bill_tenants(db, settings, owner_id)
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


# ---------------------------------------------------------------- release


def release(
    db: Database,
    carrier: Carrier,
    scope: Scope,
    number_id: str,
    settings: Settings,
) -> PhoneNumber:
    """Give a number back: billing stops (``released_at``), assignments end, its
    history stays, and with ``release_refund = prorated`` the unused days of the
    paid month go back to the wallet. The carrier is asked between two
    transactions; if it refuses, the number is back as it was; if we can't
    tell, it stays ``releasing`` and ``reconcile`` finishes the job."""
    with db.session() as session:
        number = lock_number(session, scope, number_id)
        _require_owner(session, scope, number, "release")
        _begin_release(session, number, scope.account_id, "released")
        number_pk = number.id
    return _finish_release(
        db, carrier, number_pk, scope.account_id, "released", settings.release_refund
    )


def release_for_nonpayment(db: Database, carrier: Carrier, number_id: str) -> PhoneNumber:
    """The billing rules' last step for a suspended number nobody paid for."""
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_id, with_for_update=True)
        _begin_release(session, number, None, "released for non-payment")
    return _finish_release(db, carrier, number_id, None, "released for non-payment")


def _begin_release(
    session: Session, number: PhoneNumber, account_id: str | None, reason: str
) -> None:
    if number.status not in (ACTIVE, lifecycle.SUSPENDED):
        raise Conflict(
            f"{number.e164} is {number.status}; only an active or suspended number can be released",
            field="number_id",
            code="number_not_active",
        )
    # Assignments end only once the carrier confirms: a refused release must
    # leave the number routing exactly as before.
    lifecycle.transition(session, number, lifecycle.RELEASING, account_id, reason=reason)


def _finish_release(
    db: Database,
    carrier: Carrier,
    number_pk: str,
    account_id: str | None,
    reason: str,
    refund_policy: str = "none",
) -> PhoneNumber:
    with db.session() as session:
        e164 = session.get_one(PhoneNumber, number_pk).e164
        managed = session.get_one(PhoneNumber, number_pk).is_managed
    try:
        if managed:
            carrier.release(e164)
    except CarrierFailure as exc:
        with db.session() as session:
            number = session.get_one(PhoneNumber, number_pk, with_for_update=True)
            before = lifecycle.status_before(session, number, lifecycle.RELEASING) or ACTIVE
            lifecycle.transition(session, number, before, account_id, reason=str(exc))
        raise CarrierError(
            f"the carrier refused to release {e164}: {exc}", field="number_id"
        ) from exc
    except CarrierOutcomeUnknown:
        with db.session() as session:
            return session.get_one(PhoneNumber, number_pk)
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_pk, with_for_update=True)
        if number.status == lifecycle.RELEASING:
            lifecycle.transition(session, number, RELEASED, account_id)
            _end_assignments(session, number, account_id, reason)
            number.released_at = clock.now()
            if refund_policy == "prorated":
                _refund_unused_days(session, number)
            number.renews_on = None
        return number


def _refund_unused_days(session: Session, number: PhoneNumber) -> None:
    """The prorated policy: the paid month's days after the release, at the
    month's daily rate, rounded down to the cent, back to the owner's wallet."""
    if not number.is_managed or number.renews_on is None or number.purchased_at is None:
        return
    today = clock.now().date()
    period_end = number.renews_on
    period_start = add_months(number.purchased_at.date(), number.billed_periods - 1)
    unused = (period_end - today).days
    if unused <= 0 or period_end <= period_start:
        return  # nothing paid ahead (an unpaid month is never refunded)
    days = (period_end - period_start).days
    amount = (number.monthly_cost * unused / days).quantize(ledger.CENTS, rounding=ROUND_DOWN)
    if amount <= 0:
        return
    ledger.transfer(
        session,
        kind="refund",
        description=f"Unused days of {number.e164}: {unused} of {days} (prorated release)",
        debit=ledger.ensure_platform_book(session, ledger.REVENUE, number.currency),
        credit=ledger.ensure_wallet(session, number.owner_id, number.currency),
        amount=amount,
        reference=f"release:{number.id}",
    )


# ---------------------------------------------------------------- reconcile


@dataclass
class ReconcileReport:
    orders_checked: int = 0
    activated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refunded: Decimal = Decimal("0.00")
    still_pending: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    holds_expired: int = 0
    # Inventory against the carrier's own list (None: the carrier couldn't list).
    missing_at_carrier: list[str] | None = None  # ours, the carrier no longer has
    found_again: list[str] = field(default_factory=list)  # listed again: billed again
    not_ours: list[str] | None = None  # the carrier bills us, we don't sell them


def reconcile(
    db: Database, carrier: Carrier, settings: Settings, min_age: timedelta = timedelta(seconds=60)
) -> ReconcileReport:
    """Settle what a carrier call left open: orders whose outcome we don't know
    (asked by our order id) and releases the carrier didn't confirm. Orders
    younger than ``min_age`` are left alone: their purchase may still be talking
    to the carrier."""
    report = ReconcileReport()
    cutoff = clock.now() - min_age
    with db.session() as session:
        report.holds_expired = expire_holds(session)
        order_ids = list(
            session.scalars(
                select(NumberOrder.id)
                .where(
                    NumberOrder.status == "pending",
                    NumberOrder.carrier == carrier.name,
                    NumberOrder.created_at <= cutoff,
                )
                .order_by(NumberOrder.id)
            )
        )
        releasing = list(
            session.scalars(
                select(PhoneNumber.id).where(
                    PhoneNumber.status == lifecycle.RELEASING, PhoneNumber.carrier == carrier.name
                )
            )
        )
    for order_id in order_ids:
        report.orders_checked += 1
        try:
            results = carrier.order_status(order_id)
        except (CarrierFailure, CarrierOutcomeUnknown):
            report.still_pending.append(order_id)
            continue
        settled = settle_order(db, carrier, settings, order_id, results, authoritative=True)
        report.refunded += settled.refunded
        for row in settled.numbers:
            if row.status == ACTIVE and any(r.phone_number == row.e164 for r in results):
                report.activated.append(row.e164)
            elif row.status == FAILED and row.e164 in settled.errors:
                report.failed.append(row.e164)
    for number_pk in releasing:
        try:
            number = _finish_release(
                db, carrier, number_pk, None, "released", settings.release_refund
            )
        except CarrierError:
            continue
        if number.status == RELEASED:
            report.released.append(number.e164)
    compare_inventory(db, carrier, report)
    return report


def compare_inventory(db: Database, carrier: Carrier, report: ReconcileReport) -> None:
    """What the carrier says we hold against our live managed numbers. A number
    it no longer lists is flagged (``carrier_missing_since``, an event for its
    owner) and renewals skip it; one it lists again is cleared and billed again.
    Numbers it lists that we don't sell are reported for an operator."""
    try:
        theirs = set(carrier.owned_numbers())
    except (CarrierFailure, CarrierOutcomeUnknown):
        return  # can't tell: flag nothing
    now = clock.now()
    report.missing_at_carrier, report.not_ours = [], []
    with db.session() as session:
        ours = list(
            session.scalars(
                select(PhoneNumber)
                .where(
                    PhoneNumber.carrier == carrier.name,
                    PhoneNumber.is_managed.is_(True),
                    PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
                )
                .order_by(PhoneNumber.e164)
                .with_for_update()
            )
        )
        for number in ours:
            listed = number.e164 in theirs
            if number.status == lifecycle.PROVISIONING:
                continue  # an order still settling
            if not listed and number.carrier_missing_since is None:
                number.carrier_missing_since = now
                lifecycle.record(session, number, "carrier.missing")
                billing_wallet.event(
                    session,
                    number.owner_id,
                    "number.carrier_missing",
                    f"{number.e164} is no longer held at the carrier; it is not billed "
                    "until this is resolved",
                    phone_number=number.e164,
                )
            elif listed and number.carrier_missing_since is not None:
                number.carrier_missing_since = None
                lifecycle.record(session, number, "carrier.found")
                report.found_again.append(number.e164)
            if number.carrier_missing_since is not None:
                report.missing_at_carrier.append(number.e164)
        sold = {n.e164 for n in ours}
        report.not_ours = sorted(theirs - sold)
