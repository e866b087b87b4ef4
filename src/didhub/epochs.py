"""Commit counters the in-memory caches watch (:class:`Epochs`).

A :class:`~didhub.db.Database` counts its commits that may have changed a route
(``routing``) or money (``money``); the route, API-key and funds caches compare
the counts before and after working an answer out, and start afresh when they
moved. By default the counts are this process's (:class:`Epochs`).

``didhub serve --workers N`` runs several processes on one machine. There the
counts live in a small file every one of them maps (:class:`SharedEpochs`):
each process adds to its own slot only (no lock between processes: one writer
per slot), and a count read is the sum of every slot, so a key revoked or a
wallet emptied through one worker is seen by the next request to any other at
once, not at the next poll. Other machines' commits are still seen by the
caches' polls of the database.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path

_FIELDS = 3  # pid, routing, money: 64-bit each
_SLOT = 8 * _FIELDS


class Epochs:
    """This process's counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routing = 0
        self._money = 0

    @property
    def routing(self) -> int:
        return self._routing

    @property
    def money(self) -> int:
        return self._money

    def add_routing(self) -> None:
        with self._lock:
            self._routing += 1

    def add_money(self) -> None:
        with self._lock:
            self._money += 1


def create_shared(path: Path, processes: int) -> None:
    """An empty counts file for up to ``processes`` processes at once (a slot
    whose process has ended is taken by the next that starts)."""
    path.write_bytes(bytes(_SLOT * processes))


class SharedEpochs(Epochs):
    """The counts of every process mapping ``path`` (see the module)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        with path.open("r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), 0)
            fcntl.flock(handle, fcntl.LOCK_EX)  # taking a slot: one process at a time
            try:
                self._cells = memoryview(self._map).cast("q")
                self._slot = self._claim()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        base = self._slot * _FIELDS
        self._routing_cell, self._money_cell = base + 1, base + 2

    def _claim(self) -> int:
        cells = self._cells
        for slot in range(len(cells) // _FIELDS):
            pid = cells[slot * _FIELDS]
            if pid == 0 or not _alive(pid):
                # An ended process's counts stay: this one counts on from them,
                # so every sum only grows.
                cells[slot * _FIELDS] = os.getpid()
                return slot
        raise RuntimeError(f"no free slot in the shared commit counts ({len(cells) // _FIELDS})")

    @property
    def routing(self) -> int:
        return sum(self._cells[1::_FIELDS])

    @property
    def money(self) -> int:
        return sum(self._cells[2::_FIELDS])

    def add_routing(self) -> None:
        with self._lock:
            self._cells[self._routing_cell] += 1

    def add_money(self) -> None:
        with self._lock:
            self._cells[self._money_cell] += 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
