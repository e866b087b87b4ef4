"""Cards on file, top-ups and auto-recharge: how money gets into a wallet.

A card charge is a small saga like a purchase: record the attempt (with the
idempotency key the gateway will see), ask the gateway outside any database
transaction, then credit the wallet from the card-clearing book in one ledger
transaction. An unanswered charge stays ``unknown`` and ``reconcile_charges``
asks again with the same key, which can't charge twice.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_UP, Decimal
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.config import Settings
from didhub.db import Database, new_id, table_of
from didhub.errors import (
    Conflict,
    InsufficientFunds,
    PaymentDeclined,
    PaymentPending,
    ValidationFailed,
)
from didhub.outputs import money_text
from didhub.payments.base import CardDetails, PaymentGateway, PaymentOutcomeUnknown
from didhub.payments.base import PaymentDeclined as GatewayDeclined
from didhub.wallet import ledger, standing
from didhub.wallet.models import (
    AccountEvent,
    BillingProfile,
    CardCharge,
    LedgerAccount,
    PaymentCard,
)
from didhub.webhooks import events as published_events

CARD_CLEARING = "card_clearing"
MAX_TOPUP = Decimal("10000.00")


def profile(session: Session, account_id: str) -> BillingProfile:
    """The account's billing profile (created on first use)."""
    return standing.ensure_profile(session, account_id)


def event(
    session: Session,
    account_id: str,
    kind: str,
    message: str,
    *,
    published: Mapping[str, object] | None = None,
    **data: object,
) -> None:
    """Add to the account's history and publish it (``webhooks/catalogue.py``)
    in the same transaction; ``published`` adds details only the public event
    carries (too big for the history, like a renewal's number list)."""
    session.add(
        AccountEvent(
            account_id=account_id, kind=kind, message=message, data=data, created_at=clock.now()
        )
    )
    published_events.account_event(
        session, account_id, kind, message, {**data, **(published or {})}
    )


def check_amount(value: Decimal, field: str, *, allow_zero: bool = False) -> Decimal:
    if not value.is_finite():
        raise ValidationFailed("must be a number", field=field)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationFailed(
            "must be zero or more" if allow_zero else "must be more than zero", field=field
        )
    # Before quantizing: past 28 digits, quantize raises instead of answering.
    if value > MAX_TOPUP:
        raise ValidationFailed(f"at most {MAX_TOPUP}", field=field)
    if value != value.quantize(ledger.CENTS):
        raise ValidationFailed("at most 2 decimal places", field=field)
    return value


# ------------------------------------------------------------------ card on file


def card_on_file(session: Session, account_id: str) -> PaymentCard | None:
    return session.get(PaymentCard, account_id)


def set_card(
    db: Database, gateway: PaymentGateway, account_id: str, card_token: str
) -> PaymentCard:
    """Store a card (replacing the previous one). Only the gateway's token, brand,
    last 4 and expiry are kept."""
    if not card_token.strip():
        raise ValidationFailed("card_token is required", field="card_token")
    with db.session() as session:
        current = session.get(PaymentCard, account_id)
        customer = current.customer if current is not None else None
    try:
        details = gateway.attach_card(account_id, card_token.strip(), customer)
    except GatewayDeclined as exc:
        raise PaymentDeclined(str(exc), field="card_token") from exc
    except PaymentOutcomeUnknown as exc:
        raise PaymentPending(
            f"the payment gateway did not answer ({exc}); try again", field="card_token"
        ) from exc
    with db.session() as session:
        card = session.get(PaymentCard, account_id)
        if card is None:
            card = PaymentCard(account_id=account_id, created_at=clock.now())
            session.add(card)
        card.gateway = gateway.name
        card.token = details.token
        card.customer = details.customer
        card.brand = details.brand
        card.last4 = details.last4
        card.exp_month = details.exp_month
        card.exp_year = details.exp_year
        card.created_at = clock.now()
        event(session, account_id, "card.added", f"{details.brand} ending {details.last4} added")
    return card


def remove_card(session: Session, account_id: str) -> None:
    card = session.get(PaymentCard, account_id)
    if card is None:
        return
    session.delete(card)
    billing = profile(session, account_id)
    if billing.auto_recharge_enabled:
        billing.auto_recharge_enabled = False
        event(
            session, account_id, "auto_recharge.disabled", "Auto-recharge off: the card was removed"
        )


def set_auto_recharge(
    session: Session, account_id: str, enabled: bool, threshold: Decimal, amount: Decimal
) -> BillingProfile:
    check_amount(threshold, "threshold", allow_zero=True)
    check_amount(amount, "amount", allow_zero=not enabled)
    if enabled and session.get(PaymentCard, account_id) is None:
        raise ValidationFailed("add a card before turning auto-recharge on", field="enabled")
    billing = profile(session, account_id)
    billing.auto_recharge_enabled = enabled
    billing.auto_recharge_threshold = threshold
    billing.auto_recharge_amount = amount
    billing.updated_at = clock.now()
    return billing


