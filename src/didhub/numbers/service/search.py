"""Search, quote and holds: what is offered, at what price, held for whom."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.carriers.base import (
    AvailableNumber,
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    SearchQuery,
    searches_by_postal_code,
)
from didhub.carriers.multi import SearchResults
from didhub.config import Settings
from didhub.db import Database, new_id, table_of
from didhub.errors import (
    CarrierError,
    NumberUnavailable,
    ValidationFailed,
)
from didhub.numbers.lifecycle import LIVE_STATUSES
from didhub.numbers.models import (
    NumberHold,
    PhoneNumber,
)
from didhub.numbers.service.pricing import price_for
from didhub.outputs import money_text
from didhub.tenancy import Scope
from didhub.wallet import ledger
from didhub.wallet import service as billing_wallet
from didhub.wallet.models import BillingProfile

MAX_NUMBERS_PER_ORDER = 100


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
        results = carrier.search(replace(query, wanted=start + page_size + 1), exclude)
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


def describe_numbers(carrier: Carrier, numbers: Sequence[str], field: str) -> list[AvailableNumber]:
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


def quote_line(settings: Settings, info: AvailableNumber) -> QuoteLine:
    price = price_for(settings, info.phone_number_type)
    return QuoteLine(info, price.monthly, price.setup)


def check_not_taken(
    session: Session, scope: Scope, numbers: Sequence[str], now: datetime, field: str
) -> bool:
    """409 for a number someone owns or holds; locks existing holds (PostgreSQL)
    and returns whether there were any (the buyer's own, or expired ones).
    Columns on the tables (no ORM objects): a purchase asks this every time."""
    wanted = {"e164s": list(numbers)}
    holds = session.execute(_LOCK_HOLDS, wanted).all()
    for e164, holder_id, expires_at in holds:
        if holder_id != scope.account_id and expires_at > now:
            raise NumberUnavailable(f"{e164} is held for another buyer's purchase", field=field)
    owned = session.execute(_OWNED, wanted).scalar()
    if owned is not None:
        raise NumberUnavailable(f"{owned} is not available", field=field)
    return bool(holds)


_HOLDS = table_of(NumberHold)
_NUMBERS = table_of(PhoneNumber)
# Built once (docs/performance.md, "Built once").
_LOCK_HOLDS = (
    select(_HOLDS.c.e164, _HOLDS.c.holder_id, _HOLDS.c.expires_at)
    .where(_HOLDS.c.e164.in_(bindparam("e164s", expanding=True)))
    .with_for_update()
)
_OWNED = select(_NUMBERS.c.e164).where(
    _NUMBERS.c.e164.in_(bindparam("e164s", expanding=True)),
    _NUMBERS.c.status.in_(LIVE_STATUSES),
)


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
            "held numbers may be worth at most what the account can pay "
            f"({money_text(allowance, settings.currency)}); these would make "
            f"{money_text(value, settings.currency)}: top up, or buy without a hold"
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
    lines = [quote_line(settings, info) for info in describe_numbers(carrier, numbers, field_name)]
    quote_id = new_id("quo")
    now = clock.now()
    longest = timedelta(minutes=settings.hold_max_total_minutes)
    try:
        with db.session() as session:
            check_not_taken(session, scope, numbers, now, field_name)
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
