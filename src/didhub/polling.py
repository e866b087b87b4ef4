"""A daemon thread that calls a cache's ``poll`` every half ``poll_seconds``
(the route caches' ``routing.cache.Generations`` and the money cache,
``outbound.funds_cache.FundsCache``), so that their event-loop ``hit`` keeps
answering from memory. A failed poll is logged and retried a second later; the
caches then ask the database until a poll succeeds again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class PollThread:
    def __init__(
        self,
        poll: Callable[[], None],
        poll_seconds: float,
        name: str,
        log: logging.Logger,
        failure: str,
    ) -> None:
        """``name``: the thread's; ``failure``: the line ``log`` records (with
        the exception) when a poll fails."""
        self._poll = poll
        self.poll_seconds = poll_seconds
        self._name = name
        self._log = log
        self._failure = failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (once; nothing when polling is off, ``poll_seconds`` 0)."""
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds / 2):
            try:
                self._poll()
            except Exception:
                self._log.exception(self._failure)
                self._stop.wait(1)
