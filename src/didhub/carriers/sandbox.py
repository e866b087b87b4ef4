"""The sandbox carrier: the embedded default, realistic and reproducible.

Its inventory is computed, not stored: every block of the geography index
(each US/CA NPA-NXX phonenumbers' geocoder knows, toll-free NPAs, GB and AU
areas and mobile ranges) and, within a block, the line numbers a keyed hash of
(seed, number) marks available (about 60%). Only sales are stored, in
``sandbox_allocations``, so a sold number is never offered again and a released
one can be. It plays an outside system: it opens its own database sessions.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from sqlalchemy import DateTime, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from didhub import clock
from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    CarrierOutcomeUnknown,
    NumberOrderResult,
    SearchQuery,
)
from didhub.db import Base, Database
from didhub.numbering.geography import GeographyIndex, NumberBlock, geography_index

# A stride coprime with 10 visits every line of a 10**k range exactly once, in
# an order that doesn't look like 0000, 0001, 0002 …
_STRIDE = 7919
# At most this many candidate lines per block range: enough for any search,
# and it bounds the work a filter that matches few numbers can cause.
_MAX_LINES_PER_RANGE = 10_000
_AVAILABLE_BELOW = 154  # of 256: about 60% of lines are in stock
_BATCH = 200
_TYPES = ("local", "toll-free", "mobile")
FAULTS = ("fail", "timeout", "unknown", "partial")


class SandboxAllocation(Base):
    __tablename__ = "sandbox_allocations"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16))  # active | released
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass
class _Fault:
    kind: str
    remaining: int
    numbers: frozenset[str] = field(default_factory=frozenset)


def _e164(block: NumberBlock, nsn: str) -> str:
    return f"+{block.calling_code}{nsn}"


def _pattern_fits(pattern: str, prefix: str) -> bool:
    """Whether some number starting with ``prefix`` can match ``pattern``."""
    return all(p in ("X", d) for p, d in zip(pattern, prefix, strict=False))


class SandboxCarrier:
    name = "sandbox"

    def __init__(self, db: Database, seed: str = "didhub") -> None:
        self.db = db
        self.seed = seed.encode()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        initial = os.environ.get("DIDHUB_SANDBOX_FAULT")
        if initial:
            kind, _, times = initial.partition(":")
            self.inject_fault(kind, times=int(times) if times else 1)

    # ------------------------------------------------------------ faults

    def inject_fault(self, kind: str, times: int = 1, numbers: Iterable[str] = ()) -> None:
        """Make the next ``times`` orders fail: ``fail`` (refused, nothing bought),
        ``timeout`` (the request never arrived), ``unknown`` (bought, answer lost),
        ``partial`` (``numbers`` fail, the rest succeed). ``fail`` and ``timeout``
        apply to releases too."""
        if kind not in FAULTS:
            raise ValueError(f"unknown sandbox fault {kind!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(_Fault(kind, times, frozenset(numbers)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------ inventory

    def _in_stock(self, e164: str) -> bool:
        return hashlib.blake2b(self.seed + e164.encode(), digest_size=1).digest()[0] < (
            _AVAILABLE_BELOW
        )

    def _valid(self, block: NumberBlock, nsn: str) -> bool:
        if block.calling_code == 1:
            return True  # every line of a NANP exchange is a valid number
        number = phonenumbers.PhoneNumber(country_code=block.calling_code, national_number=int(nsn))
        return phonenumbers.is_valid_number(number)

    def _describe(self, block: NumberBlock, nsn: str) -> AvailableNumber:
        return AvailableNumber(
            phone_number=_e164(block, nsn),
            country_code=block.country_code,
            phone_number_type=block.number_type,  # type: ignore[arg-type]
            locality=block.locality,
            administrative_area=block.administrative_area,
            rate_center=block.rate_center,
            features=("voice", "sms") if block.number_type != "toll-free" else ("voice",),
        )

    def _blocks(self, index: GeographyIndex, query: SearchQuery) -> Iterator[NumberBlock]:
        key = (query.country_code, query.phone_number_type)
        if query.locality:
            candidates = index.by_locality.get((*key, query.locality.casefold()), [])
        elif query.rate_center:
            candidates = index.by_rate_center.get((*key, query.rate_center.casefold()), [])
        elif query.administrative_area:
            candidates = index.by_admin.get((*key, query.administrative_area.upper()), [])
        elif query.area_code:
            candidates = index.by_area.get((*key, query.area_code), [])
        elif query.pattern and len(query.pattern) >= 3 and "X" not in query.pattern[:3]:
            candidates = index.by_prefix3.get((*key, query.pattern[:3]), [])
        else:
            candidates = index.by_type.get(key, [])
        for block in candidates:
            if query.locality and (block.locality or "").casefold() != query.locality.casefold():
                continue
            if query.rate_center and (
                (block.rate_center or "").casefold() != query.rate_center.casefold()
            ):
                continue
            if query.administrative_area and block.administrative_area != (
                query.administrative_area.upper()
            ):
                continue
            if query.area_code and block.area_code != query.area_code:
                continue
            if query.nxx and block.nxx != query.nxx:
                continue
            if query.pattern and not _pattern_fits(query.pattern, block.prefix):
                continue
            yield block

    def _lines(self, block: NumberBlock, pattern: str | None) -> Iterator[str]:
        """Candidate national numbers of a block, in a stable scrambled order."""
        for head in block.ranges:
            width = block.nsn_length - len(head)
            if pattern is not None and not _pattern_fits(pattern, head):
                continue
            template = (pattern or "")[len(head) : block.nsn_length].ljust(width, "X")
            if len(template) > width:
                continue
            free = [i for i, ch in enumerate(template) if ch == "X"]
            space = 10 ** len(free)
            start = int.from_bytes(
                hashlib.blake2b(self.seed + head.encode(), digest_size=4).digest(), "big"
            )
            for i in range(min(space, _MAX_LINES_PER_RANGE)):
                value = str((start + i * _STRIDE) % space).zfill(len(free)) if free else ""
                chars = list(template)
                for pos, digit in zip(free, value, strict=True):
                    chars[pos] = digit
                nsn = head + "".join(chars)
                if block.owns(nsn):
                    yield nsn

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        index = geography_index()
        batch: list[AvailableNumber] = []
        for block in self._blocks(index, query):
            for nsn in self._lines(block, query.pattern):
                e164 = _e164(block, nsn)
                if e164 in exclude or not self._in_stock(e164) or not self._valid(block, nsn):
                    continue
                batch.append(self._describe(block, nsn))
                if len(batch) >= _BATCH:
                    yield from self._unsold(batch)
                    batch = []
        yield from self._unsold(batch)

    def _unsold(self, batch: list[AvailableNumber]) -> Iterator[AvailableNumber]:
        if not batch:
            return
        with self.db.session() as session:
            sold = set(
                session.scalars(
                    select(SandboxAllocation.e164).where(
                        SandboxAllocation.e164.in_([n.phone_number for n in batch]),
                        SandboxAllocation.status == "active",
                    )
                )
            )
        yield from (n for n in batch if n.phone_number not in sold)

    def _stocked(self, e164: str) -> tuple[NumberBlock, str] | None:
        """The block of a number in stock (sold or not), else None."""
        try:
            parsed = phonenumbers.parse(e164)
        except phonenumbers.NumberParseException:
            return None
        region = phonenumbers.region_code_for_number(parsed)
        nsn = phonenumbers.national_significant_number(parsed)
        index = geography_index()
        for kind in _TYPES:
            block = index.block_for(region or "", kind, nsn)
            if block is not None and self._in_stock(e164) and self._valid(block, nsn):
                return block, nsn
        return None

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        found = self._stocked(phone_number)
        if found is None:
            return None
        block, nsn = found
        with self.db.session() as session:
            row = session.get(SandboxAllocation, phone_number)
            if row is not None and row.status == "active":
                return None
        return self._describe(block, nsn)

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """No-op: didhub's own holds table is the sandbox's reservation."""

    # ------------------------------------------------------------ orders

    def _allocate(self, e164: str, order_id: str) -> NumberOrderResult:
        if self._stocked(e164) is None:
            return NumberOrderResult(e164, "failed", "number not in this carrier's inventory")
        try:
            with self.db.session() as session:
                row = session.get(SandboxAllocation, e164)
                if row is None:
                    session.add(
                        SandboxAllocation(
                            e164=e164, order_id=order_id, status="active", allocated_at=clock.now()
                        )
                    )
                    session.flush()
                else:
                    moved = session.execute(
                        update(SandboxAllocation)
                        .where(
                            SandboxAllocation.e164 == e164, SandboxAllocation.status == "released"
                        )
                        .values(order_id=order_id, status="active", allocated_at=clock.now())
                    )
                    if getattr(moved, "rowcount", 0) != 1:
                        return NumberOrderResult(e164, "failed", "number not available")
        except IntegrityError:
            return NumberOrderResult(e164, "failed", "number not available")
        return NumberOrderResult(e164, "active")

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        fault = self._take_fault(("fail", "timeout", "unknown", "partial"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: order rejected (injected fault)")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: request timed out (injected fault)")
        results = []
        for e164 in phone_numbers:
            if fault is not None and fault.kind == "partial" and e164 in fault.numbers:
                results.append(NumberOrderResult(e164, "failed", "sandbox: injected failure"))
            else:
                results.append(self._allocate(e164, order_id))
        if fault is not None and fault.kind == "unknown":
            raise CarrierOutcomeUnknown("sandbox: answer lost (injected fault)")
        if not any(r.status == "active" for r in results):
            raise CarrierFailure("; ".join(f"{r.phone_number}: {r.reason}" for r in results))
        return results

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        with self.db.session() as session:
            rows = session.scalars(
                select(SandboxAllocation).where(SandboxAllocation.order_id == order_id)
            ).all()
            return [
                NumberOrderResult(r.e164, "active" if r.status == "active" else "failed")
                for r in rows
            ]

    def release(self, phone_number: str) -> None:
        fault = self._take_fault(("fail", "timeout"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: release rejected (injected fault)")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: request timed out (injected fault)")
        with self.db.session() as session:
            session.execute(
                update(SandboxAllocation)
                .where(SandboxAllocation.e164 == phone_number)
                .values(status="released")
            )
