"""How a call is rated, for usage and for resale alike: billable seconds (an
increment, a minimum), the charge to the ten-thousandth, and the minutes shown."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_UP, Decimal

from didhub.config import Settings

RATE_PLACES = Decimal("0.0001")


def billable_seconds(duration: int, increment: int, minimum: int) -> int:
    if duration <= 0:
        return 0
    seconds = max(duration, minimum)
    return -(-seconds // increment) * increment


def billable_minutes(billable: Iterable[int]) -> int:
    """The minutes a set of calls is shown as, given each call's billable
    seconds: each call's whole minutes, a started minute counting (66 s is 2).
    Counted per call, so the minutes of a usage transaction are the sum of the
    minutes its invoice lines show; the charge itself is per billable second."""
    return sum(-(-seconds // 60) for seconds in billable)


def rate_for(settings: Settings, number_type: str, direction: str) -> Decimal:
    return settings.usage_rates.get(number_type, {}).get(direction, Decimal("0"))


def charge_for(rate: Decimal, seconds: int) -> Decimal:
    """Exact to the ten-thousandth: rates have 4 places, so rate × seconds / 60 is
    rounded up to 4 places (never in the caller's favour by more than 0.0001)."""
    return (rate * seconds / 60).quantize(RATE_PLACES, rounding=ROUND_UP)
