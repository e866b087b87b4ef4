"""What every router needs: the database, the carrier, settings, and the caller."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from didhub.accounts import service as accounts
from didhub.carriers.base import Carrier
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import Unauthorized
from didhub.idempotency import HEADER
from didhub.inputs import check_text
from didhub.outbound.funds_cache import FundsCache
from didhub.outbound.service import Snapshot
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
    # Outbound lookups' static part by SIP username (outbound/service.py).
    callers: RouteCache[Snapshot]
    # API keys' scopes by the key's digest: cleared by any commit that writes
    # api_keys or accounts (a revocation, a new tenant), here at once and in
    # every other process within DIDHUB_ROUTING_CACHE_SECONDS (routing/cache.py).
    scopes: RouteCache[Scope]
    # Outbound lookups' money part by payer and tenant (outbound/funds_cache.py).
    funds: FundsCache
    # Who may use the SIP edge's endpoints.
    edge: EdgeAuth


# Dependencies that neither block nor read the database are ``async``: FastAPI
# runs a plain ``def`` dependency in its thread pool, a hop per request.
async def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# The API key, as /openapi.json documents it: a bearer token, or the same key
# in X-API-Key (either is enough).
bearer_auth = HTTPBearer(
    scheme_name="bearerAuth",
    auto_error=False,
    description="An API key: `Authorization: Bearer <key>`.",
)
api_key_auth = APIKeyHeader(
    name="X-API-Key",
    scheme_name="apiKeyAuth",
    auto_error=False,
    description="The same API key in `X-API-Key`, instead of `Authorization`. Sent "
    "together, the two must carry the same key, or the answer is 401.",
)


def _bearer(token: str | None, x_api_key: str | None) -> str | None:
    """The presented key. Neither header overrides the other: a stray header
    beside a valid key must not decide whose request this is."""
    token = token.strip() if token else None
    x_api_key = x_api_key.strip() if x_api_key else None
    if token and x_api_key and not hmac.compare_digest(token.encode(), x_api_key.encode()):
        raise Unauthorized("Authorization and X-API-Key carry different keys; send one of them")
    return token or x_api_key


async def get_scope(
    ctx: Annotated[Context, Depends(get_context)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_auth)] = None,
    x_api_key: Annotated[str | None, Security(api_key_auth)] = None,
) -> Scope:
    """The caller's scope, from memory when the key was seen since the last
    change to keys or accounts (no thread hop, no database); else read in a
    worker thread, which keeps it. Only valid keys are kept: an unknown or
    revoked one is asked of the database every time."""
    secret = _bearer(bearer.credentials if bearer else None, x_api_key)
    if not secret:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    digest = accounts.key_digest(secret)
    kept = ctx.scopes.hit(digest)
    if kept is not None:
        return kept

    def read() -> Scope:
        with ctx.db.read_session() as session:
            return accounts.authenticate(session, secret)

    return await run_in_threadpool(ctx.scopes.get, digest, read)


async def get_idempotency_key(
    key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> str | None:
    if key is not None:
        check_text(key, HEADER)
    return key


Ctx = Annotated[Context, Depends(get_context)]
Caller = Annotated[Scope, Depends(get_scope)]
IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]


async def require_edge(
    request: Request,
    ctx: Annotated[Context, Depends(get_context)],
    # Documented as the edgeToken security scheme (api/contract.py).
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    refusal = ctx.edge.refusal(request.client.host if request.client else "", authorization)
    if refusal is not None:
        raise refusal


Edge = Annotated[None, Depends(require_edge)]
