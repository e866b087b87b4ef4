"""The base of every answer's model (each domain's ``schemas.py`` holds its
own, next to its request models).

An answer's model refuses fields it doesn't declare, so a presenter that grows
a field without its model fails every test that reaches it, instead of the
field being dropped on the way out; /openapi.json still leaves answers open
(``additionalProperties`` unset), so adding a field is not a breaking change
for clients."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


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
