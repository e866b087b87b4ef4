"""The billing domain's periodic jobs."""

from __future__ import annotations

from didhub.billing import renewals
from didhub.billing import wallet as billing_wallet
from didhub.jobs.base import Job, Runtime


def settle_card_charges(rt: Runtime) -> list[billing_wallet.ChargeOutcome]:
    return billing_wallet.reconcile_charges(rt.db, rt.gateway, rt.settings)


def run_renewals(rt: Runtime) -> renewals.RunReport:
    return renewals.run(rt.db, rt.carrier, rt.gateway, rt.settings)


JOBS = [
    Job(
        "billing.card_charges",
        settle_card_charges,
        lambda s: s.sweep_seconds,
        "ask the payment gateway again about card charges it didn't answer",
    ),
    Job(
        "billing.renewals",
        run_renewals,
        lambda s: s.sweep_seconds,
        "bill the renewals due today; past due, suspension and release for non-payment",
    ),
]
