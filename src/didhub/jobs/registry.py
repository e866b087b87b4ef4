"""Every periodic job, gathered from the domains' ``tasks.py``, in the order
a one-off round runs them (``didhub jobs run``, tests)."""

from __future__ import annotations

import logging
from datetime import timedelta

from didhub import idempotency
from didhub.billing import tasks as billing_tasks
from didhub.e911 import tasks as e911_tasks
from didhub.numbers import tasks as numbers_tasks
from didhub.porting import tasks as porting_tasks
from didhub.runtime import Job, Runtime, run_job
from didhub.wallet import tasks as wallet_tasks
from didhub.webhooks import tasks as webhooks_tasks

log = logging.getLogger("didhub.jobs")

JOBS: list[Job] = [
    *numbers_tasks.JOBS,
    *wallet_tasks.JOBS,
    *billing_tasks.JOBS,
    *e911_tasks.JOBS,
    *porting_tasks.JOBS,
    *webhooks_tasks.JOBS,
    Job(
        "idempotency.purge",
        lambda rt: idempotency.purge(rt.db, timedelta(hours=rt.settings.idempotency_keep_hours)),
        lambda s: s.sweep_seconds,
        "forget Idempotency-Keys answered more than DIDHUB_IDEMPOTENCY_KEEP_HOURS ago",
    ),
]
BY_NAME = {job.name: job for job in JOBS}


def run_round(rt: Runtime, names: list[str] | None = None) -> dict[str, BaseException | None]:
    """Run each job once (or only ``names``), one after another; a job that
    fails is logged and named in the answer, and the rest still run."""
    outcome: dict[str, BaseException | None] = {}
    for job in JOBS:
        if names is not None and job.name not in names:
            continue
        try:
            run_job(job, rt)
            outcome[job.name] = None
        except Exception as exc:  # one job's failure must not cost the others their turn
            log.exception("job %s failed", job.name)
            outcome[job.name] = exc
    return outcome
