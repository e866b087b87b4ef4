"""What every router needs: the database, the carrier, settings, and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from didhub.accounts import service as accounts
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.idempotency import HEADER
from didhub.payments.base import PaymentGateway
from didhub.routing.cache import RouteCache
from didhub.routing.edge_auth import EdgeAuth
from didhub.tenancy import Scope


@dataclass
class Context:
    db: Database
    carrier: Carrier
    settings: Settings
    gateway: PaymentGateway
    # Inbound routing answers (HTTP status, JSON body), for the SIP edge.
    routes: RouteCache[tuple[int, bytes]]
    # Who may use the SIP edge's endpoints.
    edge: EdgeAuth


# Dependencies that neither block nor read the database are ``async``: FastAPI
# runs a plain ``def`` dependency in its thread pool, a hop per request.
async def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _bearer(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def get_scope(
    ctx: Annotated[Context, Depends(get_context)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Scope:
    with ctx.db.read_session() as session:
        return accounts.authenticate(session, _bearer(authorization, x_api_key))


async def get_idempotency_key(
    key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> str | None:
    return key


Ctx = Annotated[Context, Depends(get_context)]
Caller = Annotated[Scope, Depends(get_scope)]
IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]


async def require_edge(
    request: Request,
    ctx: Annotated[Context, Depends(get_context)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    refusal = ctx.edge.refusal(request.client.host if request.client else "", authorization)
    if refusal is not None:
        raise refusal


Edge = Annotated[None, Depends(require_edge)]
