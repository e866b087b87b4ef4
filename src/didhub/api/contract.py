"""What /openapi.json promises beyond each operation's own models: the error
shape and the statuses that answer it, the edge's token, and the check every
request's path and query parameters (and the dashboard's form fields) pass."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from starlette.routing import Match

from didhub.inputs import check_text


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable, e.g. validation_error, not_found")
    message: str = Field(description="For a person; may change")
    field: str | None = Field(description="The input at fault (body field, parameter or header)")


class ErrorBody(BaseModel):
    """Every error's body, whatever its status."""

    error: ErrorDetail


_MEANING = {
    400: "The request is not one this operation takes.",
    401: "No API key, an unknown or revoked one, or Authorization and X-API-Key carrying "
    "different keys.",
    402: "Not enough in the wallet, or the card was declined.",
    403: "The key's account may not do this (e.g. a tenant's key for a partner's action).",
    404: "Not found, or not visible to this key's account.",
    409: "In conflict with the current state (or an Idempotency-Key reused for another "
    "request, or still in flight).",
    422: "Invalid input; `field` names it.",
    429: "Too many requests; retry after the `Retry-After` header's seconds.",
    502: "The carrier or the payment gateway failed or did not answer; nothing was charged "
    "that wasn't delivered.",
    503: "A store didhub keeps files in (porting documents: the data folder or S3) can't be "
    "reached; nothing was written.",
}

# Every operation with an API key: a missing or refused key, and bad input.
KEYED = (401, 422)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an operation: each status it may answer with the
    error body (422 always: any parameter may carry refused text)."""
    return {
        status: {"model": ErrorBody, "description": _MEANING[status]}
        for status in sorted({422, *statuses})
    }


# The SIP edge's endpoints: DIDHUB_EDGE_TOKEN as a bearer token (see
# docs/operations.md); ``deps.require_edge`` checks it, this documents it.
edge_token = HTTPBearer(
    scheme_name="edgeToken",
    auto_error=False,
    description="The SIP edge's token (DIDHUB_EDGE_TOKEN), not an API key: "
    "`Authorization: Bearer <token>`.",
)


async def checked_parameters(request: Request) -> None:
    """Path and query parameters, and a dashboard form's fields, hold no refused
    text (``didhub.inputs``): a 422 (or the dashboard's error page) naming it."""
    for name, value in request.path_params.items():
        check_text(value, name)
    for name, value in request.query_params.multi_items():
        check_text(name, name)
        check_text(value, name)
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        # FastAPI read (and Starlette kept) the form before the dependencies ran.
        form = await request.form()
        for name, value in form.multi_items():
            check_text(name, name)
            if isinstance(value, str):
                check_text(value, name)


def accepted(model: type[BaseModel], why: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a 202: the same body as the 200, the outcome not yet known."""
    return {202: {"model": model, "description": why}}


class HealthOut(BaseModel):
    status: str
    version: str
    carrier: str


# FastAPI's 400 for a body it couldn't read as text at all.
UNPARSABLE_BODY = "There was an error parsing the body"


def allowed_methods(request: Request) -> str:
    """A 405's ``Allow``: every method of every route at this path (Starlette
    names only the first route's, and GET and POST of a path are two routes)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))
