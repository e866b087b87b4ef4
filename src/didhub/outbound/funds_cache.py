"""The money part of outbound lookups kept in memory (:class:`FundsCache`).

An outbound lookup's :class:`~didhub.outbound.service.Funds` (the payer's
standing and wallet balance, the tenant's outbound spend today) is kept per
(payer, tenant, UTC day) until something could have changed it:

- in this process, a commit that wrote a money table (``db.MONEY_TABLES``:
  ``ledger_accounts``, ``ledger_entries``, ``billing_profiles``,
  ``usage_records``) adds one to ``Database.money_epoch``, and the next lookup
  reads afresh;
- any other process's (the CLI, another server, the job worker) is seen by a
  poll every ``poll_seconds / 2`` of high-water marks that cost a few index
  look-ups and add nothing to any commit (a shared counter row would make
  every ledger commit on the platform wait for one hot row): how many
  ``ledger_entries`` and ``usage_records`` there are past a floor and their
  highest ids (the ledger only grows; a balance moves only with its entries),
  and which accounts are not in good standing. When any of it moved, the
  cache starts afresh.

The floor is the highest id seen a ``window_seconds`` ago (a minute; 0 for the
first window after start, so that first poll counts every row once): counting
past it, not only comparing ``max(id)``, sees a transaction that took a lower
id than another's but committed after it (ids are handed out at insert, not
at commit). A transaction that held an uncommitted ledger entry or usage
record for longer than the window could be missed until the next money write;
didhub's are short.

So a wallet emptied, an account suspended or a call rated past the daily limit
through this server is refused at the next lookup; by another process within
``poll_seconds``: ``hit`` (the event loop's path) answers only while the last
poll began less than ``poll_seconds`` ago, and an answer is stored only if
neither the epoch nor the poll moved while it was read (as ``RouteCache``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import text

from didhub import clock
from didhub.db import Database
from didhub.outbound.service import Funds
from didhub.polling import PollThread

log = logging.getLogger("didhub.outbound")

Key = tuple[str, str, date]
_MARKS = text(
    "SELECT"
    " (SELECT count(*) FROM ledger_entries WHERE id > :ledger_floor),"
    " (SELECT max(id) FROM ledger_entries),"
    " (SELECT count(*) FROM usage_records WHERE id > :usage_floor),"
    " (SELECT max(id) FROM usage_records)"
)
_STANDINGS = text(
    "SELECT account_id, standing FROM billing_profiles WHERE standing <> 'good' ORDER BY account_id"
)


class FundsCache:
    def __init__(
        self,
        db: Database,
        poll_seconds: float,
        window_seconds: float = 60.0,
        max_entries: int = 50_000,
    ) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._entries: dict[Key, Funds] = {}
        self._marks: tuple[Any, ...] | None = None
        self._moves = 0  # how many polls found the marks moved
        self._stamp = (db.money_epoch, -1)
        # Counted past: 0 until a window has passed (the first poll counts all).
        self._floors = (0, 0)
        self._next_floors: tuple[int, int] | None = None
        self._floors_at = float("-inf")
        self._polled_at = float("-inf")  # time.monotonic() when the last poll began
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._thread = PollThread(
            self.poll,
            poll_seconds,
            "didhub-funds-cache",
            log,
            "reading the money marks failed; lookups will ask the database",
        )

    @property
    def enabled(self) -> bool:
        return self.poll_seconds > 0

    def _current(self) -> tuple[int, int]:
        return (self.db.money_epoch, self._moves)

    @staticmethod
    def _key(payer: str, tenant_id: str) -> Key:
        return (payer, tenant_id, clock.now().date())  # spend is today's (UTC)

    def hit(self, payer: str, tenant_id: str) -> Funds | None:
        """The kept funds if certainly current, else ``None``. Reads no
        database, so the event loop may call it."""
        if (
            self._stamp != self._current()
            or time.monotonic() - self._polled_at >= self.poll_seconds
        ):
            return None
        return self._entries.get(self._key(payer, tenant_id))

    def get(self, payer: str, tenant_id: str, compute: Callable[[], Funds]) -> Funds:
        """The funds: kept, or ``compute()`` (then kept if nothing moved)."""
        if not self.enabled:
            return compute()
        if time.monotonic() - self._polled_at >= self.poll_seconds:
            self.poll()
        key = self._key(payer, tenant_id)
        stamp = self._current()
        with self._lock:
            if self._stamp != stamp:
                self._entries = {}
                self._stamp = stamp
            found = self._entries.get(key)
        if found is not None:
            return found
        value = compute()
        with self._lock:
            if self._stamp == stamp == self._current():
                if len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest
                self._entries[key] = value
        return value

    def poll(self, force: bool = False) -> None:
        """Read the high-water marks (once, however many threads ask, unless
        ``force``)."""
        with self._poll_lock:
            started = time.monotonic()
            if not force and started - self._polled_at < self.poll_seconds / 2:
                return  # another thread just did
            floors = self._floors
            with self.db.poll_engine.begin() as connection:  # Core: no session's work
                ledger_count, ledger_max, usage_count, usage_max = connection.execute(
                    _MARKS, {"ledger_floor": floors[0], "usage_floor": floors[1]}
                ).one()
                standings = tuple(tuple(row) for row in connection.execute(_STANDINGS))
            marks = (floors, ledger_count, ledger_max, usage_count, usage_max, standings)
            with self._lock:
                if marks != self._marks:
                    self._marks = marks
                    self._moves += 1
            highest = (int(ledger_max or 0), int(usage_max or 0))
            if self._next_floors is None:
                self._next_floors, self._floors_at = highest, started
            elif started - self._floors_at >= self.window_seconds:
                # The floor becomes what was highest a window ago. Moving it
                # moves the marks: the next poll starts afresh.
                self._floors = self._next_floors
                self._next_floors, self._floors_at = highest, started
            self._polled_at = started

    def start(self) -> None:
        """Poll in a thread, so that ``hit`` can keep answering."""
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
