"""The porting domain's periodic job: ask the carrier how open ports are doing."""

from __future__ import annotations

from didhub.porting import service as porting
from didhub.runtime import Job, Runtime


def sync(rt: Runtime) -> list[str]:
    return porting.sync_open(rt.db, rt.carrier, rt.settings).ported


JOBS = [
    Job(
        "porting.sync",
        sync,
        lambda s: s.sweep_seconds,
        "ask the carrier about open port-in orders; complete those that ported",
    ),
]
