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
from collections.abc import Callable, Sequence
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
from didhub.billing.models import BillingProfile
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
from didhub.carriers.registry import carrier_for, served_carrier_names
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
from didhub.numbers.models import (
    NumberAssignment,
    NumberEvent,
    NumberHold,
    NumberOrder,
    PhoneNumber,
)
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
    expires_at: datetime | None  # None: not held
    wallet_balance: Decimal
    hold_refused: str | None = None  # why the numbers aren't held

    @property
    def held(self) -> bool:
        return self.expires_at is not None

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


def _hold_allowance(session: Session, settings: Settings, account_id: str) -> Decimal:
    """What an account's live holds may be worth at most: what it can pay now,
    its wallet balance, plus ``hold_card_allowance`` when auto-recharge would
    charge its card for a purchase."""
    balance = ledger.wallet_balance(session, account_id, settings.currency)
    billing = session.get(BillingProfile, account_id)
    recharges = (
        billing is not None
        and billing.auto_recharge_enabled
        and billing_wallet.card_on_file(session, account_id) is not None
    )
    return max(balance, Decimal("0")) + (settings.hold_card_allowance if recharges else 0)


def _hold_refusal(
    session: Session,
    settings: Settings,
    scope: Scope,
    lines: Sequence[QuoteLine],
    now: datetime,
    first_held: dict[str, datetime],
) -> str | None:
    """Why this quote's numbers can't be held for the buyer, or None: holds
    keep numbers from everyone else, so an account holds only what it could
    pay for, only so many, and each number only so long (docs/architecture.md,
    "Quote and hold")."""
    numbers = [line.number.phone_number for line in lines]
    others = session.execute(
        select(func.count(), func.sum(NumberHold.amount)).where(
            NumberHold.holder_id == scope.account_id,
            NumberHold.expires_at > now,
            NumberHold.e164.not_in(numbers),
        )
    ).one()
    count = int(others[0]) + len(numbers)
    if count > settings.hold_max_numbers:
        return (
            f"an account holds at most {settings.hold_max_numbers} numbers at a time "
            f"({int(others[0])} are held already); buy or let some go first"
        )
    value = (others[1] or Decimal("0")) + sum((line.total for line in lines), Decimal("0.00"))
    allowance = _hold_allowance(session, settings, scope.account_id)
    if value > allowance:
        return (
            f"held numbers may be worth at most what the account can pay ({allowance:.2f} "
            f"{settings.currency}); these would make {value:.2f}: top up, or buy without a hold"
        )
    longest = timedelta(minutes=settings.hold_max_total_minutes)
    for e164, since in first_held.items():
        if now >= since + longest:
            return (
                f"{e164} has been held for you for the longest time allowed "
                f"({settings.hold_max_total_minutes} minutes); buy it now or let others"
            )
    return None


def quote(
    db: Database, carrier: Carrier, settings: Settings, scope: Scope, phone_numbers: Sequence[str]
) -> Quote:
    """Price numbers (first month + one-time setup) and hold them for the buyer
    for ``hold_minutes``, so the confirmation dialog's numbers can't be taken.
    A quote the account's hold allowance doesn't cover is answered unheld
    (``Quote.hold_refused`` says why): the prices stand, the numbers stay open
    to every buyer."""
    field_name = "phone_numbers"
    numbers = validate_numbers(phone_numbers, field_name)
    lines = [_line(settings, info) for info in _describe(carrier, numbers, field_name)]
    quote_id = new_id("quo")
    now = clock.now()
    longest = timedelta(minutes=settings.hold_max_total_minutes)
    try:
        with db.session() as session:
            _check_not_taken(session, scope, numbers, now, field_name)
            # A number the buyer holds (or held until lately) keeps the time its
            # holding began: re-quoting can't hold it for ever.
            first_held = {
                hold.e164: hold.first_held_at
                for hold in session.scalars(
                    select(NumberHold).where(
                        NumberHold.e164.in_(numbers),
                        NumberHold.holder_id == scope.account_id,
                        NumberHold.first_held_at > now - 2 * longest,
                    )
                )
            }
            refused = _hold_refusal(session, settings, scope, lines, now, first_held)
            expires_at: datetime | None = None
            if refused is None:
                expires_at = min(
                    [now + timedelta(minutes=settings.hold_minutes)]
                    + [since + longest for since in first_held.values()]
                )
                session.execute(delete(NumberHold).where(NumberHold.e164.in_(numbers)))
                session.add_all(
                    NumberHold(
                        e164=line.number.phone_number,
                        holder_id=scope.account_id,
                        quote_id=quote_id,
                        amount=line.total,
                        first_held_at=first_held.get(line.number.phone_number, now),
                        expires_at=expires_at,
                    )
                    for line in sorted(lines, key=lambda item: item.number.phone_number)
                )
                session.flush()
            balance = ledger.wallet_balance(session, scope.account_id, settings.currency)
    except IntegrityError:
        raise NumberUnavailable(
            "a number was just held by another buyer", field=field_name
        ) from None
    if expires_at is not None:
        carrier.reserve(numbers, quote_id, settings.hold_minutes)
    return Quote(quote_id, lines, settings.currency, expires_at, balance, refused)


