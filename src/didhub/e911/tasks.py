"""The E911 domain's periodic jobs."""

from __future__ import annotations

from datetime import timedelta

from didhub.e911 import service as e911
from didhub.runtime import Job, Runtime


def repush(rt: Runtime) -> list[str]:
    return e911.repush_pending(rt.db, rt.carrier, timedelta(seconds=60))


JOBS = [
    Job(
        "e911.repush",
        repush,
        lambda s: s.sweep_seconds,
        "push again E911 addresses whose carrier answer was lost",
    ),
]
