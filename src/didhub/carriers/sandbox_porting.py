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

State lives in the database (``sandbox_port_orders``, ``sandbox_port_outs``,
``sandbox_port_pins``; a ported number joins ``sandbox_allocations`` so the
inventory comparison sees it), as a real carrier keeps its orders: every
process running the sandbox — two servers, a worker, the CLI — sees the same
order, and ids are random, never a per-process counter. A look that moves an
order locks its row, so two processes looking at once move it once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.carriers.base import (
    CarrierFailure,
    Portability,
    PortOrderState,
    PortOut,
    PortRequestData,
)
from didhub.carriers.models import (
    SandboxAllocation,
    SandboxPortOrder,
    SandboxPortOut,
    SandboxPortPin,
)
from didhub.db import Database

PIN_MISMATCH = "PIN does not match the PIN on the losing carrier's account"
ACCOUNT_MISMATCH = "Account number does not match the customer service record (CSR)"


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

    @staticmethod
    def _id(prefix: str) -> str:
        return f"sbx-{prefix}-{secrets.token_hex(8)}"

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
        return self._id("doc")

    @staticmethod
    def _rejection(order: SandboxPortOrder) -> str | None:
        if order.pin == "0000":
            return PIN_MISMATCH
        if order.account_number.upper().startswith("BAD"):
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
        with self.db.session() as s:
            for losing, numbers in sorted(groups.items()):
                order = SandboxPortOrder(
                    id=self._id("port"),
                    reference=request.reference[:40],
                    numbers=list(numbers),
                    losing_carrier=losing,
                    pin=request.pin,
                    account_number=request.account_number,
                    requested_foc_date=request.foc_date,
                    submitted_at=clock.now(),
                    status="submitted",
                )
                s.add(order)
                states.append(self._state(order))
        return states

    def resubmit_port(self, carrier_order_id: str, request: PortRequestData) -> PortOrderState:
        with self.db.session() as s:
            order = self._get(s, carrier_order_id)
            if order.status != "exception":
                raise CarrierFailure(f"sandbox: order {order.id} is {order.status}, not exception")
            order.pin, order.account_number = request.pin, request.account_number
            order.requested_foc_date = request.foc_date
            order.status, order.reason = "submitted", None
            order.submitted_at = clock.now()
            return self._state(order)

    @staticmethod
    def _get(s: Session, carrier_order_id: str) -> SandboxPortOrder:
        order = s.scalars(
            select(SandboxPortOrder)
            .where(SandboxPortOrder.id == carrier_order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if order is None:
            raise CarrierFailure(f"sandbox: no porting order {carrier_order_id}")
        return order

    def _steps(self, order: SandboxPortOrder) -> float:
        if self.step_seconds <= 0:
            return float("inf")
        return (clock.now() - order.submitted_at).total_seconds() / self.step_seconds

    def _advance(self, s: Session, order: SandboxPortOrder) -> None:
        if order.status in ("cancelled", "ported", "exception"):
            return
        steps = self._steps(order)
        if steps >= 1:
            rejection = self._rejection(order)
            if rejection is not None:
                order.status, order.reason = "exception", rejection
                return
            order.status = "in_progress"
        if steps >= 2:
            order.status, order.foc_date = "foc_confirmed", order.requested_foc_date
        if (
            steps >= 3
            and order.foc_date is not None
            and clock.now().date() >= date.fromisoformat(order.foc_date)
        ):
            self._allocate(s, order)
            order.status = "ported"

    @staticmethod
    def _allocate(s: Session, order: SandboxPortOrder) -> None:
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

    @staticmethod
    def _state(order: SandboxPortOrder) -> PortOrderState:
        return PortOrderState(
            order.id,
            order.status,  # type: ignore[arg-type]
            tuple(order.numbers),
            order.foc_date,
            order.reason,
            order.losing_carrier,
        )

    def port_status(self, carrier_order_id: str) -> PortOrderState:
        with self.db.session() as s:
            order = self._get(s, carrier_order_id)
            self._advance(s, order)
            return self._state(order)

    def cancel_port(self, carrier_order_id: str) -> None:
        with self.db.session() as s:
            order = self._get(s, carrier_order_id)
            if order.status == "ported":
                raise CarrierFailure(f"sandbox: order {order.id} has already ported")
            order.status = "cancelled"

    def port_outs(self) -> list[PortOut]:
        with self.db.read_session() as s:
            rows = s.scalars(
                select(SandboxPortOut).order_by(SandboxPortOut.reported_at, SandboxPortOut.id)
            )
            return [PortOut(r.e164, r.ported_on, r.id, r.winning_carrier) for r in rows]

    def port_away(self, phone_number: str, on: date | None = None, pin: str | None = None) -> None:
        """Test hook: another carrier ports the number away (refused without
        the number's port-out PIN when it has one)."""
        with self.db.session() as s:
            wanted = s.get(SandboxPortPin, phone_number)
            if wanted is not None and pin != wanted.pin:
                raise CarrierFailure("sandbox: port-out refused, the PIN does not match")
            row = s.get(SandboxAllocation, phone_number)
            if row is not None:
                row.status = "released"
            s.add(
                SandboxPortOut(
                    id=self._id("portout"),
                    e164=phone_number,
                    ported_on=(on or clock.now().date()).isoformat(),
                    winning_carrier="Sandbox Winning Co",
                    reported_at=clock.now(),
                )
            )

    def set_port_out_pin(self, phone_number: str, pin: str) -> None:
        with self.db.session() as s:
            row = s.get(SandboxPortPin, phone_number)
            if row is None:
                s.add(SandboxPortPin(e164=phone_number, pin=pin))
            else:
                row.pin = pin
