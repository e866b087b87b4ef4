"""A port-in order's life as one table of allowed moves, each made by one
conditional UPDATE (``… WHERE status IN (<allowed from>)``), like
``wallet/standing.py``: a decision made on a stale read changes nothing, and
the caller publishes its event only for a move that happened."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from didhub import clock
from didhub.porting.models import PortOrder

DRAFT = "draft"
SUBMITTED = "submitted"
IN_PROGRESS = "in_progress"
FOC_CONFIRMED = "foc_confirmed"
EXCEPTION = "exception"
CORRECTED = "corrected"
RESUBMITTED = "resubmitted"
PORTED = "ported"
CANCELLED = "cancelled"

FINAL = (PORTED, CANCELLED)
OPEN = (SUBMITTED, IN_PROGRESS, FOC_CONFIRMED, RESUBMITTED)  # the carrier is working on it

TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({SUBMITTED, CANCELLED}),
    # Back to draft: the carrier refused the submission outright.
    SUBMITTED: frozenset({DRAFT, IN_PROGRESS, FOC_CONFIRMED, EXCEPTION, PORTED, CANCELLED}),
    IN_PROGRESS: frozenset({FOC_CONFIRMED, EXCEPTION, PORTED, CANCELLED}),
    FOC_CONFIRMED: frozenset({IN_PROGRESS, EXCEPTION, PORTED, CANCELLED}),
    EXCEPTION: frozenset({CORRECTED, CANCELLED, IN_PROGRESS, FOC_CONFIRMED, PORTED}),
    CORRECTED: frozenset({CORRECTED, RESUBMITTED, CANCELLED}),
    # Back to corrected: the carrier refused the resubmission outright.
    RESUBMITTED: frozenset({CORRECTED, IN_PROGRESS, FOC_CONFIRMED, EXCEPTION, PORTED, CANCELLED}),
    PORTED: frozenset(),
    CANCELLED: frozenset(),
}

NEXT_STEP: dict[str, str] = {
    DRAFT: "Add the E911 address and the recent bill, sign the LOA, choose a FOC date, submit",
    SUBMITTED: "Waiting for the carrier to accept the order",
    IN_PROGRESS: "Waiting for the losing carrier to confirm the port date (FOC)",
    FOC_CONFIRMED: "The numbers move on the FOC date; calls go to the losing carrier until then",
    EXCEPTION: "Correct what the losing carrier rejected, then resubmit",
    CORRECTED: "Resubmit the corrected order",
    RESUBMITTED: "Waiting for the carrier to accept the corrected order",
    PORTED: "Done: the numbers are active in the inventory",
    CANCELLED: "Cancelled: nothing was billed",
}


def sources(to: str) -> tuple[str, ...]:
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if to in targets))


def move(
    session: Session,
    order_id: str,
    to: str,
    *,
    only_from: Iterable[str] | None = None,
    extra: Any = None,
    **values: Any,
) -> bool:
    """``order_id`` to ``to`` if its status allows (and ``extra``, a SQL
    condition, holds); True when it moved."""
    allowed = tuple(only_from) if only_from is not None else sources(to)
    allowed = tuple(s for s in allowed if to in TRANSITIONS[s])
    query = (
        update(PortOrder)
        .where(PortOrder.id == order_id, PortOrder.status.in_(allowed))
        .values(status=to, updated_at=clock.now(), **values)
        .returning(PortOrder.id)
        .execution_options(synchronize_session=False)
    )
    if extra is not None:
        query = query.where(extra)
    moved = session.execute(query).first() is not None
    if moved:
        session.expire_all()
    return moved
