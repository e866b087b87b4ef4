"""Per-minute usage: call records from the SIP edge (or a CSV import) rated by
number type and direction from the price list (an outbound call with a
``destination`` by the outbound rate table, ``outbound_rates.py``), and posted
to wallets in batches.

Rating rounds a call up to the billing increment (default 6 s) with a minimum
(default 6 s); a call that wasn't answered (0 s) costs nothing. A record whose
``call_id`` was seen before is ignored, so the edge may resend freely. A record
that can't be a real call (it starts in the future, or lasts longer than the
SIP edge lets a call last) or is for a number we didn't hold is reported back
in ``rejected`` and charged nothing.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.billing.models import UsageRecord
from didhub.billing.service import outbound_rates, resale
from didhub.billing.service.rating import billable_minutes, billable_seconds, charge_for, rate_for
from didhub.config import Settings
from didhub.db import Database, table_of
from didhub.errors import ValidationFailed
from didhub.numbers.models import PhoneNumber
from didhub.wallet import ledger

DIRECTIONS = ("inbound", "outbound")
# How far the edge's clock may run ahead of ours before a call "starts in the future".
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CallRecord:
    phone_number: str
    direction: str
    started_at: datetime
    duration_seconds: int
    call_id: str
    # An outbound call's dialled number: rated by the outbound rate table.
    destination: str | None = None


@dataclass
class UsageReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    charged: Decimal = Decimal("0")


def validate(records: Sequence[CallRecord], prefix: str = "records") -> list[CallRecord]:
    """Check every record before anything is written: a bad one fails the batch,
    naming it (``records[3].duration_seconds``)."""
    if len(records) > 10_000:
        raise ValidationFailed("at most 10,000 records per request", field=prefix)
    clean = []
    for i, r in enumerate(records):
        where = f"{prefix}[{i}]"
        e164 = numbering.parse_e164(r.phone_number, field=f"{where}.phone_number")
        if r.direction not in DIRECTIONS:
            raise ValidationFailed("must be inbound or outbound", field=f"{where}.direction")
        if r.duration_seconds < 0:
            raise ValidationFailed("must be 0 or more", field=f"{where}.duration_seconds")
        if r.started_at.tzinfo is None:
            raise ValidationFailed(
                "needs a time zone, e.g. 2026-11-23T10:15:00Z", field=f"{where}.started_at"
            )
        call_id = r.call_id.strip()
        if not call_id or len(call_id) > 255:
            raise ValidationFailed("must be 1 to 255 characters", field=f"{where}.call_id")
        destination = None
        if r.destination is not None and r.destination.strip():
            if r.direction != "outbound":
                raise ValidationFailed(
                    "only an outbound call has a destination", field=f"{where}.destination"
                )
            destination = numbering.parse_e164(r.destination, field=f"{where}.destination")
        clean.append(
            CallRecord(e164, r.direction, r.started_at, r.duration_seconds, call_id, destination)
        )
    return clean


def _number_at(rows: Iterable[PhoneNumber], moment: datetime) -> PhoneNumber | None:
    """The number row that held this E.164 when the call started."""
    for row in rows:
        began = row.purchased_at or row.created_at
        if began <= moment and (row.released_at is None or row.released_at > moment):
            return row
    return None


def _impossible(settings: Settings, r: CallRecord, now: datetime) -> tuple[str, str] | None:
    """Why a well-formed record can't be a real call, as ``(field, message)``."""
    if r.started_at > now + CLOCK_SKEW:
        return "started_at", f"the call starts in the future ({r.started_at.isoformat()})"
    if r.duration_seconds > settings.max_call_seconds:
        return "duration_seconds", (
            f"{r.duration_seconds} s is longer than the longest call "
            f"({settings.max_call_seconds} s, DIDHUB_MAX_CALL_SECONDS)"
        )
    return None


