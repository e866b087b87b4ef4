"""Periodic jobs: each tick runs once however many servers and workers share
PostgreSQL, a failing job costs the others nothing, and on the embedded SQLite
default `didhub serve` runs them itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from didhub.carriers.sandbox import SandboxCarrier
from didhub.cli import app as cli
from didhub.config import Settings
from didhub.db import Database
from didhub.jobs.local import LocalJobs
from didhub.jobs.queue import QueueWorker, claim_tick, make_app
from didhub.jobs.registry import JOBS, run_round
from didhub.numbers import service as numbers
from didhub.payments.sandbox_gateway import SandboxGateway
from didhub.runtime import Job, Runtime, cron_for
from sip_edge import DIDHUB, didhub_server, wait_for

ON_POSTGRES = os.environ.get("DIDHUB_DATABASE_URL", "").startswith("postgresql")
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="the job queue is PostgreSQL's; SQLite runs jobs in-process"
)
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="in-process jobs are SQLite's")


def test_schedules_step_evenly_and_never_more_often_than_asked() -> None:
    assert cron_for(1) == "* * * * * */1"
    assert cron_for(7) == "* * * * * */10"
    assert cron_for(60) == "*/1 * * * *"
    assert cron_for(300) == "*/5 * * * *"
    assert cron_for(400) == "*/10 * * * *"
    assert cron_for(7200) == "0 */2 * * *"
    assert cron_for(86400 * 2) == "0 0 * * *"


def test_a_round_runs_every_job_even_when_one_fails(
    db: Database, carrier: SandboxCarrier, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("carrier API down")

    monkeypatch.setattr(numbers, "reconcile", broken)
    outcome = run_round(Runtime(db, carrier, SandboxGateway(db), settings))
    assert isinstance(outcome["numbers.reconcile"], RuntimeError)
    assert [name for name, failure in outcome.items() if failure is None] == [
        job.name for job in JOBS if job.name != "numbers.reconcile"
    ]


def test_in_process_jobs_keep_running_beside_a_failing_one(
    db: Database, carrier: SandboxCarrier, settings: Settings
) -> None:
    ran = threading.Event()
    calls: list[str] = []

    def fail(_: Runtime) -> None:
        calls.append("fail")
        raise RuntimeError("always")

    def work(_: Runtime) -> None:
        calls.append("work")
        if calls.count("work") >= 3:
            ran.set()

    jobs = [
        Job("test.fail", fail, lambda s: 0.02, "fails"),
        Job("test.work", work, lambda s: 0.02, "works"),
        Job("test.off", work, lambda s: 0, "never runs"),
    ]
    runner = LocalJobs(Runtime(db, carrier, SandboxGateway(db), settings), jobs)
    runner.start()
    try:
        assert ran.wait(10)
    finally:
        runner.stop()
    assert runner.failures["test.fail"] >= 1 and runner.failures["test.work"] == 0
    assert runner.runs["test.off"] == 0


def _jobs(db: Database) -> list[tuple[str, str, int]]:
    with db.engine.connect() as conn:
        return [
            (task, status, int(stamp))
            for task, status, stamp in conn.execute(
                text(
                    "SELECT task_name, status::text, (args->>'timestamp')::bigint "
                    "FROM procrastinate_jobs WHERE task_name <> 'jobs.remove_old'"
                )
            )
        ]


@pytest.fixture
def queue(db: Database) -> Iterator[Database]:
    def empty() -> None:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "TRUNCATE procrastinate_events, procrastinate_periodic_defers, "
                    "procrastinate_jobs, procrastinate_workers, job_ticks CASCADE"
                )
            )

    empty()
    yield db
    empty()


@postgres_only
def test_two_servers_and_a_worker_run_each_tick_once_and_isolate_failures(
    queue: Database, carrier: SandboxCarrier, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three job-queue workers (two `serve`s and a `worker`) with every job due
    each second: each job runs once per tick, never twice, and the reconcile
    failing every time leaves the renewals and the rest running."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("carrier API down")

    monkeypatch.setattr(numbers, "reconcile", broken)
    quick = settings.model_copy(update={"sweep_seconds": 1, "webhook_seconds": 1})
    rt = Runtime(queue, carrier, SandboxGateway(queue), quick)
    workers = [QueueWorker(rt, JOBS, name=f"test-{n}") for n in range(3)]
    for worker in workers:
        worker.start()
    try:

        def enough() -> bool:
            done = [t for t, status, _ in _jobs(queue) if status in ("succeeded", "failed")]
            return all(done.count(job.name) >= 3 for job in JOBS)

        wait_for(enough, 40, "three runs of every job")
    finally:
        for worker in workers:
            worker.stop()
    ran = _jobs(queue)
    outcomes = {(task, status) for task, status, _ in ran if status in ("succeeded", "failed")}
    assert ("numbers.reconcile", "failed") in outcomes
    for job in JOBS:
        if job.name != "numbers.reconcile":
            assert (job.name, "succeeded") in outcomes and (job.name, "failed") not in outcomes


@postgres_only
def test_a_tick_deferred_again_by_a_lagging_worker_runs_once(
    queue: Database, carrier: SandboxCarrier, settings: Settings
) -> None:
    """Procrastinate keeps only the newest tick's defer row: a worker a period
    behind defers an older tick again. The job runs for a tick once, and never
    for a tick older than one already run; a retry (the same job) still runs."""
    runs: list[str] = []
    job = Job("test.count", lambda rt: runs.append("ran"), lambda s: 86400 * 2, "counts")
    rt = Runtime(queue, carrier, SandboxGateway(queue), settings)
    app = make_app(rt, [job])
    app.periodic_defaults = {"max_delay": 0}  # no tick of its own: only the ones below
    task = app.tasks["test.count"]
    tick = int(time.time()) + 1000

    async def lagging_workers() -> None:
        async with app.open_async():
            for stamp in (tick, tick + 1, tick, tick - 1):
                deferred = task.configure(task_kwargs={"timestamp": stamp}).job
                await app.job_manager.defer_periodic_job(
                    deferred, periodic_id="test.count", defer_timestamp=stamp
                )
                await app.run_worker_async(
                    wait=False, additional_context={"runtime": rt}, install_signal_handlers=False
                )

    # In a thread of its own: the browser tests' Playwright keeps a loop
    # running in this one.
    thread = threading.Thread(target=lambda: asyncio.run(lagging_workers()))
    thread.start()
    thread.join(60)
    stamps = sorted(stamp for name, _, stamp in _jobs(queue) if name == "test.count")
    assert stamps == [tick - 1, tick, tick, tick + 1]  # the queue did defer ticks again
    assert len(runs) == 2  # tick, then tick + 1; the older ones are skipped
    assert claim_tick(queue, "test.other", 5, job_id=1)
    assert claim_tick(queue, "test.other", 5, job_id=1)  # a retry of that job
    assert not claim_tick(queue, "test.other", 5, job_id=2)
    assert not claim_tick(queue, "test.other", 4, job_id=3)
    assert claim_tick(queue, "test.other", 6, job_id=4)


@postgres_only
def test_real_servers_and_worker_share_the_queue(queue: Database, tmp_path: Path) -> None:
    """`didhub serve` twice and `didhub worker` once, as an operator runs them."""
    url = str(queue.url)
    env = {"DIDHUB_SWEEP_SECONDS": "1", "DIDHUB_WEBHOOK_SECONDS": "1"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [DIDHUB, "worker"],
        env={**os.environ, "DIDHUB_DATABASE_URL": url, **env},
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with (
            didhub_server(url, tmp_path / "a", **env),
            didhub_server(url, tmp_path / "b", **env),
        ):

            def registered() -> bool:
                with queue.engine.connect() as conn:
                    count = conn.execute(text("SELECT count(*) FROM procrastinate_workers"))
                    return int(count.scalar_one()) == 3

            wait_for(registered, 30, "three workers")
            wait_for(
                lambda: (
                    {t for t, s, _ in _jobs(queue) if s == "succeeded"}
                    >= {job.name for job in JOBS}
                ),
                40,
                "every job to succeed",
            )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    ran = _jobs(queue)
    assert not [r for r in ran if r[1] == "failed"], ran
    output = (tmp_path / "worker.log").read_text() + "".join(
        (tmp_path / d / "didhub.log").read_text() for d in ("a", "b")
    )
    assert "Traceback" not in output and "deadlock" not in output.lower()
    assert worker.returncode == 0
    with queue.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one() == 0


@sqlite_only
def test_the_worker_command_says_it_needs_postgresql(cli_env: None) -> None:
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 1
    assert "needs PostgreSQL" in result.output and "Traceback" not in result.output


def test_jobs_list_and_run_by_hand(cli_env: None) -> None:
    listed = CliRunner().invoke(cli, ["jobs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "billing.renewals" in listed.output and "webhooks.deliver" in listed.output
    ran = CliRunner().invoke(cli, ["jobs", "run", "billing.renewals", "e911.repush"])
    assert ran.exit_code == 0, ran.output
    assert "billing.renewals: ok" in ran.output and "e911.repush: ok" in ran.output
    wrong = CliRunner().invoke(cli, ["jobs", "run", "billing.renewal"])
    assert wrong.exit_code == 1 and "no job named billing.renewal" in wrong.output
