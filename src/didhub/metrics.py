"""What didhub counts for Prometheus (``GET /metrics``, docs/operations.md).

Every metric lives here, in the process's default registry, so each domain
imports only this module (the kernel) to count what it does. One process, one
set of numbers; under ``didhub serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR``
set, prometheus-client's multiprocess mode) every worker's /metrics adds up all
of that server's processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Latency buckets in seconds: a routing lookup is ~1 ms, a carrier order seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "didhub_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "didhub_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=_BUCKETS,
)
PURCHASES = Counter(
    "didhub_purchases",
    "Number purchases, by outcome (completed, partial, pending, or the error code)",
    ["outcome"],
)
CARRIER_CALLS = Counter(
    "didhub_carrier_calls",
    "Calls to a carrier adapter, by carrier, operation and outcome (ok, failure, unknown, error)",
    ["carrier", "operation", "outcome"],
)
CARRIER_SECONDS = Histogram(
    "didhub_carrier_call_duration_seconds",
    "Time a carrier call took, by carrier and operation",
    ["carrier", "operation"],
    buckets=_BUCKETS,
)
JOB_RUNS = Counter("didhub_job_runs", "Periodic job rounds run, by job", ["job"])
JOB_FAILURES = Counter(
    "didhub_job_failures", "Periodic job rounds that raised an error, by job", ["job"]
)
JOB_SECONDS = Histogram(
    "didhub_job_duration_seconds", "Time a periodic job round took", ["job"], buckets=_BUCKETS
)
WEBHOOK_DELIVERIES = Counter(
    "didhub_webhook_delivery_attempts",
    "Webhook POST attempts recorded, by outcome (delivered, retrying, failed)",
    ["outcome"],
)
ROUTE_CACHE = Counter(
    "didhub_routing_cache_lookups",
    "Routing lookups answered from the route cache (hit) or the database (miss)",
    ["result"],
)
KEY_CACHE = Counter(
    "didhub_api_key_cache_lookups",
    "API keys' scopes answered from memory (hit) or the database (miss)",
    ["result"],
)
DIRECTORY_CACHE = Counter(
    "didhub_directory_cache_lookups",
    "Events' webhook subscribers and numbers' inherited caller names answered from "
    "memory (hit) or the database (miss)",
    ["result"],
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    """The current numbers in Prometheus' text format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