def expire_holds(session: Session, settings: Settings) -> int:
    """Set-based sweep of lapsed holds (they're already ignored once expired).
    A lapsed hold is kept until its holding could have begun again, so the
    maximum hold time can't be reset by letting a hold lapse and quoting again."""
    now = clock.now()
    cool_off = 2 * timedelta(minutes=settings.hold_max_total_minutes)
    result = session.execute(
        delete(NumberHold).where(
            NumberHold.expires_at <= now, NumberHold.first_held_at <= now - cool_off
        )
    )
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
    debit, insert the numbers as ``provisioning`` under a new order id, each
    with the carrier that offered it (under ``multi``, one of its carriers);
    3. order each carrier's numbers from it with that id; 4. settle what each
    carrier answered: ``active``, or ``failed`` with an exact refund; numbers
    whose carrier's outcome is unknown stay ``provisioning`` for ``reconcile``
    (or the carrier's webhook).
    """
    numbers = validate_numbers(phone_numbers, field_name)
    lines = [_line(settings, info) for info in _describe(carrier, numbers, field_name)]
    # Who holds each number is decided once, here, and recorded: every later
    # call about it goes to that carrier (registry.carrier_for).
    routes = {line.number.phone_number: line.number.carrier or carrier.name for line in lines}
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
                    carrier=routes[line.number.phone_number],
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

    results: list[NumberOrderResult] = []
    answered: set[str] = set()
    for name in dict.fromkeys(routes[n] for n in numbers):
        group = [n for n in numbers if routes[n] == name]
        try:
            results.extend(carrier_for(carrier, name).order(order_id, group))
        except CarrierFailure as exc:
            reason = str(exc) or "carrier refused the order"
            results.extend(NumberOrderResult(n, "failed", reason) for n in group)
        except CarrierOutcomeUnknown:
            continue  # this carrier's numbers stay provisioning
        answered.add(name)
    settled = settle_order(
        db,
        carrier,
        settings,
        order_id,
        results,
        authoritative=True,
        answered_by=frozenset(answered),
    )
    settled.numbers.sort(key=lambda n: numbers.index(n.e164))  # the order asked for
    if len(answered) < len(set(routes.values())):
        settled.outcome_known = False
        return settled
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
    answered_by: frozenset[str] | None = None,
) -> PurchaseResult:
    """Apply carriers' answers for an order. Only ``provisioning`` numbers
    change, so settling twice refunds nothing twice. With ``authoritative``,
    a number the answer doesn't mention failed (the carrier never took it).

    ``answered_by`` names the carriers whose answer ``results`` is: only the
    numbers recorded as theirs (``phone_numbers.carrier``) change, so one
    carrier's answer about an order split across carriers (a Telnyx webhook,
    say) never fails the numbers another carrier filled. ``None``: every
    number of the order (the order went to one carrier)."""
    by_number = {r.phone_number: r for r in results}
    with db.session() as session:
        account_id, currency = session.execute(
            select(NumberOrder.account_id, NumberOrder.currency).where(NumberOrder.id == order_id)
        ).one()
        # The documented lock order: the wallet, then the order, then its numbers by id.
        wallet = ledger.lock_wallet(session, account_id, currency)
        order = session.scalars(
            select(NumberOrder)
            .where(NumberOrder.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
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
        orphans: list[tuple[str, str]] = []
        to_list: list[str] = []
        for row in rows:
            if answered_by is not None and row.carrier not in answered_by:
                continue  # another carrier's number: its own answer settles it
            result = by_number.get(row.e164)
            if row.status == FAILED and result is not None and result.status == "active":
                # Failed (and refunded) by a reconcile while the carrier was still
                # filling the order: the carrier now holds a number nobody pays for.
                orphans.append((row.e164, result.carrier or row.carrier))
            if row.status != PROVISIONING:
                continue
            if result is not None and result.status == "active":
                if result.carrier is not None:
                    row.carrier = result.carrier  # a number recorded as "multi"
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
    for e164, holder in orphans:
        with contextlib.suppress(CarrierFailure, CarrierOutcomeUnknown):
            carrier_for(carrier, holder).release(e164)
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


NONPAYMENT_RELEASE = "released for non-payment"


def release_for_nonpayment(
    db: Database,
    carrier: Carrier,
    number_ids: Sequence[str],
    may_release: Callable[[Session], bool],
) -> list[PhoneNumber]:
    """The billing rules' last step: release one account's suspended numbers
    nobody paid for. ``may_release`` runs first in the transaction that begins
    the releases: it takes the account's billing locks (its wallet, then its
    billing profile: before any number, in the lock order) and says whether
    the account is still suspended, long enough, and unpaid. Only then are the
    numbers locked (ascending id), and only those still ``suspended`` begin
    their release. Returns those the carrier released (or may have: unknown
    outcomes are ``releasing`` for reconcile); one it refuses stays suspended
    for the next run."""
    reason = NONPAYMENT_RELEASE
    with db.session() as session:
        if not may_release(session):
            return []
        begun = []
        for number in session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.id.in_(number_ids), PhoneNumber.status == lifecycle.SUSPENDED)
            .order_by(PhoneNumber.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            _begin_release(session, number, None, reason)
            begun.append(number.id)
    released = []
    for number_pk in begun:
        try:
            released.append(_finish_release(db, carrier, number_pk, None, reason))
        except CarrierError:
            continue  # back to suspended: the next run tries again
    return released


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


def release_refund_policy(configured: str, reason: str) -> str:
    """What a release gives back, decided here only (docs/billing.md): a release
    for non-payment never refunds; any other follows ``release_refund``
    (``configured``). Every path that finishes a release asks this: the
    owner's release, the billing run's, and reconcile finishing either one
    after the carrier's answer was lost."""
    return "none" if reason == NONPAYMENT_RELEASE else configured


