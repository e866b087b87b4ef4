"""The sandbox's porting simulator: a port's timeline, its exceptions and its
rejections, decided by the order's own fields so tests can pick them.

* Not portable: a number whose line ends ``0000`` (``no_coverage``) or ``9999``
  (a wireless number its carrier won't release). Fast-port: the line's last
  digit is even.
* Losing carrier: by the area code's digit sum (even: Sandbox Bell, odd: Sandbox
  Wireless); a submission is split into one order per losing carrier.
* Exceptions: PIN ``0000`` (the PIN doesn't match) or an account number
  starting ``BAD`` (the account number doesn't match the CSR): the order goes
  to ``exception`` with the losing carrier's words; a resubmission with
  corrected fields goes on.
* Timeline: every ``step_seconds`` after (re)submission moves one step:
  submitted -> in_progress -> foc_confirmed (the requested date) -> ported,
  the last only on or after the FOC date (``clock.now``). ``step_seconds = 0``
  moves as far as the date allows at each look (tests take seconds).
* Port-out: ``port_away`` is the test hook for a number another carrier takes.

State lives in this process (the sandbox plays an outside system; a ported
number joins ``sandbox_allocations`` so the inventory comparison sees it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from didhub import clock
from didhub.carriers.base import (
    CarrierFailure,
    Portability,
    PortOrderState,
    PortOut,
    PortRequestData,
)
from didhub.carriers.models import SandboxAllocation
from didhub.db import Database

PIN_MISMATCH = "PIN does not match the PIN on the losing carrier's account"
ACCOUNT_MISMATCH = "Account number does not match the customer service record (CSR)"


@dataclass
class _Order:
    id: str
    request: PortRequestData
    numbers: tuple[str, ...]
    losing_carrier: str
    submitted_at: datetime
    status: str = "submitted"
    reason: str | None = None
    foc_date: str | None = None
    history: list[str] = field(default_factory=list)


def _line(e164: str) -> str:
    return e164[-4:]


def losing_carrier(e164: str) -> str:
    area = e164[2:5] if e164.startswith("+1") else e164[1:4]
    return (
        "Sandbox Bell"
        if sum(int(d) for d in area if d.isdigit()) % 2 == 0
        else ("Sandbox Wireless")
    )


class SandboxPorting:
    name = "sandbox"

    def __init__(self, db: Database, step_seconds: float = 0.0) -> None:
        self.db = db
        self.step_seconds = step_seconds
        self._orders: dict[str, _Order] = {}
        self._documents: dict[str, int] = {}
        self._port_outs: list[PortOut] = []
        self._pins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._next = 0

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"sbx-{prefix}-{self._next:05d}"

    def check_portability(self, phone_numbers: Sequence[str]) -> list[Portability]:
        out = []
        for e164 in phone_numbers:
            if _line(e164) == "0000":
                out.append(Portability(e164, False, reason="no_coverage"))
            elif _line(e164) == "9999":
                out.append(
                    Portability(
                        e164,
                        False,
                        reason="wireless number under contract: its carrier won't release it",
                    )
                )
            else:
                fast = int(e164[-1]) % 2 == 0
                out.append(Portability(e164, True, fast, losing_carrier=losing_carrier(e164)))
        return out

    def allowed_foc_dates(self, phone_numbers: Sequence[str]) -> list[str]:
        checks = self.check_portability(phone_numbers)
        fast = bool(checks) and all(c.fast_portable for c in checks)
        day = clock.now().date() + timedelta(days=1 if fast else 3)
        dates: list[str] = []
        while len(dates) < 10:
            if day.weekday() < 5:
                dates.append(day.isoformat())
            day += timedelta(days=1)
        return dates

    def upload_document(self, filename: str, content: bytes) -> str:
        if not content:
            raise CarrierFailure("sandbox: the document is empty")
        with self._lock:
            doc = self._id("doc")
            self._documents[doc] = len(content)
            return doc

    def _rejection(self, request: PortRequestData) -> str | None:
        if request.pin == "0000":
            return PIN_MISMATCH
        if request.account_number.upper().startswith("BAD"):
            return ACCOUNT_MISMATCH
        return None

    def submit_port(self, request: PortRequestData) -> list[PortOrderState]:
        refused = [c for c in self.check_portability(request.phone_numbers) if not c.portable]
        if refused:
            raise CarrierFailure(f"sandbox: {refused[0].phone_number} is not portable")
        groups: dict[str, list[str]] = {}
        for e164 in request.phone_numbers:
            groups.setdefault(losing_carrier(e164), []).append(e164)
        states = []
        with self._lock:
            for losing, numbers in sorted(groups.items()):
                order = _Order(self._id("port"), request, tuple(numbers), losing, clock.now())
                self._orders[order.id] = order
                states.append(self._state(order))
        return states

    def resubmit_port(self, carrier_order_id: str, request: PortRequestData) -> PortOrderState:
        with self._lock:
            order = self._get(carrier_order_id)
            if order.status != "exception":
                raise CarrierFailure(f"sandbox: order {order.id} is {order.status}, not exception")
            order.request = replace(request, phone_numbers=order.numbers)
            order.status, order.reason = "submitted", None
            order.submitted_at = clock.now()
            return self._state(order)

    def _get(self, carrier_order_id: str) -> _Order:
        order = self._orders.get(carrier_order_id)
        if order is None:
            raise CarrierFailure(f"sandbox: no porting order {carrier_order_id}")
        return order

    def _steps(self, order: _Order) -> float:
        if self.step_seconds <= 0:
            return float("inf")
        return (clock.now() - order.submitted_at).total_seconds() / self.step_seconds

    def _advance(self, order: _Order) -> None:
        if order.status in ("cancelled", "ported", "exception"):
            return
        steps = self._steps(order)
        if steps >= 1:
            rejection = self._rejection(order.request)
            if rejection is not None:
                order.status, order.reason = "exception", rejection
                return
            order.status = "in_progress"
        if steps >= 2:
            order.status, order.foc_date = "foc_confirmed", order.request.foc_date
        if (
            steps >= 3
            and order.foc_date is not None
            and clock.now().date() >= date.fromisoformat(order.foc_date)
        ):
            self._allocate(order)
            order.status = "ported"

    def _allocate(self, order: _Order) -> None:
        with self.db.session() as s:
            for e164 in order.numbers:
                row = s.get(SandboxAllocation, e164)
                if row is None:
                    s.add(
                        SandboxAllocation(
                            e164=e164, order_id=order.id, status="active", allocated_at=clock.now()
                        )
                    )
                else:
                    row.status, row.order_id = "active", order.id

    def _state(self, order: _Order) -> PortOrderState:
        return PortOrderState(
            order.id,
            order.status,  # type: ignore[arg-type]
            order.numbers,
            order.foc_date,
            order.reason,
            order.losing_carrier,
        )

    def port_status(self, carrier_order_id: str) -> PortOrderState:
        with self._lock:
            order = self._get(carrier_order_id)
            self._advance(order)
            return self._state(order)

    def cancel_port(self, carrier_order_id: str) -> None:
        with self._lock:
            order = self._get(carrier_order_id)
            if order.status == "ported":
                raise CarrierFailure(f"sandbox: order {order.id} has already ported")
            order.status = "cancelled"

    def port_outs(self) -> list[PortOut]:
        with self._lock:
            return list(self._port_outs)

    def port_away(self, phone_number: str, on: date | None = None, pin: str | None = None) -> None:
        """Test hook: another carrier ports the number away (refused without
        the number's port-out PIN when it has one)."""
        wanted = self._pins.get(phone_number)
        if wanted is not None and pin != wanted:
            raise CarrierFailure("sandbox: port-out refused, the PIN does not match")
        with self.db.session() as s:
            row = s.get(SandboxAllocation, phone_number)
            if row is not None:
                row.status = "released"
        with self._lock:
            self._port_outs.append(
                PortOut(
                    phone_number,
                    (on or clock.now().date()).isoformat(),
                    self._id("portout"),
                    "Sandbox Winning Co",
                )
            )

    def set_port_out_pin(self, phone_number: str, pin: str) -> None:
        self._pins[phone_number] = pin
