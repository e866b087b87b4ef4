"""The billing domain's periodic jobs."""

from __future__ import annotations

from didhub.billing.service import renewals
from didhub.runtime import Job, Runtime


def run_renewals(rt: Runtime) -> renewals.RunReport:
    return renewals.run(rt.db, rt.carrier, rt.gateway, rt.settings)


JOBS = [
    Job(
        "billing.renewals",
        run_renewals,
        lambda s: s.sweep_seconds,
        "bill the renewals due today; past due, suspension and release for non-payment",
    ),
]
