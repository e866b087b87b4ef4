"""What every router needs: the database, the carrier, settings, and the caller."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from didhub.accounts import service as accounts
from didhub.accounts.service import Scope
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import Forbidden, Unauthorized
from didhub.idempotency import HEADER
from didhub.payments.base import PaymentGateway


@dataclass
class Context:
    db: Database
    carrier: Carrier
    settings: Settings
    gateway: PaymentGateway


def get_context(request: Request) -> Context:
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
    with ctx.db.session() as session:
        return accounts.authenticate(session, _bearer(authorization, x_api_key))


def get_idempotency_key(
    key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> str | None:
    return key


Ctx = Annotated[Context, Depends(get_context)]
Caller = Annotated[Scope, Depends(get_scope)]
IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]


# Where the SIP edge runs beside didhub (the embedded default) no token is needed,
# but then only this machine may ask: routing answers name tenants and agents,
# and usage records move money.
LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def require_edge(
    request: Request,
    ctx: Annotated[Context, Depends(get_context)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """The SIP edge's credentials: ``DIDHUB_EDGE_TOKEN`` as a bearer token, or,
    with no token configured, a request from this machine."""
    token = ctx.settings.edge_token
    if token is None:
        host = request.client.host if request.client else ""
        if host not in LOCAL_CLIENTS:
            raise Forbidden(
                "requests from other hosts need DIDHUB_EDGE_TOKEN set on the server "
                "and sent as 'Authorization: Bearer <token>'"
            )
        return
    presented = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(presented.encode(), token.encode()):
        raise Unauthorized("the SIP edge token is not valid")


Edge = Annotated[None, Depends(require_edge)]
