"""Commit counters the in-memory caches watch (:class:`Epochs`).

A :class:`~didhub.db.Database` counts its commits that may have changed a route
(``routing``), money (``money``) or an API key's scope or an event's subscribers
(``directory``); the route, API-key and funds caches compare
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

NAMES = ("routing", "money", "directory")
_FIELDS = 1 + len(NAMES)  # pid, then one count per name: 64-bit each
_SLOT = 8 * _FIELDS
_OFFSET = {name: 1 + i for i, name in enumerate(NAMES)}  # within a slot


class Epochs:
    """This process's counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(NAMES, 0)

    def count(self, name: str) -> int:
        return self._counts[name]

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


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
        self._base = self._slot * _FIELDS

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

    def count(self, name: str) -> int:
        return sum(self._cells[_OFFSET[name] :: _FIELDS])

    def add(self, name: str) -> None:
        with self._lock:
            self._cells[self._base + _OFFSET[name]] += 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
