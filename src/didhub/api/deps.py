"""What every router needs: the database, the carrier, settings, and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from didhub.accounts import service as accounts
from didhub.accounts.service import Scope
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
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
