"""Carriers: where numbers come from. Every carrier implements :class:`Carrier`."""

from didhub.carriers.base import (
    AvailableNumber,
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    NumberOrderResult,
    SearchQuery,
)

__all__ = [
    "AvailableNumber",
    "Carrier",
    "CarrierFailure",
    "CarrierOutcomeUnknown",
    "NumberOrderResult",
    "SearchQuery",
]
