"""``didhub serve --workers N``: N API processes on one socket, and one more
for the periodic jobs.

- **The API**: uvicorn's own supervisor starts ``N`` processes (spawned, each
  builds its app with :func:`worker_app`) that accept on the one listening
  socket, and restarts one that dies. Each keeps its own caches.
- **The caches**: every process of one ``serve`` counts its commits in one
  shared file (``epochs.py``), so a route changed, an API key revoked or a
  wallet emptied through one worker is seen by the next request to any other
  at once; other machines' changes, and the CLI's, within the caches' polls
  (``DIDHUB_ROUTING_CACHE_SECONDS``), as before.
- **Holds, orders, idempotency keys**: in the database, shared already.
- **The periodic jobs** run once per ``serve``, in a process of their own (the
  same runner as with one worker: threads on SQLite, a Procrastinate worker on
  PostgreSQL), not in every API process.
- **Metrics**: prometheus-client's multiprocess mode, so ``/metrics`` from any
  worker adds up every process's counters (the jobs' too).

Every process opens at most ``DIDHUB_DB_POOL_SIZE + DIDHUB_DB_MAX_OVERFLOW``
connections (and two for its caches' polls) and runs as many request threads, or
``DIDHUB_REQUEST_THREADS`` (docs/operations.md, "Sizing").
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from didhub.config import get_settings
from didhub.db import Database
from didhub.epochs import create_shared
from didhub.logs import configure, uvicorn_config

ENV = "DIDHUB_SERVE_PROCESS"  # what serve() tells its processes (JSON)


def _spec() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(os.environ[ENV])
    return found


def _database() -> Database:
    db = Database.from_settings(get_settings())
    db.share_epochs(Path(_spec()["epochs"]))
    return db


def worker_app() -> FastAPI:
    """One API process (uvicorn's app factory)."""
    from didhub.api.app import create_app

    settings = get_settings()
    server = create_app(settings, _database(), jobs=False, access_log=_spec()["access_log"])
    gc.collect()
    gc.freeze()  # as one process does (cli.serve)
    return server


def run_jobs() -> None:
    """The jobs process: the periodic jobs until SIGTERM or SIGINT."""
    from didhub.api.app import job_runner

    settings = get_settings()
    configure(settings.log_format, settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner = job_runner(_database(), settings)
    if runner is None:
        return
    runner.start()
    stop.wait()
    runner.stop()


def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Run ``workers`` API processes and the jobs process until interrupted."""
    import uvicorn

    settings = get_settings()
    run_dir = Path(tempfile.mkdtemp(prefix="didhub-serve-"))
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir()
    epochs = run_dir / "epochs"
    # A slot per process alive at once: the workers, the jobs, and restarts.
    create_shared(epochs, 2 * workers + 4)
    # Inherited by every process started from here (spawned: fresh interpreters).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ[ENV] = json.dumps({"epochs": str(epochs), "access_log": access_log})
    jobs = multiprocessing.get_context("spawn").Process(target=run_jobs, name="didhub-jobs")
    jobs.start()
    try:
        uvicorn.run(
            "didhub.api.workers:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            log_config=uvicorn_config(settings.log_format, settings.log_level),
        )
    finally:
        if jobs.is_alive():
            jobs.terminate()  # SIGTERM: the runner stops between jobs
        jobs.join(90)
        shutil.rmtree(run_dir, ignore_errors=True)
