"""Call records as a caller reads them: ``GET /billing/calls`` (JSON, CSV),
a number's calls in the dashboard and ``didhub calls list`` all read them here.

A call is readable by the scope of the account it was billed to (the number's
owner) and of the tenant the number served when the call was rated; what it
shows as ``charge`` is what the reader's account pays for it: the owner's
rated amount, or for a tenant of a reseller the retail charge its partner
billed it (``None`` until the resale is billed).

Newest first, by (``started_at``, ``id``): the cursor carries both, so calls
that started in the same instant are neither repeated nor skipped across
pages. Amounts are kept exact to the ten-thousandth and shown that way.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Select, String, and_, cast, literal, or_, select
from sqlalchemy.orm import Session

from didhub import numbering, outputs
from didhub.billing.models import ResaleCharge, UsageRecord
from didhub.db import Database
from didhub.errors import ValidationFailed
from didhub.numbers import repository as numbers_repository
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import Scope

DIRECTIONS = ("inbound", "outbound")
MAX_LIMIT = 500
CSV_COLUMNS = (
    "id",
    "call_id",
    "phone_number",
    "number_id",
    "direction",
    "started_at",
    "duration_seconds",
    "billable_seconds",
    "charge",
    "currency",
    "tenant_id",
    "destination",
)
_PREFIX = "call:"


@dataclass(frozen=True)
class CallFilter:
    number: str | None = None  # an E.164 (any number that held it) or a number id
    direction: str | None = None
    start: datetime | date | None = None  # from: this instant (a date: its first moment)
    end: datetime | date | None = None  # to: before this instant (a date: through that day)


@dataclass(frozen=True)
class Call:
    id: int
    call_id: str
    phone_number: str
    number_id: str
    direction: str
    started_at: datetime
    duration_seconds: int
    billable_seconds: int
    charge: Decimal | None
    currency: str
    tenant_id: str | None
    destination: str | None = None  # an outbound call's dialled number

    def shown(self) -> dict[str, object]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "phone_number": self.phone_number,
            "number_id": self.number_id,
            "direction": self.direction,
            "started_at": outputs.when(self.started_at),
            "duration_seconds": self.duration_seconds,
            "billable_seconds": self.billable_seconds,
            "charge": None if self.charge is None else outputs.money(self.charge),
            "currency": self.currency,
            "tenant_id": self.tenant_id,
            "destination": self.destination,
        }


@dataclass(frozen=True)
class CallPage:
    data: list[Call]
    next_cursor: str | None


def encode_cursor(call: Call) -> str:
    raw = f"{_PREFIX}{call.started_at.astimezone(UTC).isoformat()}|{call.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    refused = ValidationFailed("cursor is not one this API gave out", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode()).decode()
        if not raw.startswith(_PREFIX):
            raise refused
        moment, _, row_id = raw[len(_PREFIX) :].partition("|")
        started = datetime.fromisoformat(moment)
        number = int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    if started.tzinfo is None or not 0 < number < 2**63:
        raise refused
    return started, number


def moment(text: str | None, field: str) -> datetime | date | None:
    """``2026-11-23`` (a day) or ``2026-11-23T10:15:00Z`` (an instant)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{text!r} is not a date (2026-11-23) or a time (2026-11-23T10:15:00Z)", field=field
        ) from None


def _instant(value: datetime | date, field: str, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationFailed("needs a time zone, e.g. 2026-11-23T10:15:00Z", field=field)
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tzinfo=UTC)


def _query(
    session: Session, scope: Scope, filters: CallFilter
) -> Select[UsageRecord, str, Decimal]:
    """The readable calls matching ``filters``, with the reader's charge."""
    resold = and_(
        ResaleCharge.source == literal("usage:") + cast(UsageRecord.id, String),
        ResaleCharge.kind == "usage",
    )
    query = (
        select(UsageRecord, PhoneNumber.e164, ResaleCharge.retail)
        .join(PhoneNumber, PhoneNumber.id == UsageRecord.number_id)
        .outerjoin(ResaleCharge, resold)
        .where(or_(scope.owns(UsageRecord.account_id), scope.owns(UsageRecord.tenant_id)))
    )
    if filters.number is not None:
        text = filters.number.strip()
        if text.startswith("num_"):
            number = numbers_repository.get(session, scope, text, field="number")
            query = query.where(UsageRecord.number_id == number.id)
        else:
            query = query.where(PhoneNumber.e164 == numbering.parse_e164(text, field="number"))
    if filters.direction is not None:
        if filters.direction not in DIRECTIONS:
            raise ValidationFailed("must be inbound or outbound", field="direction")
        query = query.where(UsageRecord.direction == filters.direction)
    start = end = None
    if filters.start is not None:
        start = _instant(filters.start, "from", end=False)
        query = query.where(UsageRecord.started_at >= start)
    if filters.end is not None:
        end = _instant(filters.end, "to", end=True)
        query = query.where(UsageRecord.started_at < end)
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("must be later than from", field="to")
    return query


def _call(
    session: Session, scope: Scope, row: UsageRecord, e164: str, retail: Decimal | None
) -> Call:
    pays_rated = scope.can_see(session, row.account_id)
    return Call(
        id=row.id,
        call_id=row.call_id,
        phone_number=e164,
        number_id=row.number_id,
        direction=row.direction,
        started_at=row.started_at,
        duration_seconds=row.duration_seconds,
        billable_seconds=row.billable_seconds,
        charge=row.amount if pays_rated else retail,
        currency=row.currency,
        tenant_id=row.tenant_id,
        destination=row.destination,
    )


def list_calls(
    session: Session,
    scope: Scope,
    filters: CallFilter,
    limit: int = 50,
    cursor: str | None = None,
) -> CallPage:
    """One page of the scope's calls, newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"must be 1 to {MAX_LIMIT}", field="limit")
    query = _query(session, scope, filters)
    if cursor is not None:
        started, row_id = decode_cursor(cursor)
        query = query.where(
            or_(
                UsageRecord.started_at < started,
                and_(UsageRecord.started_at == started, UsageRecord.id < row_id),
            )
        )
    rows = session.execute(
        query.order_by(UsageRecord.started_at.desc(), UsageRecord.id.desc()).limit(limit + 1)
    )
    calls = [_call(session, scope, row, e164, retail) for row, e164, retail in rows]
    page = calls[:limit]
    return CallPage(page, encode_cursor(page[-1]) if len(calls) > limit else None)


def export_csv(
    db: Database, scope: Scope, filters: CallFilter, batch: int = MAX_LIMIT
) -> Iterator[str]:
    """Every matching call as CSV text (a header, then a line a call), read a
    page at a time, each page in a read transaction of its own. The filters
    are checked before the first line is produced."""
    with db.read_session() as session:
        first = list_calls(session, scope, filters, batch)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        page = first
        while True:
            for call in page.data:
                shown = call.shown()
                writer.writerow(["" if shown[c] is None else shown[c] for c in CSV_COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_cursor is None:
                return
            with db.read_session() as session:
                page = list_calls(session, scope, filters, batch, page.next_cursor)

    return lines()
