"""Periodic jobs on PostgreSQL, on Procrastinate's job queue.

Why Procrastinate: it keeps its queue in the PostgreSQL didhub already runs
on (no broker to operate), defers each periodic tick once however many workers
run (a unique row per task and tick), runs a job under a lock so it never
overlaps itself across machines, retries, and records every job's outcome, so
one failing job costs the others nothing.

Every job is a task named after the job with ``lock`` and ``queueing_lock``
set to that name: at most one runs and at most one waits. The tasks are
synchronous; Procrastinate runs them in threads, ``concurrency`` at once, so a
long billing run doesn't hold up webhook deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any

import procrastinate
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from didhub.db import Database
from didhub.runtime import Job, Runtime, cron_for, run_job

log = logging.getLogger("didhub.jobs")

# A deadlock or a dropped connection is worth one quick retry; the next tick
# tries again anyway.
RETRY = procrastinate.RetryStrategy(max_attempts=2, wait=1, retry_exceptions={OperationalError})
CLEANUP_JOB = "jobs.remove_old"
# Finished jobs are kept this long for `didhub jobs status` and the soak's count.
KEEP_HOURS = 24


def conninfo(database_url: str) -> str:
    """libpq's form of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def claim_tick(db: Database, name: str, tick: int, job_id: int) -> bool:
    """Whether queue job ``job_id`` may run ``name``'s ``tick`` (``JobTick``)."""
    with db.session() as session:
        claimed = session.execute(
            text(
                "INSERT INTO job_ticks (name, tick, job_id) VALUES (:name, :tick, :job) "
                "ON CONFLICT (name) DO UPDATE SET tick = excluded.tick, job_id = excluded.job_id "
                "WHERE job_ticks.tick < excluded.tick "
                "OR (job_ticks.tick = excluded.tick AND job_ticks.job_id = excluded.job_id) "
                "RETURNING name"
            ),
            {"name": name, "tick": tick, "job": job_id},
        ).first()
    return claimed is not None


def _register(app: procrastinate.App, job: Job, every: float) -> None:
    @app.task(
        name=job.name,
        pass_context=True,
        lock=job.name,
        queueing_lock=job.name,
        retry=RETRY,
    )
    def run(context: procrastinate.JobContext, timestamp: int) -> None:
        rt: Runtime = context.additional_context["runtime"]
        assert context.job.id is not None
        if not claim_tick(rt.db, job.name, timestamp, context.job.id):
            # A worker a whole period behind another: worth an operator's eye.
            log.warning("job %s: tick %s already run by another job; skipped", job.name, timestamp)
            return
        run_job(job, rt)

    app.periodic(cron=cron_for(every), periodic_id=job.name)(run)


def make_app(rt: Runtime, jobs: list[Job]) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            # The queue's own statements are short (fetch, finish, defer, the
            # heartbeat, and one listening connection); the jobs' work runs on
            # the Runtime's database pool.
            conninfo=conninfo(rt.settings.database_url),
            min_size=1,
            max_size=4,
        )
    )
    for job in jobs:
        every = job.every(rt.settings)
        if every > 0:
            _register(app, job, every)

    @app.periodic(cron="17 * * * *", periodic_id=CLEANUP_JOB)
    @app.task(name=CLEANUP_JOB, pass_context=True, lock=CLEANUP_JOB, queueing_lock=CLEANUP_JOB)
    async def remove_old(context: procrastinate.JobContext, timestamp: int) -> None:
        await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_HOURS)

    return app


def worker_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


async def run_worker(
    app: procrastinate.App,
    rt: Runtime,
    *,
    name: str,
    concurrency: int,
    install_signal_handlers: bool,
) -> None:
    async with app.open_async():
        await app.run_worker_async(
            name=name,
            concurrency=concurrency,
            additional_context={"runtime": rt},
            install_signal_handlers=install_signal_handlers,
            # A job still running after this long at shutdown is aborted; its
            # work is safe to repeat and the next tick does.
            shutdown_graceful_timeout=30,
        )


class QueueWorker:
    """A Procrastinate worker in a thread of its own, with its own event loop:
    how ``didhub serve`` runs jobs on PostgreSQL beside the API."""

    def __init__(self, rt: Runtime, jobs: list[Job], name: str | None = None) -> None:
        self._rt = rt
        self._jobs = [job for job in jobs if job.every(rt.settings) > 0]
        self._name = name or worker_name("serve")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="didhub-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=30)

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=60)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = make_app(self._rt, self._jobs)
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(
            run_worker(
                app,
                self._rt,
                name=self._name,
                concurrency=max(1, len(self._jobs)),
                install_signal_handlers=False,
            )
        )
        self._ready.set()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the job worker stopped")
