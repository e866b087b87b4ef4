"""The numbers domain's periodic jobs."""

from __future__ import annotations

from datetime import timedelta

from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.runtime import Job, Runtime

# A carrier call younger than this may still be under way in a request.
IN_FLIGHT = timedelta(seconds=60)


def reconcile(rt: Runtime) -> numbers.ReconcileReport:
    return numbers.reconcile(rt.db, rt.carrier, rt.settings, IN_FLIGHT)


def repush_cnam(rt: Runtime) -> cnam.CnamSweepReport:
    return cnam.repush_pending(rt.db, rt.carrier, IN_FLIGHT)


JOBS = [
    Job(
        "numbers.reconcile",
        reconcile,
        lambda s: s.sweep_seconds,
        "expire holds, settle carrier orders and releases whose outcome was lost, "
        "compare the inventory with the carrier's list",
    ),
    Job(
        "numbers.cnam_repush",
        repush_cnam,
        lambda s: s.sweep_seconds,
        "push again caller names whose carrier answer was lost",
    ),
]
