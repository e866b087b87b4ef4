"""An account's standing as one table of allowed transitions (as
``numbers/lifecycle.py`` is for a number's status).

``good`` → ``past_due`` when a renewal can't be paid; ``past_due`` →
``suspended`` once the grace period is over and it still can't; back to
``good`` when everything due is paid, or once a suspended account's numbers
have all been released for non-payment (billing stops).

Each transition is one conditional ``UPDATE … WHERE standing = <expected> …
RETURNING``: it happens only if the row still is what the caller decided on,
and says whether it did, so that events are written only for a move that
happened. Callers hold the account's wallet lock first (the lock order in
docs/architecture.md: wallets, then billing profiles) and decide "still
unpaid" under it: a top-up credits the wallet under the same lock, so one
committed before the decision is seen by it, and one after is followed by its
own settling, which restores the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from didhub import clock
from didhub.wallet.models import BillingProfile

GOOD = "good"
PAST_DUE = "past_due"
SUSPENDED = "suspended"

STANDINGS = (GOOD, PAST_DUE, SUSPENDED)

TRANSITIONS: dict[str, frozenset[str]] = {
    GOOD: frozenset({PAST_DUE}),
    # Paid within the grace period, or not: suspended.
    PAST_DUE: frozenset({GOOD, SUSPENDED}),
    # Paid, or every number released for non-payment.
    SUSPENDED: frozenset({GOOD}),
}


def lock_profiles(session: Session, account_ids: Sequence[str]) -> dict[str, BillingProfile]:
    """Lock the billing profiles that exist of many accounts, in ascending
    account id (the lock order); an account without one is in good standing."""
    if not account_ids:
        return {}
    return {
        p.account_id: p
        for p in session.scalars(
            select(BillingProfile)
            .where(BillingProfile.account_id.in_(account_ids))
            .order_by(BillingProfile.account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }


def ensure_profile(session: Session, account_id: str) -> BillingProfile:
    """The account's billing profile (created on first use)."""
    found = session.get(BillingProfile, account_id)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            found = BillingProfile(
                account_id=account_id,
                auto_recharge_enabled=False,
                auto_recharge_threshold=Decimal("0"),
                auto_recharge_amount=Decimal("0"),
                standing=GOOD,
                updated_at=clock.now(),
            )
            session.add(found)
    except IntegrityError:  # created meanwhile by another transaction
        found = session.get_one(BillingProfile, account_id)
    return found


def lock_profile(session: Session, account_id: str) -> BillingProfile:
    """The account's billing profile, created if it has none, row-locked."""
    ensure_profile(session, account_id)
    return session.scalars(
        select(BillingProfile)
        .where(BillingProfile.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _move(
    session: Session,
    account_id: str,
    expected: Sequence[str],
    to: str,
    *conditions: ColumnElement[bool],
    **values: object,
) -> bool:
    for start in expected:
        if to not in TRANSITIONS[start]:
            raise ValueError(f"standing {start} -> {to} is not allowed")
    moved = session.execute(
        update(BillingProfile)
        .where(
            BillingProfile.account_id == account_id,
            BillingProfile.standing.in_(expected),
            *conditions,
        )
        .values(standing=to, updated_at=clock.now(), **values)
        .returning(BillingProfile.account_id)
        # A profile loaded in this session takes the new values too.
        .execution_options(synchronize_session="fetch")
    ).first()
    return moved is not None


def fall_past_due(session: Session, account_id: str, since: date) -> bool:
    """good → past_due: a renewal due on ``since`` couldn't be paid."""
    return _move(session, account_id, (GOOD,), PAST_DUE, past_due_since=since)


def suspend(session: Session, account_id: str, as_of: date, grace_days: int) -> bool:
    """past_due → suspended, once past due for ``grace_days``."""
    return _move(
        session,
        account_id,
        (PAST_DUE,),
        SUSPENDED,
        BillingProfile.past_due_since <= as_of - timedelta(days=grace_days),
        suspended_since=as_of,
    )


def restore(session: Session, account_id: str) -> bool:
    """past_due or suspended → good: everything due is paid."""
    return _move(
        session,
        account_id,
        (PAST_DUE, SUSPENDED),
        GOOD,
        past_due_since=None,
        suspended_since=None,
    )


def close_released(session: Session, account_id: str) -> bool:
    """suspended → good: its numbers were released for non-payment, so
    nothing is billed any more."""
    return _move(session, account_id, (SUSPENDED,), GOOD, past_due_since=None, suspended_since=None)


def release_due(profile: BillingProfile, as_of: date, release_after_days: int) -> bool:
    """Whether a (locked) profile is suspended long enough for its numbers to go."""
    return (
        profile.standing == SUSPENDED
        and profile.suspended_since is not None
        and as_of >= profile.suspended_since + timedelta(days=release_after_days)
    )