def _release_reason(session: Session, number: PhoneNumber) -> str:
    """Why the number's current release began (its last ``status.releasing``)."""
    begun = session.scalars(
        select(NumberEvent)
        .where(NumberEvent.number_id == number.id, NumberEvent.kind == "status.releasing")
        .order_by(NumberEvent.id.desc())
    ).first()
    reason = begun.data.get("reason") if begun is not None else None
    return reason if isinstance(reason, str) else "released"


def _finish_release(
    db: Database,
    carrier: Carrier,
    number_pk: str,
    account_id: str | None,
    reason: str,
    refund_policy: str = "none",
) -> PhoneNumber:
    """Ask the number's own carrier to release it, then settle: ``released``
    (with :func:`release_refund_policy`'s refund for ``reason``), back as it
    was on a refusal, still ``releasing`` when the answer is lost."""
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_pk)
        e164, managed, holder = number.e164, number.is_managed, number.carrier
        owner_id, currency = number.owner_id, number.currency
    refunds = managed and release_refund_policy(refund_policy, reason) == "prorated"
    try:
        if managed:
            carrier_for(carrier, holder).release(e164)
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
        if refunds:  # the documented lock order: the wallet before the number
            ledger.lock_wallet(session, owner_id, currency)
        number = session.get_one(PhoneNumber, number_pk, with_for_update=True)
        if number.status == lifecycle.RELEASING:
            lifecycle.transition(session, number, RELEASED, account_id)
            _end_assignments(session, number, account_id, reason)
            number.released_at = clock.now()
            if refunds:
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
    (each carrier asked by our order id about the numbers ordered from it) and
    releases the carrier didn't confirm. Orders younger than ``min_age`` are
    left alone: their purchase may still be talking to the carrier."""
    report = ReconcileReport()
    cutoff = clock.now() - min_age
    served = served_carrier_names(carrier)
    with db.session() as session:
        report.holds_expired = expire_holds(session, settings)
        order_ids = list(
            session.scalars(
                select(NumberOrder.id)
                .where(
                    NumberOrder.status == "pending",
                    NumberOrder.carrier.in_(served),
                    NumberOrder.created_at <= cutoff,
                )
                .order_by(NumberOrder.id)
            )
        )
        releasing = [
            (number.id, _release_reason(session, number))
            for number in session.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.status == lifecycle.RELEASING, PhoneNumber.carrier.in_(served))
                .order_by(PhoneNumber.id)
            )
        ]
    for order_id in order_ids:
        report.orders_checked += 1
        _reconcile_order(db, carrier, settings, order_id, report)
    for number_pk, reason in releasing:
        try:
            # The reason the release began with decides its refund, as it
            # would have had the carrier answered at once.
            number = _finish_release(db, carrier, number_pk, None, reason, settings.release_refund)
        except CarrierError:
            continue
        if number.status == RELEASED:
            report.released.append(number.e164)
    compare_inventory(db, carrier, report)
    return report


def _reconcile_order(
    db: Database, carrier: Carrier, settings: Settings, order_id: str, report: ReconcileReport
) -> None:
    """Ask each carrier the order's open numbers were ordered from; settle what
    those that answered say. A carrier that can't be asked leaves its numbers
    ``provisioning`` (a partial answer must not fail what it may have filled)."""
    with db.session() as session:
        open_numbers = {
            e164: holder
            for e164, holder in session.execute(
                select(PhoneNumber.e164, PhoneNumber.carrier).where(
                    PhoneNumber.order_id == order_id, PhoneNumber.status == PROVISIONING
                )
            )
        }
    asked = sorted(set(open_numbers.values()))
    results: list[NumberOrderResult] = []
    answered: set[str] = set()
    for name in asked:
        try:
            results.extend(carrier_for(carrier, name).order_status(order_id))
        except (CarrierFailure, CarrierOutcomeUnknown):
            continue
        answered.add(name)
    if len(answered) < len(asked):
        report.still_pending.append(order_id)
    if asked and not answered:
        return
    settled = settle_order(
        db,
        carrier,
        settings,
        order_id,
        results,
        authoritative=True,
        answered_by=frozenset(answered),
    )
    report.refunded += settled.refunded
    for row in settled.numbers:
        if row.e164 not in open_numbers:
            continue
        if row.status == ACTIVE:
            report.activated.append(row.e164)
        elif row.status == FAILED:
            report.failed.append(row.e164)


def _inventories(carrier: Carrier) -> dict[str, set[str] | None]:
    """Each carrier's list of the numbers it says we hold, by the name numbers
    record (None: it couldn't list them). Numbers recorded as ``multi`` are
    compared with every carrier's list together, when every carrier listed."""
    names = served_carrier_names(carrier)
    lists: dict[str, set[str] | None] = {}
    for name in names:
        if name == carrier.name and len(names) > 1:
            continue  # multi itself: the union below
        try:
            lists[name] = set(carrier_for(carrier, name).owned_numbers())
        except (CarrierFailure, CarrierOutcomeUnknown):
            lists[name] = None
    if len(names) > 1:
        parts = list(lists.values())
        lists[carrier.name] = (
            set().union(*(p for p in parts if p is not None)) if None not in parts else None
        )
    return lists


def compare_inventory(db: Database, carrier: Carrier, report: ReconcileReport) -> None:
    """What each carrier says we hold against our live managed numbers recorded
    as its. A number it no longer lists is flagged (``carrier_missing_since``,
    an event for its owner) and renewals skip it; one it lists again is
    cleared and billed again. Numbers a carrier lists that we don't sell are
    reported for an operator.

    Our own snapshot is read before any carrier is asked: a number that settles
    while a carrier's list is read was still ``provisioning`` in the snapshot,
    so a list read before the carrier filled it can't flag it. Only the
    numbers that change are locked, one per transaction, in id order, and
    re-checked under the lock; a billing run locking the same numbers (wallets,
    then numbers by id) therefore never deadlocks with this."""
    served = served_carrier_names(carrier)
    with db.read_session() as session:
        snapshot = session.execute(
            select(
                PhoneNumber.id,
                PhoneNumber.e164,
                PhoneNumber.carrier,
                PhoneNumber.status,
                PhoneNumber.carrier_missing_since,
            )
            .where(
                PhoneNumber.carrier.in_(served),
                PhoneNumber.is_managed.is_(True),
                PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
            )
            .order_by(PhoneNumber.id)
        ).all()
    lists = _inventories(carrier)
    if all(theirs is None for theirs in lists.values()):
        return  # can't tell: flag nothing
    missing: list[str] = []
    changes: list[tuple[str, str, bool]] = []  # number id, its carrier, listed
    for number_id, e164, holder, status, missing_since in snapshot:
        theirs = lists.get(holder)
        if theirs is None or status == PROVISIONING:
            continue  # that carrier couldn't list, or an order still settling
        listed = e164 in theirs
        if listed == (missing_since is not None):
            changes.append((number_id, holder, listed))
        elif missing_since is not None:
            missing.append(e164)  # flagged before, still not listed
    now = clock.now()
    for number_id, holder, listed in changes:
        with db.session() as session:
            number = session.get_one(PhoneNumber, number_id, with_for_update=True)
            if number.status not in lifecycle.LIVE_STATUSES or number.status == PROVISIONING:
                continue
            if number.carrier != holder:
                continue  # re-recorded meanwhile (a "multi" row settled): next time
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
                missing.append(number.e164)
    report.missing_at_carrier = sorted(missing)
    listed_anywhere = set().union(*(t for t in lists.values() if t is not None))
    unknown = listed_anywhere - {e164 for _, e164, *_ in snapshot}
    if unknown:
        # Bought while the carriers were listing: ours, not a discrepancy.
        with db.read_session() as session:
            unknown -= set(
                session.scalars(
                    select(PhoneNumber.e164).where(
                        PhoneNumber.e164.in_(sorted(unknown)),
                        PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
                    )
                )
            )
    report.not_ours = sorted(unknown)
