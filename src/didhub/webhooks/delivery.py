"""Delivering the outbox: POST each due delivery, signed, and schedule a retry
when the endpoint doesn't answer 2xx.

A worker *claims* a batch in one short transaction (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so workers never take the same rows; SQLite's ``BEGIN
IMMEDIATE`` serialises claims) by pushing each row's ``next_attempt_at`` one
lease ahead, then POSTs outside any transaction (an SQLite transaction holds
the database lock; a receiver can be slow), then records each outcome in its
own transaction. A worker that dies mid-batch leaves its rows to be retried
when the lease runs out: delivery is at least once, and receivers
de-duplicate on ``Didhub-Event-Id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update

from didhub import __version__, clock, metrics
from didhub.db import Database
from didhub.webhooks import signing, targets
from didhub.webhooks.events import DELIVERED, FAILED, PENDING
from didhub.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# After the n-th failed attempt the next one is due this much later; past the
# end of the list the last delay repeats. With 8 attempts (the default) a
# delivery is given up about 43 hours after the event.
RETRY_SCHEDULE = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_TIMEOUT = 10.0
BATCH = 50
# Longer than a whole batch of timeouts (50 × 10 s): a live worker always
# records its outcome before another worker may take the row again.
LEASE = timedelta(minutes=10)
ENDPOINT_REMOVED = "the endpoint was removed"


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts (1 = the first one failed)."""
    return RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]


def payload(event: Event) -> dict[str, Any]:
    """The event as webhooks carry it and ``GET /events`` shows it."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "account_id": event.account_id,
        "data": event.data,
    }


def encode(event: Event) -> bytes:
    return json.dumps(payload(event), separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    attempts: int  # when claimed: the outcome is recorded only if still so
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    endpoint_removed: bool


@dataclass
class DeliveryReport:
    claimed: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim(db: Database, now: datetime, limit: int) -> list[_Job]:
    with db.session() as session:
        rows = session.execute(
            select(WebhookDelivery, WebhookEndpoint, Event)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(Event, Event.seq == WebhookDelivery.event_seq)
            .where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
                # A disabled endpoint's deliveries wait for it to be enabled again.
                or_(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_not(None)),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        ).all()
        jobs = []
        for delivery, endpoint, event in rows:
            delivery.next_attempt_at = now + LEASE
            jobs.append(
                _Job(
                    delivery.id,
                    delivery.attempts,
                    endpoint.url,
                    endpoint.secret,
                    event.id,
                    event.type,
                    encode(event),
                    endpoint.deleted_at is not None,
                )
            )
        return jobs


@dataclass(frozen=True)
class _Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _failure(exc: httpx.HTTPError) -> str:
    """What an account is told of a failed POST: the kind of failure, never the
    socket's own words (which would tell a scanner one closed port from another)."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "ssl" in text or "certificate" in text or "tls" in text:
            return "TLS handshake failed (certificate or protocol)"
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "the answer was not valid HTTP"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return "the connection broke off"
    return "the delivery failed"


def _post(client: httpx.Client, job: _Job, allow_private: bool) -> _Outcome:
    attempted_at = clock.now()
    timestamp = int(attempted_at.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"didhub-webhooks/{__version__}",
        "Didhub-Event-Id": job.event_id,
        "Didhub-Event-Type": job.event_type,
        "Didhub-Delivery-Id": job.delivery_id,
        signing.HEADER: signing.signature_header(job.secret, timestamp, job.body),
    }
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        # Checked again now (a host's addresses change), and connected to the
        # address checked: see webhooks/targets.py.
        target = targets.pin(job.url, allow_private)
        extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
        headers["Host"] = target.host_header
        # Streamed and never read: only the status matters, whatever the size.
        with client.stream(
            "POST", target.url, content=job.body, headers=headers, extensions=extensions
        ) as response:
            status_code = response.status_code
    except targets.TargetRefused as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = _failure(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _Outcome(attempted_at, status_code, error, duration_ms)


def _record(
    db: Database, job: _Job, outcome: _Outcome, max_attempts: int, report: DeliveryReport
) -> None:
    with db.session() as session:
        session.add(
            WebhookAttempt(
                delivery_id=job.delivery_id,
                attempted_at=outcome.attempted_at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        delivery = session.get_one(WebhookDelivery, job.delivery_id, with_for_update=True)
        if delivery.status != PENDING or delivery.attempts != job.attempts:
            return  # another worker took it after the lease ran out and recorded first
        delivery.attempts += 1
        delivery.last_attempt_at = outcome.attempted_at
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.ok:
            delivery.status = DELIVERED
            delivery.delivered_at = outcome.attempted_at
            delivery.next_attempt_at = None
            report.delivered += 1
            metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
        elif delivery.attempts >= max_attempts:
            delivery.status = FAILED
            delivery.next_attempt_at = None
            report.failed += 1
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
        else:
            delivery.next_attempt_at = outcome.attempted_at + backoff(delivery.attempts)
            report.retrying += 1
            metrics.WEBHOOK_DELIVERIES.labels("retrying").inc()


def _give_up_removed(db: Database, job: _Job, report: DeliveryReport) -> None:
    with db.session() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == PENDING)
            .values(status=FAILED, next_attempt_at=None, last_error=ENDPOINT_REMOVED)
        )
    report.failed += 1


@contextmanager
def _client(given: httpx.Client | None, timeout: float) -> Iterator[httpx.Client]:
    if given is not None:
        yield given
        return
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        yield client


def deliver_due(
    db: Database,
    now: datetime | None = None,
    http_client: httpx.Client | None = None,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int = BATCH,
    timeout: float = DEFAULT_TIMEOUT,
    allow_private: bool = False,
) -> DeliveryReport:
    """POST up to ``limit`` deliveries due at ``now`` (default: the clock).
    2xx is delivered; anything else (an error status, a redirect, a timeout,
    a refused connection) is retried on ``RETRY_SCHEDULE`` until
    ``max_attempts``, then ``failed``. Without ``http_client`` one is made with
    ``timeout`` seconds and no redirects followed. A URL whose host is not a
    public address is not contacted (``allow_private`` lifts that)."""
    report = DeliveryReport()
    jobs = _claim(db, now or clock.now(), limit)
    report.claimed = len(jobs)
    if not jobs:
        return report
    with _client(http_client, timeout) as client:
        for job in jobs:
            if job.endpoint_removed:
                _give_up_removed(db, job, report)
                continue
            outcome = _post(client, job, allow_private)
            report.attempted += 1
            _record(db, job, outcome, max_attempts, report)
    return report
