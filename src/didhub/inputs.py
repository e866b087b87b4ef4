"""What any input must be before a service sees it, checked once at the
boundary (API bodies, path and query parameters, dashboard forms, the CLI):

- text holds no NUL byte, no other C0 control but tab, newline and carriage
  return, no DEL and no lone surrogate: PostgreSQL refuses NUL in text and a
  lone surrogate cannot be encoded, so both would otherwise end in a 500;
- amounts are finite and at most ``MAX_AMOUNT`` either way: far beyond any
  price or balance, and short of the 28 digits where ``Decimal`` arithmetic
  (quantizing to cents) stops being exact and raises;
- integers fit the database's BIGINT (``MAX_INT``), ``true``/``false`` are
  not numbers, and only ``true``/``false`` are booleans (not 0, 1 or "yes").

Each refusal is a 422 naming the field. The services keep their own, narrower
rules (two decimal places, a top-up's ceiling, ...).
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from didhub.errors import ValidationFailed

MAX_INT = 2**63 - 1
MAX_AMOUNT = Decimal(10**12)

_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# The same rule as a JSON Schema pattern, for /openapi.json.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def text_problem(value: str) -> str | None:
    """Why ``value`` is refused as text, or ``None``."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "must not contain NUL bytes"
    if "\ud800" <= char <= "\udfff":
        return "must not contain lone surrogates"
    return f"must not contain control characters ({char!r})"


def find_text_problem(value: object, where: str = "") -> tuple[str, str] | None:
    """The first refused text anywhere in a JSON-shaped value (keys included):
    ``(where, why)``, ``where`` being "" for the value itself or like "[2]"."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (where, problem) if problem else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = find_text_problem(key, where) or find_text_problem(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_text_problem(item, f"{where}[{index}]")
            if found:
                return found
    return None


def check_text(value: object, field: str) -> None:
    """Raise a 422 naming ``field`` if ``value`` holds refused text."""
    found = find_text_problem(value)
    if found is not None:
        where, problem = found
        raise ValidationFailed(_described(field + where, problem), field=field)


def check_amount(value: Decimal, field: str) -> Decimal:
    """An amount from text (a form, the CLI): finite and within ``MAX_AMOUNT``."""
    if not value.is_finite():
        raise ValidationFailed(f"{field}: must be a number", field=field)
    if abs(value) > MAX_AMOUNT:
        raise ValidationFailed(f"{field}: must be at most {MAX_AMOUNT} either way", field=field)
    return value


def check_int(value: int, field: str) -> int:
    if abs(value) > MAX_INT:
        raise ValidationFailed(f"{field}: must be at most {MAX_INT}", field=field)
    return value


def _described(where: str, problem: str) -> str:
    return f"{where}: {problem}"


_NUMBERS = (int, float, Decimal)


def _is_number(annotation: Any) -> bool:
    if annotation in _NUMBERS:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return bool not in args and any(arg in _NUMBERS for arg in args)
    return False


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and bool in args


def _holds_model(annotation: Any) -> bool:
    """Whether a field's value is (or contains) a request model, which checks
    its own fields and so names the nested path itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


@functools.cache
def _field_kind(model: type[BaseModel], name: str) -> tuple[bool, bool, bool]:
    """(number, bool, holds a model) for a field: worked out once per field,
    not per request (reading the annotation costs more than the check)."""
    field = model.model_fields.get(name)
    annotation = field.annotation if field is not None else None
    return _is_number(annotation), _is_bool(annotation), _holds_model(annotation)


class RequestModel(BaseModel):
    """Every request body's base: unknown fields refused, text stripped, and
    the rules above applied to every field (nested models name their path)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _safe_input(cls, value: Any, info: ValidationInfo) -> Any:
        is_number, is_bool, holds_model = _field_kind(cls, info.field_name or "")
        if isinstance(value, bool) and is_number:
            raise ValueError("must be a number, not true or false")
        if is_bool and not isinstance(value, bool) and value is not None:
            raise ValueError("must be true or false")
        if holds_model:
            return value
        found = find_text_problem(value)
        if found is not None:
            where, problem = found
            raise ValueError(f"{problem} (at {where.lstrip('.')})" if where else problem)
        return value


# An amount of money in a request body: a JSON number or a decimal string.
Amount = Annotated[Decimal, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
# An integer the database can store (BIGINT).
BigInt = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
