"""The webhooks domain's periodic job: deliver the outbox."""

from __future__ import annotations

import contextlib

import httpx

from didhub.runtime import Job, Runtime
from didhub.webhooks import delivery


def deliver(rt: Runtime) -> int:
    """POST what is due until a batch comes back short (caught up); returns
    how many deliveries were attempted."""
    settings = rt.settings
    attempted = 0
    # A client (its TLS context costs a millisecond of CPU) only once a batch
    # is due: most runs find nothing.
    with contextlib.ExitStack() as stack:
        client: httpx.Client | None = None
        while True:
            report = delivery.deliver_due(
                rt.db,
                http_client=client,
                max_attempts=settings.webhook_max_attempts,
                timeout=settings.webhook_timeout_seconds,
                allow_private=settings.webhook_allow_private,
            )
            attempted += report.claimed
            if report.claimed < delivery.BATCH:
                return attempted
            if client is None:
                client = stack.enter_context(
                    httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
                )


JOBS = [
    Job(
        "webhooks.deliver",
        deliver,
        lambda s: s.webhook_seconds,
        "POST due webhook deliveries, with retries and backoff",
    ),
]
