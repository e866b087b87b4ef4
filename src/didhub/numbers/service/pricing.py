"""Prices and the monthly anniversary a number renews on."""

from __future__ import annotations

import calendar
import functools
from datetime import date

from didhub.config import Price, Settings
from didhub.errors import (
    ValidationFailed,
)


def price_for(settings: Settings, number_type: str) -> Price:
    try:
        return settings.prices[number_type]
    except KeyError:
        raise ValidationFailed(
            f"no price is configured for {number_type} numbers", field="phone_number_type"
        ) from None


@functools.lru_cache(maxsize=65536)
def add_months(start: date, months: int) -> date:
    """The monthly anniversary: the 31st becomes the month's last day."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
