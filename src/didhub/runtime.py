"""A periodic job and what it runs with. Nothing here imports a domain, so
every domain's ``tasks.py`` can import it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from didhub import metrics
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.payments.base import PaymentGateway


@dataclass(frozen=True)
class Runtime:
    """What a job needs: the same objects a server's requests use."""

    db: Database
    carrier: Carrier
    gateway: PaymentGateway
    settings: Settings


@dataclass(frozen=True)
class Job:
    """``run`` does one round of set-based work and is safe to repeat and to
    run beside requests (each step takes its row locks in the documented
    order, docs/architecture.md). ``every`` reads the interval from the
    settings; 0 turns the job off."""

    name: str
    run: Callable[[Runtime], object]
    every: Callable[[Settings], float]
    description: str


def cron_for(seconds: float) -> str:
    """A cron expression (Procrastinate's, with seconds as a sixth field) for
    the nearest schedule not more often than every ``seconds``: cron steps
    must divide the minute or the hour, so 7 s runs every 10 s and 400 s
    every 10 minutes."""
    if seconds <= 0:
        raise ValueError("a job that is off has no schedule")
    whole = max(1, round(seconds))
    if whole < 60:
        step = min(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d >= whole)
        return f"* * * * * */{step}"
    minutes = -(-whole // 60)
    if minutes < 60:
        step = min(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d >= minutes)
        return f"*/{step} * * * *"
    hours = -(-minutes // 60)
    if hours < 24:
        step = min(d for d in (1, 2, 3, 4, 6, 8, 12) if d >= hours)
        return f"0 */{step} * * *"
    return "0 0 * * *"


def run_job(job: Job, rt: Runtime) -> object:
    """One round of ``job``, counted and timed (didhub_job_runs_total,
    didhub_job_failures_total, didhub_job_duration_seconds); errors re-raised."""
    metrics.JOB_RUNS.labels(job.name).inc()
    try:
        with metrics.timed(metrics.JOB_SECONDS, job.name):
            return job.run(rt)
    except BaseException:
        metrics.JOB_FAILURES.labels(job.name).inc()
        raise
