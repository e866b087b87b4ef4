"""``Idempotency-Key`` for purchase, assign, unassign and release.

The first request with a key claims it; its answer is stored and every replay
gets that same answer without running again (so nothing is charged twice). A
request that ends in a didhub error releases the key (those change nothing, so
a retry after fixing the cause must be able to run); a crash leaves the key
"in progress" for a five-minute lease, so a blind retry can't race the first
attempt, and then lets a retry run. Reusing a key for a different
request is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from didhub import clock
from didhub.db import Base, Database, UtcDateTime
from didhub.errors import Conflict, DidhubError, ValidationFailed

HEADER = "Idempotency-Key"
LEASE = timedelta(minutes=5)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | done
    status_code: Mapped[int | None] = mapped_column(default=None)
    response: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


def fingerprint(operation: str, request: Any) -> str:
    canonical = json.dumps([operation, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _existing(db: Database, account_id: str, key: str, fp: str) -> tuple[int, Any] | None:
    """The stored answer for a claimed key, or None when the key is free again."""
    with db.session() as session:
        record = session.get(IdempotencyRecord, (account_id, key))
        if record is None:
            return None
        if record.fingerprint != fp:
            raise ValidationFailed(
                "this Idempotency-Key was already used for a different request",
                field=HEADER,
                code="idempotency_key_reused",
            )
        if record.state == "done":
            assert record.status_code is not None
            return record.status_code, record.response
        if clock.now() - record.created_at > LEASE:
            # The first attempt died mid-way (a crash, an unexpected error): after
            # the lease a retry may run. Its own guards (the live-number index,
            # orders settled only once) keep it from charging twice.
            session.delete(record)
            return None
        raise Conflict(
            "a request with this Idempotency-Key is still in progress",
            field=HEADER,
            code="idempotency_in_progress",
        )


def run_once(
    db: Database,
    account_id: str,
    key: str | None,
    operation: str,
    request: Any,
    work: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Run ``work`` (returning ``(status_code, json_body)``) at most once per key."""
    if key is None:
        return work()
    key = key.strip()
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1 to 255 characters", field=HEADER)
    fp = fingerprint(operation, request)
    try:
        with db.session() as session:
            session.add(
                IdempotencyRecord(
                    account_id=account_id,
                    key=key,
                    fingerprint=fp,
                    state="in_progress",
                    created_at=clock.now(),
                )
            )
    except IntegrityError:
        replay = _existing(db, account_id, key, fp)
        if replay is None:  # freed (a failed or lapsed first attempt): claim it again
            return run_once(db, account_id, key, operation, request, work)
        return replay
    try:
        status_code, body = work()
    except DidhubError:
        # Our errors leave nothing changed (or exactly refunded): free the key.
        with db.session() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
                )
            )
        raise
    with db.session() as session:
        record = session.get(IdempotencyRecord, (account_id, key))
        if record is not None:
            record.state = "done"
            record.status_code = status_code
            record.response = body
    return status_code, body
