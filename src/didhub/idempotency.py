"""``Idempotency-Key`` for purchase, tenant PATCH, assign, unassign, release and
top-up (the rules: docs/idempotency.md).

The first request with a key claims it; its answer is stored and every replay
gets that same answer without running again (so nothing is charged twice). A
request that ends in a didhub error releases the key (those change nothing, so
a retry after fixing the cause must be able to run). While the first request
runs, its claim is a lease that a heartbeat renews, so a retry during a long
carrier wait is 409 ``idempotency_in_progress``; only a request that died (a
crash) stops renewing it, and once it lapses a retry may run. A stored 202 (the
outcome was unknown) is not replayed as it was: the replay answers the current
state, as a fresh request would. Reusing a key for a different request is
refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, String, delete, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from didhub import clock
from didhub.db import Base, Database, UtcDateTime
from didhub.errors import Conflict, DidhubError, ValidationFailed

log = logging.getLogger("didhub.idempotency")

HEADER = "Idempotency-Key"
LEASE = timedelta(minutes=5)
# How often (in real seconds) a running request renews its lease: a third of it,
# so two renewals may go missing (a busy database) before the lease lapses.
HEARTBEAT_SECONDS = LEASE.total_seconds() / 3
# The status of an answer whose outcome wasn't known yet (a carrier that didn't say).
PENDING_STATUS = 202

Answer = tuple[int, Any]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_created_at", "created_at"),)

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | done
    status_code: Mapped[int | None] = mapped_column(default=None)
    response: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # While in progress: until when the claim holds (renewed by the heartbeat).
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


def fingerprint(operation: str, request: Any) -> str:
    canonical = json.dumps([operation, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lease_over(record: IdempotencyRecord) -> bool:
    expires = record.lease_expires_at or record.created_at + LEASE
    return clock.now() >= expires


def _existing(db: Database, account_id: str, key: str, fp: str) -> Answer | None:
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
        if _lease_over(record):
            # The first attempt died mid-way (a crash): nothing renewed its
            # lease, so a retry may run. Its own guards (the live-number index,
            # orders settled only once) keep it from charging twice.
            session.delete(record)
            return None
        raise Conflict(
            "a request with this Idempotency-Key is still in progress",
            field=HEADER,
            code="idempotency_in_progress",
        )


def _free(db: Database, account_id: str, key: str) -> None:
    with db.session() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
            )
        )


def _renew(db: Database, account_id: str, key: str) -> None:
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.account_id == account_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.state == "in_progress",
            )
            .values(lease_expires_at=clock.now() + LEASE)
        )


@contextmanager
def _lease_kept(db: Database, account_id: str, key: str) -> Iterator[None]:
    """Renew the claim's lease every ``HEARTBEAT_SECONDS`` while the body runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                _renew(db, account_id, key)
            except Exception:  # a missed renewal is retried; two more fit in the lease
                log.exception("renewing the Idempotency-Key lease %s failed", key)

    heartbeat = threading.Thread(target=beat, name="idempotency-lease", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()


def _store(db: Database, account_id: str, key: str, answer: Answer) -> None:
    with db.session() as session:
        record = session.get(IdempotencyRecord, (account_id, key))
        if record is not None:
            record.state = "done"
            record.status_code, record.response = answer
            record.lease_expires_at = None


def _replay(
    db: Database,
    account_id: str,
    key: str,
    stored: Answer,
    current: Callable[[Answer], Answer] | None,
) -> Answer:
    """A stored answer, or, for an outcome that wasn't known (202), what a fresh
    request would answer now: once known, that is stored (an answer) or frees
    the key (a didhub error, as it would have on the first request)."""
    if stored[0] != PENDING_STATUS or current is None:
        return stored
    try:
        answer = current(stored)
    except DidhubError:
        _free(db, account_id, key)
        raise
    if answer[0] != PENDING_STATUS:
        _store(db, account_id, key, answer)
    return answer


def run_once(
    db: Database,
    account_id: str,
    key: str | None,
    operation: str,
    request: Any,
    work: Callable[[], Answer],
    current: Callable[[Answer], Answer] | None = None,
) -> Answer:
    """Run ``work`` (returning ``(status_code, json_body)``) at most once per key.
    ``current`` answers a replay of a stored 202 from that answer (which names
    what to re-read, e.g. the order id) with the state as it is now."""
    if key is None:
        return work()
    key = key.strip()
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1 to 255 characters", field=HEADER)
    fp = fingerprint(operation, request)
    now = clock.now()
    try:
        with db.session() as session:
            session.add(
                IdempotencyRecord(
                    account_id=account_id,
                    key=key,
                    fingerprint=fp,
                    state="in_progress",
                    created_at=now,
                    lease_expires_at=now + LEASE,
                )
            )
    except IntegrityError:
        replay = _existing(db, account_id, key, fp)
        if replay is None:  # freed (a failed or lapsed first attempt): claim it again
            return run_once(db, account_id, key, operation, request, work, current)
        return _replay(db, account_id, key, replay, current)
    try:
        with _lease_kept(db, account_id, key):
            answer = work()
    except DidhubError:
        # Our errors leave nothing changed (or exactly refunded): free the key.
        _free(db, account_id, key)
        raise
    _store(db, account_id, key, answer)
    return answer


PURGE_BATCH = 1000


def purge(db: Database, keep: timedelta) -> int:
    """Forget the keys claimed longer than ``keep`` ago (``DIDHUB_IDEMPOTENCY_KEEP_HOURS``,
    24 by default, as Stripe keeps them): answered ones, and claims whose lease
    lapsed. A claim still renewed by its request's heartbeat is kept however old.
    In batches, so the table is never locked for long; returns how many went."""
    removed = 0
    while True:
        now = clock.now()
        old = (
            select(IdempotencyRecord.account_id, IdempotencyRecord.key)
            .where(
                IdempotencyRecord.created_at < now - keep,
                or_(
                    IdempotencyRecord.state == "done",
                    IdempotencyRecord.lease_expires_at < now,
                ),
            )
            .limit(PURGE_BATCH)
        )
        with db.session() as session:
            batch = list(session.execute(old))
            if batch:
                session.execute(
                    delete(IdempotencyRecord).where(
                        tuple_(IdempotencyRecord.account_id, IdempotencyRecord.key).in_(batch)
                    )
                )
        removed += len(batch)
        if len(batch) < PURGE_BATCH:
            return removed
