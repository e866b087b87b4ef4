"""The outbound rate table: what a minute to a destination costs, by the
dialled number's longest matching prefix (E.164 digits, no +), imported from a
carrier-style rate deck (CSV). A destination no prefix covers is rated at
``DIDHUB_OUTBOUND_DEFAULT_RATE``.

An import replaces the whole table in one transaction (a rate deck is a
full set), so a half-read file never leaves half a table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.billing.models import OutboundRate
from didhub.errors import ValidationFailed

_PREFIX = re.compile(r"\d{1,15}")
MAX_ROWS = 200_000
CSV_COLUMNS = {
    "prefix": ("prefix", "dial_code", "code", "destination_prefix"),
    "rate": ("rate", "per_minute", "price", "rate_per_minute"),
}


@dataclass(frozen=True)
class Rate:
    prefix: str
    rate: Decimal
    description: str = ""


class RateTable:
    """Prefix → rate, answering the longest prefix of a number."""

    def __init__(self, rates: Iterable[tuple[str, Decimal]], default: Decimal) -> None:
        self._rates = dict(rates)
        self._longest = max((len(p) for p in self._rates), default=0)
        self.default = default

    @classmethod
    def load(cls, session: Session, default: Decimal) -> RateTable:
        rows = session.execute(select(OutboundRate.prefix, OutboundRate.rate))
        return cls(((prefix, rate) for prefix, rate in rows), default)

    def match(self, e164: str) -> tuple[str | None, Decimal]:
        """``(prefix, rate)`` for a dialled E.164 number; ``(None, default)``
        when no prefix covers it."""
        digits = e164.lstrip("+")
        for length in range(min(len(digits), self._longest), 0, -1):
            found = self._rates.get(digits[:length])
            if found is not None:
                return digits[:length], found
        return None, self.default

    def rate_for(self, e164: str) -> Decimal:
        return self.match(e164)[1]


def _rate(value: str, field: str) -> Decimal:
    try:
        rate = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise ValidationFailed(f"{value!r} is not a rate (e.g. 0.0125)", field=field) from None
    if not rate.is_finite() or rate < 0 or rate > 100:
        raise ValidationFailed("a rate is 0 to 100 a minute", field=field)
    if rate != rate.quantize(Decimal("0.0001")):
        raise ValidationFailed("a rate has at most 4 decimal places", field=field)
    return rate


def validate(rows: Sequence[Rate], prefix: str = "rates") -> list[Rate]:
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"at most {MAX_ROWS} rates", field=prefix)
    seen: set[str] = set()
    clean = []
    for i, row in enumerate(rows):
        where = f"{prefix}[{i}]"
        digits = row.prefix.strip().lstrip("+")
        if not _PREFIX.fullmatch(digits):
            raise ValidationFailed(
                "a prefix is 1-15 digits of E.164 (e.g. 44 or 1876)", field=f"{where}.prefix"
            )
        if digits in seen:
            raise ValidationFailed(f"prefix {digits} is given twice", field=f"{where}.prefix")
        seen.add(digits)
        rate = _rate(str(row.rate), f"{where}.rate")
        description = row.description.strip()[:100]
        clean.append(Rate(digits, rate, description))
    return clean


def replace_rates(session: Session, rows: Sequence[Rate]) -> int:
    """Replace the rate table with ``rows`` (validated first); answers how many."""
    clean = validate(rows)
    session.execute(delete(OutboundRate))
    now = clock.now()
    session.add_all(
        OutboundRate(prefix=r.prefix, rate=r.rate, description=r.description, updated_at=now)
        for r in clean
    )
    session.flush()
    return len(clean)


def list_rates(session: Session) -> list[OutboundRate]:
    return list(session.scalars(select(OutboundRate).order_by(OutboundRate.prefix)))


def read_csv(text: str) -> list[Rate]:
    """A rate deck with a header row: a prefix column and a rate column (names
    as in ``CSV_COLUMNS``), optionally ``description``. A bad row fails the
    file, naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    header = {name.strip().lower(): name for name in reader.fieldnames or []}
    columns: dict[str, str] = {}
    for key, names in CSV_COLUMNS.items():
        found = next((header[n] for n in names if n in header), None)
        if found is None:
            raise ValidationFailed(
                f"the CSV has no {key} column (one of: {', '.join(names)})", field=key
            )
        columns[key] = found
    described = header.get("description") or header.get("destination")
    out: list[Rate] = []
    for line, row in enumerate(reader, start=2):
        prefix = (row.get(columns["prefix"]) or "").strip().lstrip("+")
        if not _PREFIX.fullmatch(prefix):
            raise ValidationFailed(
                f"line {line}: {prefix!r} is not a prefix (1-15 digits)", field=f"line {line}"
            )
        rate = _rate(row.get(columns["rate"]) or "", f"line {line}")
        out.append(Rate(prefix, rate, (row.get(described) or "") if described else ""))
    return out
