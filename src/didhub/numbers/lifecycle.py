"""The number lifecycle as one table of allowed transitions (Kazoo's
number_states). Every status change goes through :func:`transition`, which
records an event in the number's history."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from didhub import clock
from didhub.numbers.models import NumberEvent, PhoneNumber

PROVISIONING = "provisioning"
ACTIVE = "active"
RELEASING = "releasing"
RELEASED = "released"
FAILED = "failed"

LIVE_STATUSES = (PROVISIONING, ACTIVE, RELEASING)
STATUSES = (PROVISIONING, ACTIVE, RELEASING, RELEASED, FAILED)

TRANSITIONS: dict[str, frozenset[str]] = {
    PROVISIONING: frozenset({ACTIVE, FAILED}),
    ACTIVE: frozenset({RELEASING}),
    # A release the carrier refused puts the number back to active.
    RELEASING: frozenset({RELEASED, ACTIVE}),
    RELEASED: frozenset(),
    FAILED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def record(
    session: Session,
    number: PhoneNumber,
    kind: str,
    account_id: str | None = None,
    **data: Any,
) -> None:
    session.add(
        NumberEvent(
            number_id=number.id,
            account_id=account_id,
            kind=kind,
            data=data,
            created_at=clock.now(),
        )
    )


def transition(
    session: Session,
    number: PhoneNumber,
    to: str,
    account_id: str | None = None,
    **data: Any,
) -> None:
    if to not in TRANSITIONS[number.status]:
        raise IllegalTransition(f"{number.e164}: {number.status} -> {to} is not allowed")
    record(session, number, f"status.{to}", account_id, previous=number.status, **data)
    number.status = to
