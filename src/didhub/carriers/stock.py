"""Platform stock: blocks of numbers the platform owns, sold from its own table.

* ``didhub stock import FILE.csv`` (:func:`import_csv`) loads rows ``number,
  rate_center, city, state, cost`` into ``stock_numbers``. Every row is checked
  first; one bad row refuses the whole file (each problem named by line and
  column), so a file is never half imported.
* :class:`StockCarrier` implements the ``Carrier`` protocol over that table:
  search with the usual filters, ``order`` marks numbers sold (one conditional
  UPDATE per number, so two buyers can't both get one), ``release`` puts a
  number back in stock. CNAM and E911 are refused with a reason: the platform
  is not a carrier of record for them.

Searches stay fast over millions of rows because each filter has an index
whose trailing columns are ``(npa, nxx, e164)``: for a +1 number that order *is*
the E.164 order, so the query orders by ``npa, nxx, e164`` and reads a page
straight from the index, without sorting the matches.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import phonenumbers
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from didhub import clock
from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    NumberOrderResult,
    NumberType,
    SearchQuery,
    WithoutCnamAndE911,
)
from didhub.carriers.http import fixed_prefix, matches_pattern
from didhub.carriers.models import AVAILABLE, SOLD, StockNumber
from didhub.config import NUMBER_AGING_DAYS
from didhub.db import Database, table_of
from didhub.errors import ValidationFailed
from didhub.numbering import NANP_COUNTRIES, TOLL_FREE_NPAS, rate_center_key, rate_center_keys
from didhub.postal.normalize import STATE_CODES

COLUMNS = ("number", "rate_center", "city", "state", "cost")
MAX_ERRORS_SHOWN = 20
_BATCH = 1000
T = TypeVar("T")
_TEXT = re.compile(r"^[A-Z0-9][A-Z0-9 .'&/-]*$")


# -- import ------------------------------------------------------------------------


@dataclass
class ImportReport:
    imported: int = 0
    numbers: list[str] = field(default_factory=list)


def _rate_center_matches(name: str) -> ColumnElement[bool]:
    """A row whose rate center is ``name`` (numbering.rate_center_keys): the
    full name or the LERG abbreviation, in whichever the CSV gave, without
    case or spaces."""
    stored = func.upper(StockNumber.rate_center)
    full = func.replace(stored, " ", "")
    abbreviated = func.replace(func.rtrim(func.substr(stored, 1, 10)), " ", "")
    keys = sorted(rate_center_keys(name))
    key = rate_center_key(name)
    return or_(
        full.in_(keys),
        abbreviated == key,
        # A stored abbreviation (10 characters, cut) begins the name asked for
        # without spaces: LITTLE ROC is LITTLEROCK's.
        and_(
            func.length(StockNumber.rate_center) == 10,
            literal(key).like(full.op("||")(literal("%"))),
        ),
    )


def _words(value: str) -> str:
    return " ".join(value.split()).upper()


def _parse_row(row: dict[str, str], line: int, errors: list[str]) -> dict[str, object] | None:
    def bad(column: str, message: str) -> None:
        errors.append(f"line {line}, column {column}: {message}")

    start = len(errors)
    raw = (row.get("number") or "").strip()
    e164 = country = ""
    try:
        parsed = phonenumbers.parse(raw, "US")
        ok = phonenumbers.is_valid_number(parsed) and parsed.country_code == 1
        country = phonenumbers.region_code_for_number(parsed) or ""
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        ok = False
    if not ok or country not in NANP_COUNTRIES:
        bad("number", f"{raw!r} is not a valid US or Canadian number")
    rate_center = _words(row.get("rate_center") or "")
    city = _words(row.get("city") or "")
    state = _words(row.get("state") or "")
    for column, value in (("rate_center", rate_center), ("city", city)):
        if not value:
            bad(column, "is required")
        elif len(value) > 64 or not _TEXT.match(value):
            bad(column, f"{value!r} is not a {column.replace('_', ' ')} name")
    if state not in STATE_CODES and not (country == "CA" and len(state) == 2 and state.isalpha()):
        bad("state", f"{state!r} is not a two-letter state code")
    cost_text = (row.get("cost") or "").strip().lstrip("$")
    cost = Decimal(0)
    try:
        cost = Decimal(cost_text)
        if not cost.is_finite() or cost < 0:
            bad("cost", f"{cost_text!r} must be an amount of zero or more")
        elif cost != cost.quantize(Decimal("0.0001")):
            bad("cost", f"{cost_text!r} has more than 4 decimal places")
    except InvalidOperation:
        bad("cost", f"{cost_text!r} is not an amount")
    if len(errors) > start:
        return None
    nsn = e164[2:]
    return {
        "e164": e164,
        "country": country,
        "number_type": "toll-free" if nsn[:3] in TOLL_FREE_NPAS else "local",
        "npa": nsn[:3],
        "nxx": nsn[3:6],
        "rate_center": rate_center,
        "city": city,
        "state": state,
        "cost": cost,
        "status": AVAILABLE,
    }


def import_csv(db: Database, text: str) -> ImportReport:
    """Load a CSV of numbers into stock, all or nothing. Raises ValidationFailed
    listing every bad row by line and column (the first
    ``MAX_ERRORS_SHOWN``), a number twice in the file, or a number already in
    stock."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(
            f"line 1: the header needs the columns {', '.join(COLUMNS)} "
            f"(missing: {', '.join(missing)})",
            field="file",
        )
    reader.fieldnames = header
    errors: list[str] = []
    rows: list[dict[str, object]] = []
    first_line: dict[str, int] = {}
    line = 1
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue  # a blank line
        if None in record:
            errors.append(f"line {line}: more columns than the header's {len(header)}")
            continue
        row = _parse_row(record, line, errors)
        if row is None:
            continue
        e164 = str(row["e164"])
        if e164 in first_line:
            errors.append(f"line {line}, column number: {e164} is also on line {first_line[e164]}")
            continue
        first_line[e164] = line
        rows.append(row)
    if not rows and not errors:
        raise ValidationFailed("the file has no numbers", field="file")
    with db.session() as session:
        for chunk in _chunks(list(first_line), _BATCH):
            for e164 in session.scalars(
                select(StockNumber.e164).where(StockNumber.e164.in_(chunk))
            ):
                errors.append(f"line {first_line[e164]}, column number: {e164} is already in stock")
        if errors:
            errors.sort(key=_line_of)
            shown = errors[:MAX_ERRORS_SHOWN]
            more = len(errors) - len(shown)
            raise ValidationFailed(
                "nothing imported: "
                + "; ".join(shown)
                + (f"; and {more} more problem{'s' * (more > 1)}" if more else ""),
                field="file",
            )
        now = clock.now()
        for chunk_rows in _chunks(rows, _BATCH):
            # Core inserts of plain rows: a million-number file is not a million objects.
            session.execute(
                insert(StockNumber),
                [
                    {**row, "imported_at": now, "order_id": None, "sold_at": None}
                    for row in chunk_rows
                ],
            )
    analyze(db, StockNumber.__tablename__)
    return ImportReport(imported=len(rows), numbers=list(first_line))


