"""The purchase saga and its settlement (docs/architecture.md, "The purchase saga")."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from didhub import clock, metrics
from didhub.accounts import service as accounts
from didhub.carriers.base import (
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    NumberOrderResult,
)
from didhub.carriers.registry import carrier_for
from didhub.config import Settings
from didhub.db import Database, new_id, routes_unchanged, table_of
from didhub.errors import (
    CarrierError,
    DidhubError,
    InsufficientFunds,
    NumberUnavailable,
)
from didhub.numbers import cnam, lifecycle
from didhub.numbers.lifecycle import ACTIVE, FAILED, PROVISIONING
from didhub.numbers.models import (
    LIVE_NUMBER_INDEX,
    NumberHold,
    NumberOrder,
    PhoneNumber,
)
from didhub.numbers.service.pricing import add_months
from didhub.numbers.service.search import (
    QuoteLine,
    check_not_taken,
    describe_numbers,
    quote_line,
    validate_numbers,
)
from didhub.outputs import money_text
from didhub.payments.base import PaymentGateway
from didhub.tenancy import Scope
from didhub.wallet import ledger
from didhub.wallet import service as billing_wallet


@dataclass
class PurchaseResult:
    order_id: str
    numbers: list[PhoneNumber]
    charged: Decimal
    refunded: Decimal = Decimal("0.00")
    outcome_known: bool = True
    errors: dict[str, str] = field(default_factory=dict)
    # Every number was bought by this order and settled just now, and none was
    # listed with a caller name: none has an agent, a listing or an E911
    # address, so the purchase's answer reads none (schemas.phone_numbers).
    fresh: bool = False


def purchase(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    phone_numbers: Sequence[str],
    field_name: str = "phone_numbers",
    gateway: PaymentGateway | None = None,
) -> PurchaseResult:
    """:func:`_purchase`, counted by outcome (``didhub_purchases_total``):
    completed, partial, pending (the carrier's answer unknown), or the error's
    code (insufficient_funds, number_unavailable, carrier_error, …)."""
    try:
        result = _purchase(db, carrier, settings, scope, phone_numbers, field_name, gateway)
    except DidhubError as exc:
        metrics.PURCHASES.labels(exc.code).inc()
        raise
    except Exception:
        metrics.PURCHASES.labels("internal_error").inc()
        raise
    if not result.outcome_known:
        outcome = "pending"
    elif any(n.status == FAILED for n in result.numbers):
        outcome = "partial"
    else:
        outcome = "completed"
    metrics.PURCHASES.labels(outcome).inc()
    return result


def _purchase(
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
    lines = [quote_line(settings, info) for info in describe_numbers(carrier, numbers, field_name)]
    # Who holds each number is decided once, here, and recorded: every later
    # call about it goes to that carrier (registry.carrier_for).
    routes = {line.number.phone_number: line.number.carrier or carrier.name for line in lines}
    total = sum((line.total for line in lines), Decimal("0.00"))
    order_id = new_id("ord")
    covered = False
    while True:
        try:
            placed = _place_order(
                db,
                carrier,
                settings,
                scope,
                numbers,
                lines,
                routes,
                order_id,
                field_name,
                gateway,
                may_cover=not covered,
            )
        except _NeedsCover:
            # The partner guide: an empty wallet is charged to the card when
            # auto-recharge is on. That top-up stays in the wallet whatever
            # follows. Charged outside any transaction, then placed again.
            billing_wallet.cover(db, gateway, settings, scope.account_id, total, order_id)
            covered = True
            continue
        except IntegrityError as exc:
            if not live_number_taken(exc):
                raise  # a bug, not a sale: never answered as a sold number
            # The live-number unique index: someone else's purchase won the race.
            raise NumberUnavailable(
                "a number was just bought by someone else", field=field_name
            ) from None
        break

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
    provided = {r.phone_number for r in results if r.status == "active"}
    settled = settle_order(
        db,
        carrier,
        settings,
        order_id,
        results,
        authoritative=True,
        answered_by=frozenset(answered),
        account=(scope.account_id, settings.currency),
        # Only a number its carrier answered for and didn't provide is refunded.
        may_refund=any(routes[n] in answered and n not in provided for n in numbers),
    )
    settled.numbers.sort(key=lambda n: numbers.index(n.e164))  # the order asked for
    if len(answered) < len(set(routes.values())):
        settled.outcome_known = False
        return settled
    if placed:
        billing_wallet.recharge_below_threshold(db, gateway, settings, scope.account_id, order_id)
    refuse_if_none_provided(settled, settings, field_name)
    return settled


def live_number_taken(exc: IntegrityError) -> bool:
    """Whether the database refused a write by the live-number unique index
    (``uq_phone_numbers_live_e164``): another buyer's number went live first."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint is not None:  # PostgreSQL names it
        return bool(constraint == LIVE_NUMBER_INDEX)
    return "phone_numbers.e164" in str(exc.orig)  # SQLite: "UNIQUE constraint failed: …"


class _NeedsCover(Exception):
    """The wallet can't pay but auto-recharge would charge the card: leave the
    transaction, charge, and place the order again."""


def _place_order(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    numbers: Sequence[str],
    lines: Sequence[QuoteLine],
    routes: dict[str, str],
    order_id: str,
    field_name: str,
    gateway: PaymentGateway | None,
    *,
    may_cover: bool,
) -> bool:
    """Step 2 of the saga, one transaction: lock the wallet, refuse an account
    not in good standing, numbers held by others or owned, and a purchase the
    wallet can't pay (``_NeedsCover`` first when the card would pay it, once);
    debit, insert the order and its numbers as ``provisioning``. Returns
    whether a card could top the wallet up after (auto-recharge is on)."""
    total = sum((line.total for line in lines), Decimal("0.00"))
    now = clock.now()
    with db.session() as session:
        # Provisioning numbers route nowhere: this commit needn't tell route caches.
        routes_unchanged(session)
        payer = billing_wallet.lock_payer(
            session, scope.account_id, settings.currency, platform_books=(ledger.REVENUE,)
        )
        held = check_not_taken(session, scope, numbers, now, field_name)
        recharges = gateway is not None and payer.auto_recharge
        if payer.balance < total:
            if recharges and may_cover:
                raise _NeedsCover
            raise InsufficientFunds(
                f"this purchase costs {money_text(total, settings.currency)} but the "
                f"wallet holds {money_text(payer.balance, settings.currency)}; "
                "top up and try again",
                field="wallet",
            )
        revenue = ledger.platform_book_id(ledger.REVENUE, settings.currency)
        description = f"Purchase of {_named(numbers)}: first month and setup"
        if total > 0:
            # The wallet is locked above: one set-based posting, no ORM objects
            # (the revenue book is opened by the first purchase ever).
            (txn_id,) = ledger.transfer_many(
                session,
                kind="purchase",
                transfers=[ledger.Transfer(payer.wallet_id, revenue, total, description)],
                reference=order_id,
                currency=settings.currency,
                platform_books=(ledger.REVENUE,),
                known=payer.books,  # read by lock_payer: no second read
            )
        else:
            ledger.ensure_platform_book(session, ledger.REVENUE, settings.currency)
            txn_id = ledger.transfer(
                session,
                kind="purchase",
                description=description,
                debit=payer.wallet_id,
                credit=revenue,
                amount=total,
                reference=order_id,
            ).id
        session.execute(
            _INSERT_ORDER,
            {
                "id": order_id,
                "account_id": scope.account_id,
                "carrier": carrier.name,
                "status": "pending",
                "total": total,
                "currency": settings.currency,
                "ledger_transaction_id": txn_id,
                "created_at": now,
            },
        )
        # A tenant buying for itself owns and serves the number (the
        # AI-agent seed); a partner's number starts Unassigned.
        tenant_id = scope.account_id if scope.kind == accounts.TENANT else None
        values = [
            dict(
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
        # Written as rows, not through the session's unit of work: the objects
        # only carry what the history and the events say of each number.
        session.execute(_INSERT_NUMBERS, values)
        rows = [PhoneNumber(**row) for row in values]
        for row in rows:
            lifecycle.record(
                session, row, "status.provisioning", scope.account_id, order_id=order_id
            )
        if held:  # the buyer's own holds (a quote), or expired ones: locked above
            session.execute(_DELETE_HOLDS, {"e164s": list(numbers)})
    return recharges


_ORDERS = table_of(NumberOrder)
_HOLDS = table_of(NumberHold)
_NUMBERS = table_of(PhoneNumber)
# Built once (docs/performance.md, "Built once").
_INSERT_ORDER = insert(_ORDERS)
_INSERT_NUMBERS = insert(_NUMBERS)
_DELETE_HOLDS = delete(_HOLDS).where(_HOLDS.c.e164.in_(bindparam("e164s", expanding=True)))
_LOCK_ORDER = (
    select(_ORDERS.c.account_id, _ORDERS.c.total, _ORDERS.c.currency)
    .where(_ORDERS.c.id == bindparam("order_id"))
    .with_for_update()
)
_LOCK_NUMBERS = (
    select(PhoneNumber)
    .where(PhoneNumber.order_id == bindparam("order_id"))
    .order_by(PhoneNumber.id)
    .with_for_update()
)
_ORDER_SETTLED = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"))
    .values(status="settled", settled_at=bindparam("at"))
)


_SETTLE_NUMBERS = (
    update(_NUMBERS)
    .where(_NUMBERS.c.id == bindparam("number_id"), _NUMBERS.c.status == PROVISIONING)
    .values(
        status=bindparam("to"),
        carrier=bindparam("new_carrier"),
        purchased_at=bindparam("new_purchased_at"),
        renews_on=bindparam("new_renews_on"),
        failure_reason=bindparam("new_reason"),
    )
)


def _settled(number: PhoneNumber, **values: object) -> None:
    """Set a settling number's columns as if loaded: the settlement writes
    them itself (``_SETTLE_NUMBERS``), not the session's unit of work."""
    for key, value in values.items():
        set_committed_value(number, key, value)


def refuse_if_none_provided(result: PurchaseResult, settings: Settings, field_name: str) -> None:
    """A settled order the carrier provided none of is a 502 naming the refund."""
    if result.outcome_known and all(n.status == FAILED for n in result.numbers):
        reasons = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        raise CarrierError(
            f"the carrier could not provide the number(s) ({reasons}); "
            f"{money_text(result.refunded, settings.currency)} was refunded to the wallet",
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
    account: tuple[str, str] | None = None,
    may_refund: bool = True,
) -> PurchaseResult:
    """Apply carriers' answers for an order. Only ``provisioning`` numbers
    change, so settling twice refunds nothing twice. With ``authoritative``,
    a number the answer doesn't mention failed (the carrier never took it).

    ``answered_by`` names the carriers whose answer ``results`` is: only the
    numbers recorded as theirs (``phone_numbers.carrier``) change, so one
    carrier's answer about an order split across carriers (a Telnyx webhook,
    say) never fails the numbers another carrier filled. ``None``: every
    number of the order (the order went to one carrier).

    ``account``: the order's (account id, currency), when the caller knows
    them (the purchase that placed it). ``may_refund=False``: the caller knows
    no number of the order can fail here (every number the answer is about was
    provided), so the wallet needn't be locked."""
    by_number = {r.phone_number: r for r in results}
    with db.session() as session:
        if account is None:
            account_id, currency = session.execute(
                select(NumberOrder.account_id, NumberOrder.currency).where(
                    NumberOrder.id == order_id
                )
            ).one()
        else:
            account_id, currency = account
        # The documented lock order: the wallet, then the order, then its numbers by id.
        wallet = ledger.lock_wallet(session, account_id, currency) if may_refund else None
        # Columns, not an ORM object: the order's row changes by one UPDATE below.
        order_account, order_total, order_currency = session.execute(
            _LOCK_ORDER, {"order_id": order_id}
        ).one()
        rows = list(session.scalars(_LOCK_NUMBERS, {"order_id": order_id}))
        now = clock.now()
        fresh = all(row.status == PROVISIONING for row in rows)
        refund = Decimal("0.00")
        errors: dict[str, str] = {}
        orphans: list[tuple[str, str]] = []
        to_list: list[str] = []
        written: list[PhoneNumber] = []  # moved out of provisioning, written as one
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
                # Set as loaded, before the transition (its event shows them),
                # and written below with the other numbers in one statement.
                _settled(
                    row,
                    carrier=result.carrier or row.carrier,  # a number recorded as "multi"
                    purchased_at=now,
                    renews_on=add_months(now.date(), 1),
                )
                lifecycle.transition_written(session, row, ACTIVE, order_account, order_id=order_id)
                written.append(row)
                # A partner's (or tenant's) default caller name applies at once.
                if cnam.mark(session, row, order_account, first_listable=True):
                    to_list.append(row.id)
            elif (result is not None and result.status == "failed") or (
                result is None and authoritative
            ):
                reason = (result.reason if result else None) or "the carrier has no record of it"
                _settled(row, failure_reason=reason)
                lifecycle.transition_written(session, row, FAILED, order_account, reason=reason)
                written.append(row)
                errors[row.e164] = reason
                refund += row.monthly_cost + row.upfront_cost
        if written:
            session.execute(
                _SETTLE_NUMBERS,
                [
                    {
                        "number_id": row.id,
                        "to": row.status,
                        "new_carrier": row.carrier,
                        "new_purchased_at": row.purchased_at,
                        "new_renews_on": row.renews_on,
                        "new_reason": row.failure_reason,
                    }
                    for row in written
                ],
            )
        if refund:
            if wallet is None:
                # A caller's may_refund=False was wrong: nothing settles, the
                # numbers stay provisioning for reconcile, nothing is lost.
                raise RuntimeError(f"settling {order_id} refunds, but its wallet isn't locked")
            revenue = ledger.ensure_platform_book(session, ledger.REVENUE, order_currency)
            ledger.transfer(
                session,
                kind="refund",
                description=f"Refund for {_named(list(errors))}: not provided by the carrier",
                debit=revenue,
                credit=wallet.id,
                amount=refund,
                reference=order_id,
            )
        if all(row.status != PROVISIONING for row in rows):
            session.execute(_ORDER_SETTLED, {"order_id": order_id, "at": now})
        for row in rows:
            if row.status == FAILED and row.e164 not in errors:
                errors[row.e164] = row.failure_reason or "failed"
        settled = PurchaseResult(
            order_id,
            rows,
            charged=order_total,
            refunded=refund,
            outcome_known=True,
            errors=errors,
            fresh=fresh and not to_list,
        )
    for e164, holder in orphans:
        with contextlib.suppress(CarrierFailure, CarrierOutcomeUnknown):
            carrier_for(carrier, holder).release(e164)
    cnam.push(db, carrier, to_list, settled.numbers[0].owner_id if settled.numbers else None)
    return settled


def _named(e164s: Sequence[str], shown: int = 3) -> str:
    """The numbers a billing line is about: ``+15015550123``, or the first
    few and how many more."""
    head = ", ".join(e164s[:shown])
    rest = len(e164s) - shown
    return f"{head} and {rest} more" if rest > 0 else head
