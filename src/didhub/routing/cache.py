"""Inbound routes kept in memory, for the SIP edge's lookups.

Working out a route reads up to four queries (the number, its agent, its
tenant's and partner's settings), and calls to a number ask the same question
again and again. The cache keeps each answer until anything that could change
a route has committed:

- in this process, a commit that wrote a routing table (``db.ROUTING_TABLES``)
  adds one to ``Database.routing_epoch``, and the next lookup starts afresh;
- in any other process (the CLI, another server, a renewal job) the same
  commit adds one to the ``routing_generation`` row, which a thread reads every
  ``poll_seconds`` (``DIDHUB_ROUTING_CACHE_SECONDS``); when it has moved, the
  cache starts afresh.

So a change made through this server is routed at once, and one made elsewhere
within ``poll_seconds``: an answer is given only from a cache whose last poll
began less than ``poll_seconds`` ago (the thread polls twice as often). An
answer worked out from a snapshot older than a change is never kept after it:
it is stored only if neither counter moved while it was worked out. ``hit``
(the event loop's path, no database) answers only while the last poll is
recent; otherwise lookups take ``get``, which polls first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import Counter
from sqlalchemy import select

from didhub import metrics
from didhub.db import Database
from didhub.routing.models import RoutingGeneration

_GENERATION = select(RoutingGeneration.generation).where(RoutingGeneration.id == 1)

log = logging.getLogger("didhub.routing")

Stamp = tuple[int, int | None]
T = TypeVar("T")


class RouteCache(Generic[T]):
    def __init__(
        self,
        db: Database,
        poll_seconds: float,
        max_entries: int = 50_000,
        counter: Counter = metrics.ROUTE_CACHE,
    ) -> None:
        self._hits = counter.labels("hit")
        self._misses = counter.labels("miss")
        self.db = db
        self.poll_seconds = poll_seconds
        self.max_entries = max_entries
        self._entries: dict[str, T] = {}
        self._generation: int | None = None
        self._stamp: Stamp = (db.routing_epoch, None)
        self._polled_at = float("-inf")  # time.monotonic() when the last poll began
        self._lock = threading.Lock()  # stores and resets
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.poll_seconds > 0

    def _current(self) -> Stamp:
        return (self.db.routing_epoch, self._generation)

    def hit(self, key: str) -> T | None:
        """The kept answer for ``key`` if it is certainly current, else
        ``None``. Reads no database, so the event loop may call it."""
        if (
            self._stamp != self._current()
            or time.monotonic() - self._polled_at >= self.poll_seconds
        ):
            return None
        found = self._entries.get(key)
        if found is not None:
            self._hits.inc()
        return found

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The answer for ``key``: kept, or ``compute()`` (then kept)."""
        if not self.enabled:
            self._misses.inc()
            return compute()
        if time.monotonic() - self._polled_at >= self.poll_seconds:
            self.poll()
        stamp = self._current()
        with self._lock:
            if self._stamp != stamp:
                self._entries = {}
                self._stamp = stamp
            found = self._entries.get(key)
        if found is not None:
            self._hits.inc()
            return found
        self._misses.inc()
        value = compute()
        with self._lock:
            if self._stamp == stamp == self._current():
                if len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest
                self._entries[key] = value
        return value

    def poll(self) -> None:
        """Read ``routing_generation`` (once, however many threads ask)."""
        with self._poll_lock:
            started = time.monotonic()
            if started - self._polled_at < self.poll_seconds / 2:
                return  # another thread just did
            # A Core connection: ten times a second, an ORM session's own
            # work would cost more than the query.
            with self.db.read_engine.connect() as connection:
                generation = connection.execute(_GENERATION).scalar()
            with self._lock:
                epoch, own = self.db.routing_commits()
                if generation == own and self._stamp == (epoch, self._generation):
                    # The row moved only up to this process's own last commit,
                    # which the epoch already marked; the kept answers were
                    # worked out after it, so after every commit before it too
                    # (the row serializes them).
                    self._stamp = (epoch, generation)
                self._generation = generation
            self._polled_at = started

    def start(self) -> None:
        """Poll in a thread, so that ``hit`` can keep answering."""
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="didhub-route-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds / 2):
            try:
                self.poll()
            except Exception:
                log.exception("reading routing_generation failed; lookups will ask the database")
                self._stop.wait(1)