def record(db: Database, settings: Settings, records: Sequence[CallRecord]) -> UsageReport:
    """Rate and store call records, then post what's owed to the wallets."""
    clean = validate(records)
    report = UsageReport()
    seen: set[str] = set()
    with db.session() as session:
        known = set(
            session.scalars(
                select(UsageRecord.call_id).where(
                    UsageRecord.call_id.in_({r.call_id for r in clean})
                )
            )
        )
        candidates: dict[str, list[PhoneNumber]] = defaultdict(list)
        for row in session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.e164.in_({r.phone_number for r in clean}))
            .order_by(PhoneNumber.created_at.desc())
        ):
            candidates[row.e164].append(row)
        now = clock.now()
        table = (
            outbound_rates.RateTable.load(session, settings.outbound_default_rate)
            if any(r.destination is not None for r in clean)
            else None
        )
        fresh: list[UsageRecord] = []
        for index, r in enumerate(clean):
            if r.call_id in known or r.call_id in seen:
                report.duplicates += 1
                continue
            problem = _impossible(settings, r, now)
            if problem is not None:
                where, why = problem
                report.rejected.append(
                    {"index": index, "call_id": r.call_id, "field": where, "message": why}
                )
                continue
            number = _number_at(candidates.get(r.phone_number, []), r.started_at)
            if number is None:
                report.rejected.append(
                    {
                        "index": index,
                        "call_id": r.call_id,
                        "field": "phone_number",
                        "message": f"{r.phone_number} was not a number of ours at {r.started_at}",
                    }
                )
                continue
            seen.add(r.call_id)
            seconds = billable_seconds(
                r.duration_seconds,
                settings.usage_increment_seconds,
                settings.usage_minimum_seconds,
            )
            if r.destination is not None and table is not None:
                rate = table.rate_for(r.destination)  # an outbound call, by where it went
            else:
                rate = rate_for(settings, number.phone_number_type, r.direction)
            fresh.append(
                UsageRecord(
                    call_id=r.call_id,
                    number_id=number.id,
                    account_id=number.owner_id,
                    tenant_id=number.tenant_id,
                    direction=r.direction,
                    started_at=r.started_at,
                    duration_seconds=r.duration_seconds,
                    billable_seconds=seconds,
                    rate=rate,
                    amount=charge_for(rate, seconds),
                    currency=number.currency,
                    created_at=now,
                    destination=r.destination,
                )
            )
        # The lock order: the owners' wallets before anything that touches a
        # number row. Inserting a call takes a key-share lock on its number
        # (the foreign key), which a renewal or purchase holding the wallet
        # and locking the number would wait for: a deadlock.
        ledger.lock_wallets(
            session, sorted({item.account_id for item in fresh}), settings.currency, create=True
        )
        stored: list[UsageRecord] = []
        try:
            with session.begin_nested():
                session.add_all(fresh)
            stored = fresh
        except IntegrityError:
            # Another request stored some of these call ids just now: one by one.
            for item in fresh:
                try:
                    with session.begin_nested():
                        session.add(item)
                    stored.append(item)
                except IntegrityError:
                    report.duplicates += 1
        report.accepted = len(stored)
        resold = [item.id for item in stored if item.tenant_id is not None]
        owners = {item.account_id for item in stored}
        if owners:  # posted in the same transaction: one commit per request
            report.charged = _post(session, settings, owners)
    if resold:
        resale.bill_tenants(db, settings, calls=resold)
    return report


def post_pending(
    db: Database, settings: Settings, accounts: Collection[str] | None = None
) -> Decimal:
    """Post rated, unposted calls (of ``accounts``, or everyone's) to the wallets."""
    with db.session() as session:
        return _post(session, settings, accounts)


