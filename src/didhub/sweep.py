"""The server's periodic work: expire holds, settle unknown carrier orders and
card charges, re-push caller names (CNAM) and E911 addresses whose carrier
answer was lost, and bill due renewals. Each step is set-based and safe to repeat,
so one sweeper per SQLite file or several workers on PostgreSQL are both fine
(row locks keep two sweeps from billing one renewal twice). Webhooks go out
from their own, shorter loop, so a slow billing run never delays them."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import httpx

from didhub.billing import renewals
from didhub.billing import wallet as billing_wallet
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.e911 import service as e911
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.payments.base import PaymentGateway
from didhub.webhooks import delivery

log = logging.getLogger("didhub.sweep")


def sweep_once(db: Database, carrier: Carrier, gateway: PaymentGateway, settings: Settings) -> None:
    numbers.reconcile(db, carrier, settings, timedelta(seconds=60))
    cnam.repush_pending(db, carrier, timedelta(seconds=60))
    billing_wallet.reconcile_charges(db, gateway, settings)
    renewals.run(db, carrier, gateway, settings)
    e911.repush_pending(db, carrier, timedelta(seconds=60))


class Sweeper:
    def __init__(
        self, db: Database, carrier: Carrier, gateway: PaymentGateway, settings: Settings
    ) -> None:
        self._args = (db, carrier, gateway, settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="didhub-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        interval = self._args[3].sweep_seconds
        while not self._stop.wait(interval):
            try:
                sweep_once(*self._args)
            except Exception:  # keep sweeping; the next round retries
                log.exception("periodic sweep failed")


class WebhookDeliverer:
    """Every ``webhook_seconds``: POST the deliveries that are due, until none
    are (``webhooks.delivery.deliver_due``; safe beside other workers)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="didhub-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        settings = self._settings
        with httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        ) as client:
            while not self._stop.wait(settings.webhook_seconds):
                try:
                    while not self._stop.is_set():
                        report = delivery.deliver_due(
                            self._db,
                            http_client=client,
                            max_attempts=settings.webhook_max_attempts,
                        )
                        if report.claimed < delivery.BATCH:
                            break  # caught up; a full batch means more may be due
                except Exception:  # keep delivering; the next round retries
                    log.exception("webhook delivery failed")