def analyze(db: Database, table: str) -> None:
    """Refresh the planner's statistics of ``table`` after a bulk load: without
    them a search at a million rows costs 10-25 times as much
    (docs/performance.md)."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()


def _line_of(message: str) -> int:
    match = re.match(r"line (\d+)", message)
    return int(match.group(1)) if match else 0


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the carrier ----------------------------------------------------------------------

_Batch = Select[str, str, str, str, str, str]  # a batch of _SEARCHED
_SEARCHED = (
    StockNumber.e164,
    StockNumber.country,
    StockNumber.number_type,
    StockNumber.city,
    StockNumber.state,
    StockNumber.rate_center,
)


_STOCK = table_of(StockNumber)
# A look-up reads what a search does, after the two columns it checks.
_LOOKUP = select(StockNumber.status, StockNumber.released_at, *_SEARCHED).where(
    StockNumber.e164 == bindparam("e164")
)

# Built once (docs/performance.md, "Built once"): sold unless sold already or
# released less than the aging time ago (``aged``: now minus it).
_SELL = (
    update(_STOCK)
    .where(
        _STOCK.c.e164 == bindparam("number"),
        _STOCK.c.status == AVAILABLE,
        or_(_STOCK.c.released_at.is_(None), _STOCK.c.released_at <= bindparam("aged")),
    )
    .values(status=SOLD, order_id=bindparam("order"), sold_at=bindparam("now"), released_at=None)
)

_SOLD_TO = select(_STOCK.c.status, _STOCK.c.order_id).where(_STOCK.c.e164 == bindparam("e164"))


def _available(
    e164: str, country: str, number_type: str, city: str, state: str, rate_center: str
) -> AvailableNumber:
    kind: NumberType = "toll-free" if number_type == "toll-free" else "local"
    return AvailableNumber(
        phone_number=e164,
        country_code=country,
        phone_number_type=kind,
        locality=city.title(),
        administrative_area=state,
        rate_center=rate_center,
        features=("voice",) if kind == "toll-free" else ("voice", "sms"),
    )


class StockCarrier(WithoutCnamAndE911):
    name = "stock"

    def __init__(
        self, db: Database, page_size: int = 500, aging_days: int = NUMBER_AGING_DAYS
    ) -> None:
        """``aging_days``: how long a released number rests before it is
        offered again (``DIDHUB_NUMBER_AGING_DAYS``)."""
        self.db = db
        self.page_size = page_size
        self.aging = timedelta(days=aging_days)

    def _aged(self) -> ColumnElement[bool]:
        """SQL: not a released number still aging."""
        return or_(
            StockNumber.released_at.is_(None), StockNumber.released_at <= clock.now() - self.aging
        )

    def _aging(self, released_at: datetime | None) -> bool:
        return released_at is not None and released_at > clock.now() - self.aging

    def _where(self, query: SearchQuery) -> list[ColumnElement[bool]] | None:
        """The search's filters (None: this stock has no such numbers)."""
        country = query.country_code.upper()
        if country not in NANP_COUNTRIES or query.phone_number_type == "mobile":
            return None
        where = [
            StockNumber.status == AVAILABLE,
            self._aged(),
            StockNumber.country == country,
            StockNumber.number_type == query.phone_number_type,
        ]
        prefix = fixed_prefix((query.pattern or "").upper() or None)
        npa = query.area_code or (prefix[:3] if len(prefix) >= 3 else None)
        nxx = query.nxx or (prefix[3:6] if len(prefix) >= 6 else None)
        if npa:
            where.append(StockNumber.npa == npa)
        if nxx:
            where.append(StockNumber.nxx == nxx)
        if prefix:
            # The pattern's fixed digits as a range of the primary key.
            where.append(StockNumber.e164 >= f"+1{prefix}")
            where.append(StockNumber.e164 < f"+1{prefix}\x7f")
        if query.administrative_area:
            where.append(StockNumber.state == query.administrative_area.upper())
        if query.rate_center:
            where.append(_rate_center_matches(query.rate_center))
        if query.locality:
            where.append(StockNumber.city == _words(query.locality))
        return where

    @staticmethod
    def _batch(where: list[ColumnElement[bool]], after: str, batch: int) -> _Batch:
        # Columns, not ORM objects: the rows go straight to AvailableNumber.
        return (
            select(*_SEARCHED)
            .where(*where, StockNumber.e164 > after)
            # (npa, nxx, e164) is the E.164 order, and the indexes' own.
            .order_by(StockNumber.npa, StockNumber.nxx, StockNumber.e164)
            .limit(batch)
        )

    def first_batch(self, query: SearchQuery) -> _Batch | None:
        """The statement of a search's first batch (bench/bench_stock.py times
        it on its own beside the API)."""
        where = self._where(query)
        if where is None:
            return None
        return self._batch(where, "", min(query.wanted or self.page_size, self.page_size))

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        where = self._where(query)
        if where is None:
            return
        pattern = (query.pattern or "").upper() or None
        after = ""
        # The caller's page (plus one) first, not a 500-row batch for a 20-row page.
        batch = min(query.wanted or self.page_size, self.page_size)
        while True:
            with self.db.lone_read_engine.connect() as connection:
                page = connection.execute(self._batch(where, after, batch)).all()
            for e164, country, number_type, city, state, rate_center in page:
                if e164 not in exclude and matches_pattern(e164[2:], pattern):
                    yield _available(e164, country, number_type, city, state, rate_center)
            if len(page) < batch:
                return
            after = page[-1][0]
            batch = self.page_size

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        # Columns on a Core connection, as a search reads them: no ORM object;
        # one statement, so no transaction around it (Database.lone_read_engine).
        with self.db.lone_read_engine.connect() as connection:
            row = connection.execute(_LOOKUP, {"e164": phone_number}).first()
        if row is None:
            return None
        status, released_at, e164, country, number_type, city, state, rate_center = row
        if status != AVAILABLE or self._aging(released_at):
            return None
        return _available(e164, country, number_type, city, state, rate_center)

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """No-op: didhub's own holds keep held numbers out of other searches."""
        return None

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        results: list[NumberOrderResult] = []
        # A Core transaction, not a Session: the stock is no table a cache
        # watches, and a session's begin and commit cost more than the UPDATE.
        with self.db.engine.begin() as connection:
            now = clock.now()
            for e164 in phone_numbers:
                # Conditional UPDATE: of two concurrent orders, one changes the row.
                result = connection.execute(
                    _SELL,
                    {"number": e164, "order": order_id, "now": now, "aged": now - self.aging},
                )
                if result.rowcount == 1:
                    results.append(NumberOrderResult(e164, "active"))
                    continue
                row = connection.execute(_SOLD_TO, {"e164": e164}).first()
                if row is not None and row.status == SOLD and row.order_id == order_id:
                    results.append(NumberOrderResult(e164, "active"))  # a retried order
                else:
                    reason = "no longer in stock" if row is not None else "not in stock"
                    results.append(NumberOrderResult(e164, "failed", reason))
            if not any(r.status == "active" for r in results):
                reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in results)
                raise CarrierFailure(f"stock: nothing could be ordered ({reasons})")
        return results

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        with self.db.session() as session:
            rows = session.scalars(
                select(StockNumber.e164).where(
                    StockNumber.order_id == order_id, StockNumber.status == SOLD
                )
            )
            return [NumberOrderResult(e164, "active") for e164 in rows]

    def owned_numbers(self) -> Iterator[str]:
        """The stock numbers sold to buyers (those must be live in the inventory;
        unsold stock is the platform's to sell, not a discrepancy)."""
        with self.db.read_session() as session:
            sold = list(
                session.scalars(
                    select(StockNumber.e164)
                    .where(StockNumber.status == SOLD)
                    .order_by(StockNumber.e164)
                )
            )
        yield from sold

    def holds(self, phone_number: str) -> bool:
        """Whether the number is the platform's and sold (held by a buyer)."""
        with self.db.session() as session:
            row = session.get(StockNumber, phone_number)
            return row is not None and row.status == SOLD

    def release(self, phone_number: str) -> None:
        """Back to stock; a number not sold (or not the platform's) counts as released."""
        with self.db.session() as session:
            session.execute(
                update(StockNumber)
                .where(StockNumber.e164 == phone_number, StockNumber.status == SOLD)
                .values(
                    status=AVAILABLE,
                    order_id=None,
                    sold_at=None,
                    released_at=clock.now(),
                )
            )
