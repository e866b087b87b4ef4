"""Carrier calls counted and timed (``didhub_carrier_calls_total``,
``didhub_carrier_call_duration_seconds``): each operation of a carrier
adapter, by carrier, operation and outcome.

Outcomes: ``ok``; ``failure`` (``CarrierFailure``: the carrier refused or
couldn't, nothing done); ``unknown`` (``CarrierOutcomeUnknown``); ``error``
(anything else). ``meter`` wraps the adapter's methods on the instance, so
the adapter keeps its type; the multi carrier is metered through its carriers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from didhub import metrics
from didhub.carriers.base import Carrier, CarrierFailure, CarrierOutcomeUnknown
from didhub.carriers.multi import MultiCarrier

OPERATIONS = (
    "lookup",
    "reserve",
    "order",
    "order_status",
    "holds",
    "release",
    "set_cnam",
    "validate_e911_address",
    "provision_e911",
    "remove_e911",
)
# These answer an iterator: counted when it is used up (or closed).
STREAMS = ("search", "owned_numbers")
_MARK = "_didhub_metered"


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, CarrierFailure):
        return "failure"
    if isinstance(exc, CarrierOutcomeUnknown):
        return "unknown"
    return "error"


def _count(carrier: str, operation: str, started: float, exc: BaseException | None) -> None:
    metrics.CARRIER_CALLS.labels(carrier, operation, _outcome(exc)).inc()
    metrics.CARRIER_SECONDS.labels(carrier, operation).observe(time.perf_counter() - started)


def _call(name: str, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def metered(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            answer = method(*args, **kwargs)
        except BaseException as exc:
            _count(name, operation, started, exc)
            raise
        _count(name, operation, started, None)
        return answer

    return metered


def _stream(name: str, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def metered(*args: Any, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            yield from method(*args, **kwargs)
        except GeneratorExit:
            raise
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _count(name, operation, started, failure)

    return metered


def meter(carrier: Carrier) -> Carrier:
    """Count ``carrier``'s calls (once, however often it is asked)."""
    if isinstance(carrier, MultiCarrier):
        for each in carrier.carriers:
            meter(each)
        return carrier
    if getattr(carrier, _MARK, False):
        return carrier
    for operation in (*OPERATIONS, *STREAMS):
        method = getattr(carrier, operation, None)
        if method is None:
            continue
        wrap = _stream if operation in STREAMS else _call
        setattr(carrier, operation, wrap(carrier.name, operation, method))
    setattr(carrier, _MARK, True)
    return carrier