def _post(session: Session, settings: Settings, accounts: Collection[str] | None) -> Decimal:
    """One ledger transaction per account for its unposted calls, written
    set-based in the caller's transaction, because the edge posts calls all
    day long. Wallets are locked before the calls (the ledger's lock order)."""
    owners_query = select(UsageRecord.account_id).where(UsageRecord.posted_at.is_(None))
    if accounts is not None:
        owners_query = owners_query.where(UsageRecord.account_id.in_(accounts))
    owners = sorted(set(session.scalars(owners_query)))
    if not owners:
        return Decimal("0")
    # An account never charged before gets its wallet first, so that every
    # wallet is locked in one ascending statement (the lock order).
    books = {
        owner: book.id
        for owner, book in ledger.lock_wallets(
            session, owners, settings.currency, create=True
        ).items()
    }
    pending = session.execute(
        select(
            UsageRecord.id,
            UsageRecord.account_id,
            UsageRecord.amount,
            UsageRecord.billable_seconds,
        )
        .where(UsageRecord.account_id.in_(owners), UsageRecord.posted_at.is_(None))
        .order_by(UsageRecord.id)
        .with_for_update()
    )
    calls: dict[str, list[int]] = defaultdict(list)
    owed: dict[str, Decimal] = defaultdict(Decimal)
    seconds: dict[str, list[int]] = defaultdict(list)
    for record_id, account_id, amount, billable in pending:
        calls[account_id].append(record_id)
        owed[account_id] += amount
        seconds[account_id].append(billable)
    charged = [a for a in calls if owed[a]]
    revenue = ledger.ensure_platform_book(session, ledger.REVENUE, settings.currency)
    txn_ids = ledger.transfer_many(
        session,
        kind="usage",
        currency=settings.currency,
        transfers=[
            ledger.Transfer(
                books[a],
                revenue,
                owed[a],
                f"Calls: {len(calls[a])} call(s), "
                f"{billable_minutes(seconds[a])} billable minute(s)",
                reference=f"usage:{calls[a][0]}-{calls[a][-1]}",
            )
            for a in charged
        ],
    )
    posted_by = dict(zip(charged, txn_ids, strict=True))
    now = clock.now()
    table = table_of(UsageRecord)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("record"))
        .values(posted_at=now, ledger_transaction_id=bindparam("txn")),
        [
            {"record": record_id, "txn": posted_by.get(account_id)}
            for account_id, ids in calls.items()
            for record_id in ids
        ],
    )
    return sum(owed.values(), Decimal("0"))


CSV_COLUMNS = {
    "phone_number": ("phone_number", "number", "did"),
    "direction": ("direction",),
    "started_at": ("started_at", "start", "start_time"),
    "duration_seconds": ("duration_seconds", "duration"),
    "call_id": ("call_id", "id", "uniqueid"),
}
OPTIONAL_CSV_COLUMNS = {"destination": ("destination", "dialled", "dst")}


def read_csv(path: Path) -> list[CallRecord]:
    """CDRs from a CSV file with a header row; columns may be named as in
    ``CSV_COLUMNS``. A bad row fails the file, naming its line."""
    out: list[CallRecord] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = {name.strip().lower(): name for name in reader.fieldnames or []}
        columns: dict[str, str] = {}
        for key, names in CSV_COLUMNS.items():
            found = next((header[n] for n in names if n in header), None)
            if found is None:
                raise ValidationFailed(f"the CSV has no {key} column", field=key)
            columns[key] = found
        dialled = next(
            (header[n] for n in OPTIONAL_CSV_COLUMNS["destination"] if n in header), None
        )
        for line, row in enumerate(reader, start=2):
            try:
                started = datetime.fromisoformat(row[columns["started_at"]].strip())
                duration = int(row[columns["duration_seconds"]].strip())
            except (ValueError, AttributeError):
                raise ValidationFailed(
                    f"line {line}: start must be an ISO time and duration whole seconds",
                    field=f"line {line}",
                ) from None
            out.append(
                CallRecord(
                    phone_number=row[columns["phone_number"]],
                    direction=row[columns["direction"]].strip().lower(),
                    started_at=started,
                    duration_seconds=duration,
                    call_id=row[columns["call_id"]],
                    destination=(row.get(dialled) or None) if dialled else None,
                )
            )
    return out
