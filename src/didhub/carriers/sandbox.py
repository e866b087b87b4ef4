"""The sandbox carrier: a realistic, reproducible number inventory with nothing
downloaded, plus fault injection for tests.

Inventory: every block of the geography index (NANP exchanges, US toll-free
NPA-NXXs, GB/AU local areas and mobile ranges). A number is in stock iff
``blake2b(seed + E.164)`` says so (about 60% of lines) and phonenumbers deems it
valid for its type. Lines of a block are visited in a scrambled but fixed order
(``line = (start + i * 7919) % 10**width``) so results look like real stock.

State: the ``sandbox_allocations`` table, written through the sandbox's *own*
sessions: it plays an outside system, so it never joins didhub's transactions.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from didhub import clock
from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    E911Validation,
    NumberOrderResult,
    NumberType,
    SearchQuery,
)
from didhub.carriers.models import SandboxAllocation
from didhub.carriers.sandbox_porting import SandboxPorting
from didhub.config import NUMBER_AGING_DAYS
from didhub.db import Database
from didhub.numbering import (
    NANP_COUNTRIES,
    NumberBlock,
    country_index,
    rate_center_key,
    rate_center_keys,
)
from didhub.postal.normalize import house_number, normalize

FAULT_KINDS = ("fail", "timeout", "unknown", "partial")
_STEP = 7919  # prime, so coprime with every power of ten
_IN_STOCK_PER_MILLE = 600
_DEAD_RANGE_PROBES = 10  # invalid numbers in a row (none valid) that abandon a range
_FIRST_BATCH = 40
_BATCH = 200
_CNAM_CHARS = re.compile(r"[A-Za-z0-9 ,.&'-]+")

_TYPES: dict[str, frozenset[int]] = {
    "local": frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
    "toll-free": frozenset({PhoneNumberType.TOLL_FREE}),
    "mobile": frozenset({PhoneNumberType.MOBILE}),
}


@dataclass
class _Fault:
    kind: str
    remaining: int
    numbers: frozenset[str] | None


def _parse_env_fault(value: str) -> tuple[str, int] | None:
    value = value.strip()
    if not value:
        return None
    kind, _, times = value.partition(":")
    kind = kind.strip().lower()
    if kind not in FAULT_KINDS:
        raise ValueError(f"DIDHUB_SANDBOX_FAULT: unknown fault kind {kind!r}")
    return kind, int(times) if times.strip() else 1


class SandboxCarrier:
    name = "sandbox"

    def __init__(
        self,
        db: Database,
        seed: str = "didhub",
        port_step_seconds: float = 0.0,
        aging_days: int = NUMBER_AGING_DAYS,
    ) -> None:
        """``aging_days``: how long a released number rests before it is
        offered again (``DIDHUB_NUMBER_AGING_DAYS``)."""
        self.db = db
        self.seed = seed
        self.aging = timedelta(days=aging_days)
        # Porting in and out (carriers/sandbox_porting.py); ``porting_of`` finds it.
        self.porting = SandboxPorting(db, port_step_seconds)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.e911: dict[str, E911AddressData] = {}  # number -> its E911 address, in memory
        env = _parse_env_fault(os.environ.get("DIDHUB_SANDBOX_FAULT", ""))
        if env is not None:
            self.inject_fault(env[0], times=env[1])

    # -- fault injection ---------------------------------------------------

    def inject_fault(self, kind: str, times: int = 1, numbers: Iterable[str] | None = None) -> None:
        """Make the next ``times`` order() calls misbehave ("fail" and "timeout"
        also hit release(); "fail", "timeout" and "unknown" also set_cnam()).
        ``fail``: CarrierFailure, nothing allocated.
        ``timeout``: CarrierOutcomeUnknown, nothing allocated (the request never
        arrived). ``unknown``: allocate, then CarrierOutcomeUnknown (the answer was
        lost). ``partial``: ``numbers`` (default: the first number of the order)
        fail, the others are ordered normally."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(
                _Fault(kind, times, frozenset(numbers) if numbers is not None else None)
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, kinds: Sequence[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- inventory -----------------------------------------------------------

    def _hash(self, text: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}:{text}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def in_stock(self, e164: str) -> bool:
        """Whether the seed puts this number in the carrier's stock (ignores validity
        and allocations)."""
        return self._hash(e164) % 1000 < _IN_STOCK_PER_MILLE

    @staticmethod
    def _valid(block: NumberBlock, nsn: str) -> bool:
        number = phonenumbers.PhoneNumber(country_code=block.calling_code, national_number=int(nsn))
        return phonenumbers.number_type(number) in _TYPES[block.number_type]

    @staticmethod
    def _describe(block: NumberBlock, e164: str) -> AvailableNumber:
        kind: NumberType = (
            "toll-free"
            if block.number_type == "toll-free"
            else "mobile"
            if block.number_type == "mobile"
            else "local"
        )
        return AvailableNumber(
            phone_number=e164,
            country_code=block.country_code,
            phone_number_type=kind,
            locality=block.locality,
            administrative_area=block.administrative_area,
            rate_center=block.rate_center,
            features=("voice",) if kind == "toll-free" else ("voice", "sms"),
        )

    def _blocks(self, query: SearchQuery, pattern: str | None) -> Iterator[NumberBlock]:
        """Blocks that can satisfy every block-level filter, in a stable order."""
        country = query.country_code.upper()
        kind = query.phone_number_type
        if country in NANP_COUNTRIES and kind == "mobile":
            return
        if country not in NANP_COUNTRIES and query.nxx:
            return
        index = country_index(country)
        key = (country, kind)
        area = query.area_code
        if area and country not in NANP_COUNTRIES:
            area = area.lstrip("0")
        admin = query.administrative_area.upper() if query.administrative_area else None
        locality = query.locality.casefold() if query.locality else None
        rate_center = rate_center_key(query.rate_center) if query.rate_center else None
        candidates: list[list[NumberBlock]] = [index.by_type.get(key, [])]
        if admin:
            candidates.append(index.by_admin.get((*key, admin), []))
        if locality:
            candidates.append(index.by_locality.get((*key, locality), []))
        if rate_center:
            candidates.append(index.by_rate_center.get((*key, rate_center), []))
        if area:
            candidates.append(index.by_area.get((*key, area), []))
        if pattern and len(pattern) >= 3 and "X" not in pattern[:3]:
            candidates.append(index.by_prefix3.get((*key, pattern[:3]), []))
        smallest = min(candidates, key=len)
        fixed = _fixed_positions(pattern)
        for block in smallest:
            if admin and (block.administrative_area or "").upper() != admin:
                continue
            if locality and (block.locality or "").casefold() != locality:
                continue
            if rate_center and rate_center not in rate_center_keys(block.rate_center or ""):
                continue
            if area and block.area_code != area:
                continue
            if query.nxx and block.nxx != query.nxx:
                continue
            if pattern and not _compatible(block.prefix, pattern, fixed, block.nsn_length):
                continue
            yield block

    def _candidates(
        self, query: SearchQuery, exclude: frozenset[str]
    ) -> Iterator[tuple[str, NumberBlock]]:
        pattern = query.pattern.upper() if query.pattern else None
        if pattern and query.country_code.upper() not in NANP_COUNTRIES:
            pattern = pattern.lstrip("0") or None  # "020…" → NSN "20…"
        fixed = _fixed_positions(pattern)
        for block in self._blocks(query, pattern):
            cc = f"+{block.calling_code}"
            for head in block.ranges:
                if pattern and not _compatible(head, pattern, fixed, block.nsn_length):
                    continue
                width = block.nsn_length - len(head)
                tail = (pattern or "")[len(head) :].ljust(width, "X")
                free = [i for i, ch in enumerate(tail) if ch == "X"]
                total = 10 ** len(free)
                start = self._hash(head) % total
                template = list(tail)
                seen_valid = False
                invalid = 0
                for i in range(total):
                    value = (start + i * _STEP) % total
                    if free:
                        digits = str(value).zfill(len(free))
                        for pos, digit in zip(free, digits, strict=True):
                            template[pos] = digit
                    nsn = head + "".join(template)
                    e164 = cc + nsn
                    if e164 in exclude or not self.in_stock(e164):
                        continue
                    if not self._valid(block, nsn):
                        invalid += 1
                        if not seen_valid and invalid >= _DEAD_RANGE_PROBES:
                            break
                        continue
                    seen_valid = True
                    yield e164, block

    def _allocated(self, numbers: Sequence[str]) -> set[str]:
        if not numbers:
            return set()
        with self.db.session() as s:
            rows = s.scalars(
                select(SandboxAllocation.e164).where(
                    SandboxAllocation.e164.in_(numbers), ~self._sellable_again()
                )
            )
            return set(rows)

    def _sellable_again(self) -> ColumnElement[bool]:
        """SQL: a released allocation whose number has aged (may be sold again)."""
        return and_(
            SandboxAllocation.status == "released",
            or_(
                SandboxAllocation.released_at.is_(None),
                SandboxAllocation.released_at <= clock.now() - self.aging,
            ),
        )

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        batch: list[tuple[str, NumberBlock]] = []
        size = _FIRST_BATCH
        for item in self._candidates(query, exclude):
            batch.append(item)
            if len(batch) >= size:
                yield from self._flush(batch)
                batch = []
                size = _BATCH
        yield from self._flush(batch)

    def _flush(self, batch: list[tuple[str, NumberBlock]]) -> Iterator[AvailableNumber]:
        # The allocation check finishes (session closed) before anything is yielded.
        taken = self._allocated([e164 for e164, _ in batch])
        for e164, block in batch:
            if e164 not in taken:
                yield self._describe(block, e164)

    def _block_of(self, e164: str) -> NumberBlock | None:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return None
        region = phonenumbers.region_code_for_number(number)
        if region is None:
            return None
        kind = phonenumbers.number_type(number)
        nsn = str(number.national_number)
        for type_name, accepted in _TYPES.items():
            if kind in accepted:
                block = country_index(region).block_for(region, type_name, nsn)
                if (
                    block is not None
                    and phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    == e164
                ):
                    return block
        return None

    def _available_block(self, e164: str) -> NumberBlock | None:
        """The block of an in-stock number (allocations aside), else None."""
        block = self._block_of(e164)
        if block is None or not self.in_stock(e164):
            return None
        return block

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        block = self._available_block(phone_number)
        if block is None or self._allocated([phone_number]):
            return None
        return self._describe(block, phone_number)

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """No-op. The sandbox has no carrier-side reservations (like most real
        carriers); didhub's own holds table keeps held numbers out of other
        buyers' searches, and order() re-checks availability atomically."""
        return None

    # -- ordering ------------------------------------------------------------

    def _allocate(self, order_id: str, e164: str) -> bool:
        if self._available_block(e164) is None:
            return False
        now = clock.now()
        # Re-activate a released row; the WHERE makes concurrent attempts race-safe.
        with self.db.session() as s:
            result = s.execute(
                update(SandboxAllocation)
                .where(SandboxAllocation.e164 == e164, self._sellable_again())
                .values(status="active", order_id=order_id, allocated_at=now, released_at=None)
            )
            if getattr(result, "rowcount", 0) == 1:
                return True
        # First sale: the primary key lets exactly one concurrent insert win.
        try:
            with self.db.session() as s:
                s.add(
                    SandboxAllocation(
                        e164=e164, order_id=order_id, status="active", allocated_at=now
                    )
                )
        except IntegrityError:
            return False
        return True

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        fault = self._take_fault(FAULT_KINDS)
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: injected failure, nothing was ordered")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: injected timeout (the request never arrived)")
        failing: frozenset[str] = frozenset()
        if fault is not None and fault.kind == "partial":
            failing = (
                fault.numbers if fault.numbers is not None else frozenset(list(phone_numbers)[:1])
            )
        results: list[NumberOrderResult] = []
        for e164 in phone_numbers:
            if e164 in failing:
                results.append(NumberOrderResult(e164, "failed", "injected partial failure"))
            elif self._allocate(order_id, e164):
                results.append(NumberOrderResult(e164, "active"))
            else:
                results.append(NumberOrderResult(e164, "failed", "number not available"))
        if fault is not None and fault.kind == "unknown":
            raise CarrierOutcomeUnknown("sandbox: injected lost response (the order was processed)")
        if not any(r.status == "active" for r in results):
            reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in results) or "no numbers"
            raise CarrierFailure(f"sandbox: nothing could be ordered ({reasons})")
        return results

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        """Numbers allocated under ``order_id``: ``active``, or ``failed`` with
        reason ``"released"`` once given back. Empty if the order never arrived."""
        with self.db.session() as s:
            rows = s.execute(
                select(SandboxAllocation.e164, SandboxAllocation.status)
                .where(SandboxAllocation.order_id == order_id)
                .order_by(SandboxAllocation.e164)
            ).all()
        return [
            NumberOrderResult(e164, "active")
            if status == "active"
            else NumberOrderResult(e164, "failed", "released")
            for e164, status in rows
        ]

    def owned_numbers(self) -> Iterator[str]:
        """The numbers this account holds at the sandbox."""
        with self.db.session() as s:
            held = list(
                s.scalars(
                    select(SandboxAllocation.e164)
                    .where(SandboxAllocation.status == "active")
                    .order_by(SandboxAllocation.e164)
                )
            )
        yield from held

    def holds(self, phone_number: str) -> bool:
        """Whether the number is allocated to this account now."""
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            return row is not None and row.status == "active"

    def lose(self, phone_number: str) -> None:
        """Test hook: the carrier stops holding a number for us (ported away,
        reclaimed) without our asking."""
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            if row is not None:
                row.status, row.released_at = "released", clock.now()

    def release(self, phone_number: str) -> None:
        """Give a number back. Idempotent for numbers already released; raises
        CarrierFailure for a number this account never held."""
        fault = self._take_fault(("fail", "timeout"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: injected failure, nothing was released")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: injected timeout (the request never arrived)")
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            if row is None:
                raise CarrierFailure(f"sandbox: {phone_number} is not on this account")
            if row.status != "released":
                row.status, row.released_at = "released", clock.now()

    # -- CNAM ----------------------------------------------------------------

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        """Store the caller name on the number's allocation. Faults as for
        order(): ``fail`` refuses (nothing stored), ``timeout`` never arrives
        (nothing stored), ``unknown`` stores it and loses the answer. Refuses,
        like real CNAM databases, names over 15 characters or with other than
        letters, digits, space and , . & ' -"""
        fault = self._take_fault(("fail", "timeout", "unknown"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: injected failure, the CNAM listing was not changed")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: injected timeout (the request never arrived)")
        if name is not None and (len(name) > 15 or not _CNAM_CHARS.fullmatch(name)):
            raise CarrierFailure(f"sandbox: CNAM {name!r} rejected by the CNAM database")
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            if row is None or row.status != "active":
                raise CarrierFailure(f"sandbox: {phone_number} is not on this account")
            row.cnam = name
        if fault is not None and fault.kind == "unknown":
            raise CarrierOutcomeUnknown("sandbox: injected lost response (the listing was stored)")

    def cnam_of(self, phone_number: str) -> str | None:
        """The listing the sandbox holds (tests and the CLI look at it)."""
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            return row.cnam if row is not None else None

    # -- E911 ------------------------------------------------------------------
    # The sandbox's 911 database, with rules a test can rely on:
    # * a house number of 0, above 99999, or with no digits is "not found";
    # * the standard form is didhub's own USPS normalization plus a ZIP+4
    #   (a hash of street and ZIP when missing); an address that differs from
    #   its standard form gets it back as a suggestion;
    # * provision_e911 takes the "fail", "timeout" and "unknown" faults
    #   ("unknown": the address is set, then the answer is lost).

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        number = house_number(address.street)
        if number is None or number == 0 or number > 99999:
            return E911Validation(
                valid=False,
                reason=f"sandbox: house number of {address.street!r} not found in the 911 database",
            )
        standard = normalize(
            {
                "street": address.street,
                "unit": address.unit,
                "city": address.city,
                "state": address.state,
                "postal_code": address.postal_code,
                "country": address.country,
                "caller_name": address.caller_name,
            }
        )
        postal_code = standard.postal_code
        if len(postal_code) == 5:
            plus4 = self._hash(f"zip4:{standard.street}:{postal_code}") % 9999 + 1
            postal_code = f"{postal_code}-{plus4:04d}"
        suggested = E911AddressData(
            street=standard.street,
            unit=standard.unit,
            city=standard.city,
            state=standard.state,
            postal_code=postal_code,
            country=standard.country,
            caller_name=standard.caller_name,
        )
        reference = f"sbx911_{self._hash(repr(suggested)):016x}"
        if suggested != address:
            return E911Validation(valid=True, suggestion=suggested, reference=reference)
        return E911Validation(valid=True, reference=reference)

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        fault = self._take_fault(("fail", "timeout", "unknown"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: injected failure, the E911 address was not set")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: injected timeout (the request never arrived)")
        with self._lock:
            self.e911[phone_number] = address
        if fault is not None and fault.kind == "unknown":
            raise CarrierOutcomeUnknown("sandbox: injected lost response (the address was set)")

    def remove_e911(self, phone_number: str) -> None:
        fault = self._take_fault(("fail", "timeout"))
        if fault is not None and fault.kind == "fail":
            raise CarrierFailure("sandbox: injected failure, the E911 address was not removed")
        if fault is not None and fault.kind == "timeout":
            raise CarrierOutcomeUnknown("sandbox: injected timeout (the request never arrived)")
        with self._lock:
            self.e911.pop(phone_number, None)


def _fixed_positions(pattern: str | None) -> tuple[tuple[int, str], ...]:
    return tuple((i, ch) for i, ch in enumerate(pattern or "") if ch != "X")


def _compatible(
    prefix: str, pattern: str, fixed: tuple[tuple[int, str], ...], nsn_length: int
) -> bool:
    """Whether some number starting with ``prefix`` can match ``pattern``
    (``fixed`` = its non-wildcard positions)."""
    if len(pattern) > nsn_length:
        return False
    size = len(prefix)
    for pos, digit in fixed:
        if pos >= size:
            break
        if prefix[pos] != digit:
            return False
    return True
