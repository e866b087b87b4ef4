"""Periodic jobs inside ``didhub serve`` on the embedded SQLite database.

One SQLite file is one machine, so a thread per job is enough: each waits its
interval, runs, and logs its own failures, so a slow billing run never delays
webhooks and a failing reconcile never skips the renewals. Several machines
share PostgreSQL and its job queue instead (``queue.py``)."""

from __future__ import annotations

import logging
import threading

from didhub.runtime import Job, Runtime, run_job

log = logging.getLogger("didhub.jobs")


class LocalJobs:
    def __init__(self, rt: Runtime, jobs: list[Job]) -> None:
        self._rt = rt
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(job, every), name=f"didhub-{job.name}", daemon=True
            )
            for job in jobs
            if (every := job.every(rt.settings)) > 0
        ]
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}
        self.failures: dict[str, int] = {job.name: 0 for job in jobs}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, job: Job, every: float) -> None:
        while not self._stop.wait(every):
            try:
                run_job(job, self._rt)
            except Exception:  # the next round retries
                self.failures[job.name] += 1
                log.exception("job %s failed", job.name)
            finally:
                self.runs[job.name] += 1
