"""The wallet's periodic job: card charges the gateway never answered."""

from __future__ import annotations

from didhub.runtime import Job, Runtime
from didhub.wallet import service as wallet


def settle_card_charges(rt: Runtime) -> list[wallet.ChargeOutcome]:
    return wallet.reconcile_charges(rt.db, rt.gateway, rt.settings)


JOBS = [
    Job(
        "wallet.card_charges",
        settle_card_charges,
        lambda s: s.sweep_seconds,
        "ask the payment gateway again about card charges it didn't answer",
    ),
]
