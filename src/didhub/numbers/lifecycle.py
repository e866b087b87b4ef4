"""The number lifecycle as one table of allowed transitions (Kazoo's
number_states). Every status change goes through :func:`transition`, which
records an event in the number's history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from didhub import clock
from didhub.db import table_of
from didhub.numbers.models import NumberEvent, PhoneNumber
from didhub.webhooks import events as published_events

PROVISIONING = "provisioning"
ACTIVE = "active"
RELEASING = "releasing"
RELEASED = "released"
SUSPENDED = "suspended"
FAILED = "failed"
# The carrier reports the number ported away to another carrier (docs/porting.md).
PORTED_OUT = "ported_out"

LIVE_STATUSES = (PROVISIONING, ACTIVE, SUSPENDED, RELEASING)
STATUSES = (PROVISIONING, ACTIVE, SUSPENDED, RELEASING, RELEASED, FAILED, PORTED_OUT)

TRANSITIONS: dict[str, frozenset[str]] = {
    PROVISIONING: frozenset({ACTIVE, FAILED}),
    ACTIVE: frozenset({RELEASING, SUSPENDED, PORTED_OUT}),
    # Suspended for non-payment: back when paid, or released after the second period.
    SUSPENDED: frozenset({ACTIVE, RELEASING, PORTED_OUT}),
    # A release the carrier refused puts the number back where it was.
    RELEASING: frozenset({RELEASED, ACTIVE, SUSPENDED, PORTED_OUT}),
    RELEASED: frozenset(),
    FAILED: frozenset(),
    PORTED_OUT: frozenset(),
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
    """Add ``kind`` to the number's history (``account_id``: who acted) and
    publish it (``webhooks/catalogue.py``): the event and its webhook
    deliveries are written in this same transaction, as rows at once (after
    whatever the session holds unwritten: the number itself, when it is new)."""
    if session.new:
        session.flush()
    session.execute(
        _RECORD,
        {
            "number_id": number.id,
            "account_id": account_id,
            "kind": kind,
            "data": data,
            "created_at": clock.now(),
        },
    )
    published_events.number_event(session, number, kind, data)


# Built once: a statement made per call costs more to build and key for
# SQLAlchemy's compiled cache than to run (docs/performance.md, "Built once").
_RECORD = insert(table_of(NumberEvent))


def transition(
    session: Session,
    number: PhoneNumber,
    to: str,
    account_id: str | None = None,
    **data: Any,
) -> None:
    previous = _allowed(number, to)
    number.status = to
    record(session, number, f"status.{to}", account_id, previous=previous, **data)


def transition_written(
    session: Session,
    number: PhoneNumber,
    to: str,
    account_id: str | None = None,
    **data: Any,
) -> None:
    """:func:`transition` for a caller that writes the new status itself, in
    one statement for all the numbers it moves (a purchase's settlement): the
    object's status is set as if loaded, so the session's unit of work writes
    nothing for it (a flush costs more than the statement it sends)."""
    previous = _allowed(number, to)
    set_committed_value(number, "status", to)
    record(session, number, f"status.{to}", account_id, previous=previous, **data)


def _allowed(number: PhoneNumber, to: str) -> str:
    """The number's status, when ``to`` may follow it."""
    if to not in TRANSITIONS[number.status]:
        raise IllegalTransition(f"{number.e164}: {number.status} -> {to} is not allowed")
    return number.status


def status_before(session: Session, number: PhoneNumber, entered: str) -> str | None:
    """The status a number had when it last moved to ``entered``."""
    event = session.scalars(
        select(NumberEvent)
        .where(NumberEvent.number_id == number.id, NumberEvent.kind == f"status.{entered}")
        .order_by(NumberEvent.id.desc())
    ).first()
    previous = event.data.get("previous") if event is not None else None
    return previous if isinstance(previous, str) else None
