"""The base of every answer's model (each domain's ``schemas.py`` holds its
own, next to its request models).

An answer's model refuses fields it doesn't declare, so a presenter that grows
a field without its model fails every test that reaches it, instead of the
field being dropped on the way out; /openapi.json still leaves answers open
(``additionalProperties`` unset), so adding a field is not a breaking change
for clients."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

T = TypeVar("T")

# As Starlette's JSONResponse renders (one encoder: json.dumps with these
# options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def encode(content: Any) -> bytes:
    """``content`` (JSON types only) as the bytes an answer sends."""
    return _ENCODER.encode(content).encode("utf-8")


def sent(content: Any) -> Response:
    """An answer already in its model's shape, sent without FastAPI validating
    it against the endpoint's response model again (which costs more than
    building it, on the hottest reads); the endpoint keeps its
    ``response_model`` for /openapi.json, and its tests check the answer
    against the model."""
    return Response(encode(content), media_type="application/json")


def _open(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_open)


class Data(ResponseModel, Generic[T]):
    """``{"data": ...}``: most answers."""

    data: T


class Notice(ResponseModel):
    notice: str


class CursorMeta(ResponseModel):
    next_cursor: str | None
    count: int


def error(code: str, message: str, field: str | None) -> dict[str, Any]:
    """Every API error's body."""
    return {"error": {"code": code, "message": message, "field": field}}


def money(value: Decimal) -> str:
    """Two places, or four when per-minute charges left fractions of a cent."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:.4f}"


_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€"}


def money_text(value: Decimal | str, currency: str = "USD") -> str:
    """Money for a person, one way everywhere (the dashboard, messages,
    events): ``$1,234.50``, ``−$2.00``, ``CA$3.00``; a currency without a
    symbol as ``3.00 CHF``."""
    amount = Decimal(value)
    whole, _, cents = money(abs(amount)).partition(".")
    text = f"{int(whole):,}.{cents}"
    sign = "−" if amount < 0 else ""
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def cents(value: Decimal) -> str:
    """To the cent, for a balance shown to a person: display rounding only (half
    to even), the ledger keeps the ten-thousandths (``money`` shows them)."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):.2f}"


def when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def cost(monthly: Decimal, upfront: Decimal, currency: str) -> dict[str, str]:
    return {"monthly_cost": money(monthly), "upfront_cost": money(upfront), "currency": currency}
