"""Inbound routes kept in memory, for the SIP edge's lookups.

Working out a route reads up to four queries (the number, its agent, its
tenant's and partner's settings), and calls to a number ask the same question
again and again. The cache keeps each answer until anything that could change
a route has committed:

- in this process, a commit that wrote a routing table (``db.ROUTING_TABLES``)
  adds one to its Database's ``routing`` epoch, and the next lookup starts afresh;
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

The API keys' cache watches ``db.DIRECTORY_TABLES`` the same way, through the
``directory`` epoch and row 2, so a purchase (which writes ``phone_numbers``)
doesn't empty it. A server's caches share one poll (:class:`Generations`): one
statement reads every row, in one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar

from prometheus_client import Counter
from sqlalchemy import select

from didhub import metrics
from didhub.db import ROUTING, Database, Watch
from didhub.polling import PollThread
from didhub.routing.models import RoutingGeneration

_GENERATIONS = select(RoutingGeneration.id, RoutingGeneration.generation)

log = logging.getLogger("didhub.routing")

Stamp = tuple[int, int | None]
T = TypeVar("T")


class Generations:
    """Reads every ``routing_generation`` row in one statement for all the
    caches of one server (routes, callers, API keys, directory answers), in
    one thread (a ``polling.PollThread``): each cache's poll is this poll."""

    def __init__(self, db: Database, poll_seconds: float) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._caches: list[RouteCache[Any]] = []
        self._polled_at = float("-inf")
        self._lock = threading.Lock()
        self._thread = PollThread(
            self.poll,
            poll_seconds,
            "didhub-route-cache",
            log,
            "reading routing_generation failed; lookups will ask the database",
        )

    def watch(self, cache: RouteCache[Any]) -> None:
        self._caches.append(cache)

    def poll(self) -> None:
        """Read the rows (once, however many threads ask) and tell every cache."""
        with self._lock:
            started = time.monotonic()
            if started - self._polled_at < self.poll_seconds / 2:
                return  # another thread just did
            # A Core connection: ten times a second, an ORM session's own
            # work would cost more than the query. Committed, not rolled back:
            # psycopg forgets a connection's prepared statements at every
            # ROLLBACK (docs/performance.md, "No rollback").
            with self.db.poll_engine.begin() as connection:
                rows = {row: value for row, value in connection.execute(_GENERATIONS)}
            for cache in self._caches:
                cache.observe(rows.get(cache.watch.row), started)
            self._polled_at = started

    def start(self) -> None:
        """Poll in a thread, so that the caches' ``hit`` can keep answering."""
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()


class RouteCache(Generic[T]):
    def __init__(
        self,
        db: Database,
        poll_seconds: float,
        max_entries: int = 50_000,
        counter: Counter = metrics.ROUTE_CACHE,
        watch: Watch = ROUTING,
        generations: Generations | None = None,
    ) -> None:
        """``watch``: the tables whose commits empty it (``db.ROUTING`` or
        ``db.DIRECTORY``), through its epoch and its ``routing_generation``
        row; ``generations``: the poll it shares with a server's other caches
        (else its own)."""
        self._hits = counter.labels("hit")
        self._misses = counter.labels("miss")
        self.db = db
        self.watch = watch
        self.poll_seconds = poll_seconds
        self.max_entries = max_entries
        self._entries: dict[str, T] = {}
        self._generation: int | None = None
        self._stamp: Stamp = (db.epochs.count(watch.name), None)
        self._polled_at = float("-inf")  # time.monotonic() when the last poll began
        self._lock = threading.Lock()  # stores and resets
        self._generations = generations or Generations(db, poll_seconds)
        self._generations.watch(self)

    @property
    def enabled(self) -> bool:
        return self.poll_seconds > 0

    def _current(self) -> Stamp:
        return (self.db.epochs.count(self.watch.name), self._generation)

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
        """The answer for ``key``: kept, or ``compute()`` (then kept). When the
        last poll isn't recent, this thread polls first: on the poll's own
        connections (``Database.poll_engine``), so a caller that holds a pooled
        connection already never waits for a second from the same pool."""
        return self.get_many((key,), lambda _missing: {key: compute()})[key]

    def get_many(
        self,
        keys: Collection[str],
        compute: Callable[[list[str]], dict[str, T]],
    ) -> dict[str, T]:
        """:meth:`get` for many keys: the kept ones, and the rest worked out
        together by ``compute(missing)`` (then kept, by the same rule)."""
        wanted = list(dict.fromkeys(keys))
        if not self.enabled:
            self._misses.inc(len(wanted))
            return compute(wanted)
        if time.monotonic() - self._polled_at >= self.poll_seconds:
            self.poll()
        stamp = self._current()
        with self._lock:
            if self._stamp != stamp:
                self._entries = {}
                self._stamp = stamp
            found = {key: self._entries[key] for key in wanted if key in self._entries}
        missing = [key for key in wanted if key not in found]
        self._hits.inc(len(found))
        if not missing:
            return found
        self._misses.inc(len(missing))
        worked_out = compute(missing)
        with self._lock:
            if self._stamp == stamp == self._current():
                for key in missing:
                    if len(self._entries) >= self.max_entries:
                        del self._entries[next(iter(self._entries))]  # the oldest
                    self._entries[key] = worked_out[key]
        return {**found, **worked_out}

    def poll(self) -> None:
        """Read ``routing_generation`` (once, however many threads ask)."""
        self._generations.poll()

    def observe(self, generation: int | None, started: float) -> None:
        """What a poll that began at ``started`` read of this cache's row."""
        with self._lock:
            epoch, own = self.db.commits(self.watch)
            if generation == own and self._stamp == (epoch, self._generation):
                # The row moved only up to this process's own last commit,
                # which the epoch already marked; the kept answers were
                # worked out after it, so after every commit before it too
                # (the row serializes them).
                self._stamp = (epoch, generation)
            self._generation = generation
        self._polled_at = started

    def start(self) -> None:
        """Poll in a thread (the shared one), so that ``hit`` can keep answering."""
        if self.enabled:
            self._generations.start()

    def stop(self) -> None:
        self._generations.stop()