# ------------------------------------------------------------------ charges


@dataclass(frozen=True)
class ChargeOutcome:
    charge_id: str
    status: str  # succeeded | declined | unknown
    amount: Decimal
    message: str | None


def _card_details(card: PaymentCard) -> CardDetails:
    return CardDetails(
        token=card.token,
        last4=card.last4,
        brand=card.brand,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        customer=card.customer,
    )


# How a card charge's purpose reads on a billing line.
PURPOSE_WORDS = {"topup": "top-up", "auto_recharge": "auto-recharge"}


def charge_card(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    account_id: str,
    amount: Decimal,
    purpose: str,
    idempotency_key: str,
) -> ChargeOutcome:
    """Charge the card on file and credit the wallet. Asking again with the same
    key returns the first outcome (or settles an unknown one)."""
    with db.session() as session:
        charge = session.scalars(
            select(CardCharge).where(CardCharge.idempotency_key == idempotency_key)
        ).first()
        if charge is not None and charge.status in ("succeeded", "declined"):
            return ChargeOutcome(charge.id, charge.status, charge.amount, charge.message)
        card = session.get(PaymentCard, account_id)
        if card is None:
            raise ValidationFailed("there is no card on file", field="card")
        details = _card_details(card)
        if charge is None:
            # Refused here, before the card is charged, if the account's wallet
            # is in another currency: that money would have nowhere to go.
            ledger.ensure_wallet(session, account_id, settings.currency)
            charge = CardCharge(
                id=new_id("chg"),
                account_id=account_id,
                purpose=purpose,
                amount=amount,
                currency=settings.currency,
                idempotency_key=idempotency_key,
                status="pending",
                gateway=gateway.name,
                created_at=clock.now(),
            )
            session.add(charge)
        charge_pk, amount, currency = charge.id, charge.amount, charge.currency
    try:
        result = gateway.charge(
            card=details,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            description=f"didhub wallet {purpose}",
        )
    except PaymentOutcomeUnknown as exc:
        with db.session() as session:
            session.get_one(CardCharge, charge_pk).status = "unknown"
            session.get_one(CardCharge, charge_pk).message = str(exc)
        return ChargeOutcome(charge_pk, "unknown", amount, str(exc))
    with db.session() as session:
        # The lock order: the wallet before the charge row.
        wallet = ledger.lock_wallet(session, account_id, currency)
        charge = session.scalars(
            select(CardCharge)
            .where(CardCharge.id == charge_pk)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if charge.status in ("succeeded", "declined"):  # settled meanwhile by a retry
            return ChargeOutcome(charge.id, charge.status, charge.amount, charge.message)
        charge.gateway_charge_id = result.charge_id
        if result.status == "succeeded":
            clearing = ledger.ensure_platform_book(session, CARD_CLEARING, currency)
            txn = ledger.transfer(
                session,
                kind="card_topup" if purpose == "topup" else "auto_recharge",
                description=(
                    f"Card {details.brand.title()} ending {details.last4}: "
                    f"{PURPOSE_WORDS.get(purpose, purpose)}"
                ),
                debit=clearing,
                credit=wallet.id,
                amount=charge.amount,
                reference=charge.id,
                currency=currency,
            )
            charge.status = "succeeded"
            charge.ledger_transaction_id = txn.id
            event(
                session,
                account_id,
                "payment.succeeded",
                f"Card charged {money_text(charge.amount, currency)}",
            )
        else:
            charge.status = "declined"
            charge.decline_code = result.decline_code
            charge.message = result.message or "the card was declined"
            event(
                session,
                account_id,
                "payment.failed",
                f"Card charge of {money_text(charge.amount, currency)} declined: {charge.message}",
                decline_code=result.decline_code,
            )
        return ChargeOutcome(charge.id, charge.status, charge.amount, charge.message)


def _raise_unless_paid(outcome: ChargeOutcome, field: str) -> None:
    if outcome.status == "declined":
        raise PaymentDeclined(f"the card was declined: {outcome.message}", field=field)
    if outcome.status == "unknown":
        raise PaymentPending(
            "the payment gateway did not answer; the charge will be confirmed by "
            "`didhub reconcile` and is never taken twice",
            field=field,
        )


def _topup_attempt_key(db: Database, account_id: str, idempotency_key: str | None) -> str:
    """The gateway's idempotency key for this top-up. A declined attempt frees
    the request's Idempotency-Key (nothing changed), so a retry with it after
    the card was fixed is a new attempt, and the gateway, which answers a key
    it has seen with its first answer, must see a new key: ``…#2``, ``…#3``.
    An attempt still unknown (or paid) is asked about again with its own key,
    so it is never charged twice."""
    if not idempotency_key:
        return new_id("topup")
    first = f"topup:{account_id}:{idempotency_key}"
    if len(first) > 240:  # the column holds 255, with room for "#n"
        first = f"topup:{account_id}:sha256:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
    with db.read_session() as session:
        tried = dict(
            session.execute(
                select(CardCharge.idempotency_key, CardCharge.status).where(
                    CardCharge.account_id == account_id,
                    or_(
                        CardCharge.idempotency_key == first,
                        CardCharge.idempotency_key.startswith(f"{first}#", autoescape=True),
                    ),
                )
            ).all()
        )
    attempts = {1: first} | {
        int(n): key for key in tried if (n := key.removeprefix(f"{first}#")) != key and n.isdigit()
    }
    last = max(attempts)
    if tried.get(attempts[last]) == "declined":
        return f"{first}#{last + 1}"
    return attempts[last]


def topup(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    account_id: str,
    amount: Decimal,
    idempotency_key: str | None,
) -> ChargeOutcome:
    check_amount(amount, "amount")
    key = _topup_attempt_key(db, account_id, idempotency_key)
    outcome = charge_card(db, gateway, settings, account_id, amount, "topup", key)
    _raise_unless_paid(outcome, "amount")
    return outcome


def recharge_amount(step: Decimal, missing: Decimal) -> Decimal:
    """What auto-recharge charges when the wallet lacks ``missing``: one charge,
    rounded up to a whole multiple of the configured amount ``step`` (at least
    one step), so it covers everything due in one gateway call."""
    missing = missing.quantize(ledger.CENTS, rounding=ROUND_UP)
    if step <= 0:
        return missing
    steps = max(Decimal(1), (missing / step).to_integral_value(rounding=ROUND_CEILING))
    return (step * steps).quantize(ledger.CENTS)


def cover(
    db: Database,
    gateway: PaymentGateway | None,
    settings: Settings,
    account_id: str,
    needed: Decimal,
    reference: str,
) -> ChargeOutcome | None:
    """If the wallet can't cover ``needed`` and auto-recharge is on, charge the
    card for what's missing, rounded up to a multiple of the recharge amount
    (:func:`recharge_amount`), and return the charge. A decline is 402
    ``payment_declined`` and nothing else changes. Without auto-recharge
    nothing happens: the caller's own funds check answers.

    The idempotency key is ``reference`` with the amount and the card: asked
    again for the same step (same shortfall, same card), the gateway is asked
    with the same key and can't charge twice; another card, or another
    shortfall, is another charge."""
    with db.session() as session:
        balance = ledger.wallet_balance(session, account_id, settings.currency)
        billing = session.get(BillingProfile, account_id)
        card = session.get(PaymentCard, account_id)
        token = card.token if card is not None else None
    if balance >= needed or gateway is None or billing is None or token is None:
        return None
    if not billing.auto_recharge_enabled:
        return None
    amount = recharge_amount(billing.auto_recharge_amount, needed - balance)
    tag = hashlib.sha256(f"{token}|{amount}".encode()).hexdigest()[:16]
    outcome = charge_card(
        db, gateway, settings, account_id, amount, "auto_recharge", f"auto:{reference}:{tag}"
    )
    _raise_unless_paid(outcome, "wallet")
    return outcome


def auto_recharge_on(
    session: Session, account_id: str, billing: BillingProfile | None | bool = True
) -> bool:
    """Whether a shortfall would be charged to the account's card. ``billing``:
    the account's profile when the caller has read it already (``None``: it has
    none), else it is read here."""
    if billing is True or billing is False:
        billing = session.get(BillingProfile, account_id)
    return (
        billing is not None
        and billing.auto_recharge_enabled
        and session.get(PaymentCard, account_id) is not None
    )


def require_good_standing(session: Session, account_id: str) -> BillingProfile | None:
    """402 ``account_past_due`` unless the account is in good standing; its
    billing profile (``None``: it has none, so it is in good standing)."""
    billing = session.get(BillingProfile, account_id)
    _refuse_unless_good(billing.standing if billing is not None else None)
    return billing


def _refuse_unless_good(standing: str | None) -> None:
    if standing is not None and standing != "good":
        raise InsufficientFunds(
            f"the account is {standing.replace('_', ' ')}: pay the balance due "
            "before buying more numbers",
            field="wallet",
            code="account_past_due",
        )


@dataclass(frozen=True)
class Payer:
    """An account about to pay, its wallet locked (:func:`lock_payer`)."""

    wallet_id: str
    balance: Decimal
    # Auto-recharge is on and a card is on file: a shortfall would be charged to it.
    auto_recharge: bool
    # The books this statement read, as ledger.transfer_many's ``known``: the
    # wallet, and those of the platform books asked about that exist.
    books: dict[str, tuple[str | None, str]]


_BOOKS = table_of(LedgerAccount)
_PROFILES = table_of(BillingProfile)
_CARDS = table_of(PaymentCard)


def lock_payer(
    session: Session, account_id: str, currency: str, platform_books: Sequence[str] = ()
) -> Payer:
    """Lock the account's wallet (created on first use) for the rest of the
    transaction and read, in the same statement, its balance, its standing,
    whether a shortfall would go to its card and which of the platform books
    of ``platform_books`` (kinds, in ``currency``) exist; 402
    ``account_past_due`` unless it is in good standing
    (:func:`require_good_standing`)."""
    wallet = ledger.wallet_id(account_id, currency)
    platform = [ledger.platform_book_id(kind, currency) for kind in platform_books]
    statement = _payer_statement(len(platform))
    params = {"account": account_id, "wallet": wallet}
    params.update((f"book_{i}", book) for i, book in enumerate(platform))
    row = session.execute(statement, params).first()
    if row is None:
        ledger.ensure_wallet(session, account_id, currency)
        row = session.execute(statement, params).one()
    balance, standing_now, auto_recharge, has_card, *found = row
    _refuse_unless_good(standing_now)
    books: dict[str, tuple[str | None, str]] = {wallet: (account_id, currency)}
    books.update((book, (None, currency)) for book, yes in zip(platform, found, strict=True) if yes)
    return Payer(wallet, balance, bool(auto_recharge) and bool(has_card), books)


@functools.cache
def _payer_statement(platform_books: int) -> Select[Any]:
    """lock_payer's statement for that many platform books, built once (a
    statement made per call costs more to build and key for SQLAlchemy's
    compiled cache than to run): parameters ``account``, ``wallet`` and
    ``book_0`` …"""
    card = select(_CARDS.c.account_id).where(_CARDS.c.account_id == bindparam("account")).exists()
    others = _BOOKS.alias("book")
    exists = [
        select(others.c.id).where(others.c.id == bindparam(f"book_{i}")).exists().label(f"book_{i}")
        for i in range(platform_books)
    ]
    return (
        select(
            _BOOKS.c.balance,
            _PROFILES.c.standing,
            _PROFILES.c.auto_recharge_enabled,
            card.label("card"),
            *exists,
        )
        .select_from(_BOOKS.outerjoin(_PROFILES, _PROFILES.c.account_id == bindparam("account")))
        .where(_BOOKS.c.id == bindparam("wallet"))
        .with_for_update(of=_BOOKS)
    )


def recharge_below_threshold(
    db: Database,
    gateway: PaymentGateway | None,
    settings: Settings,
    account_id: str,
    reference: str,
) -> ChargeOutcome | None:
    """After a debit: top the wallet up by the recharge amount when it fell below
    the threshold. A decline is recorded as an event, not raised: the debit that
    triggered it already happened and was paid."""
    if gateway is None:
        return None
    with db.session() as session:
        billing = session.get(BillingProfile, account_id)
        balance = ledger.wallet_balance(session, account_id, settings.currency)
        if (
            billing is None
            or not billing.auto_recharge_enabled
            or billing.auto_recharge_amount <= 0
            or balance >= billing.auto_recharge_threshold
            or session.get(PaymentCard, account_id) is None
        ):
            return None
        amount = billing.auto_recharge_amount
    return charge_card(
        db, gateway, settings, account_id, amount, "auto_recharge", f"threshold:{reference}"
    )


def reconcile_charges(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    min_age: timedelta = timedelta(seconds=60),
) -> list[ChargeOutcome]:
    """Ask the gateway again, with the same keys, about charges it didn't
    answer. A ``pending`` charge younger than ``min_age`` is left alone: its
    request may still be waiting for the gateway, and asking beside it would
    race it (an ``unknown`` one's request has ended)."""
    cutoff = clock.now() - min_age
    with db.session() as session:
        pending = session.execute(
            select(
                CardCharge.account_id,
                CardCharge.amount,
                CardCharge.purpose,
                CardCharge.idempotency_key,
            )
            .where(
                or_(
                    CardCharge.status == "unknown",
                    (CardCharge.status == "pending") & (CardCharge.created_at <= cutoff),
                ),
                CardCharge.gateway == gateway.name,
            )
            .order_by(CardCharge.id)
        ).all()
    outcomes = []
    for account_id, amount, purpose, key in pending:
        try:
            outcomes.append(charge_card(db, gateway, settings, account_id, amount, purpose, key))
        except (ValidationFailed, Conflict):
            continue  # the card was removed meanwhile; the charge stays unknown
    return outcomes
