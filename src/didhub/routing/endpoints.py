"""``GET /routing/inbound/{e164}``: where the SIP edge sends a call.

Answers are kept in the route cache (``routing/cache.py``) as the bytes sent,
404s for numbers we don't hold included, and worked out in one place,
``_answer``. ``FastLookups`` serves lookups before FastAPI's middleware,
routing and dependencies are reached; the endpoint below (the same cache, the
same ``_answer``) serves what it passes on: a refused caller's request or a
malformed number, whose errors FastAPI renders as for every endpoint.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Security
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from didhub import outputs
from didhub.api.contract import edge_token, errors
from didhub.api.deps import Context, Ctx, Edge
from didhub.errors import DidhubError, NotFound
from didhub.outbound import endpoints as outbound_endpoints
from didhub.outputs import Data
from didhub.routing import schemas as route_schemas
from didhub.routing import service as routing
from didhub.routing.schemas import InboundRouteOut

PREFIX = "/routing/inbound/"
OUTBOUND = "/routing/outbound"
_MAX_BODY = 4096  # the lookup's fields are bounded well below this
ROUTE = "/routing/inbound/{e164}"  # the template, as api/observe.py labels a route
access = logging.getLogger("didhub.access")

router = APIRouter(prefix="/routing", tags=["routing"])


def _answer(ctx: Context, e164: str) -> tuple[int, bytes]:
    with ctx.db.read_session() as session:
        try:
            route = routing.inbound(session, ctx.settings, e164)
        except NotFound as exc:
            return exc.status_code, outputs.encode(outputs.error(exc.code, exc.message, exc.field))
    return 200, outputs.encode({"data": route_schemas.inbound_route(route)})


def _lookup(ctx: Context, e164: str) -> tuple[int, bytes]:
    """The answer for ``e164``: kept, or worked out (and kept)."""
    return ctx.routes.get(e164, lambda: _answer(ctx, e164))


@router.get(
    "/inbound/{e164}",
    # Documentation only: the answer is the route cache's bytes (FastLookups).
    response_model=Data[InboundRouteOut],
    responses=errors(401, 403, 404),
    dependencies=[Security(edge_token)],
)
def inbound(e164: str, ctx: Ctx, _edge: Edge) -> Response:
    status, body = _lookup(ctx, e164)
    return Response(body, status_code=status, media_type="application/json")


class FastLookups:
    """ASGI middleware: routing lookups from an allowed caller, answered ahead
    of FastAPI's middleware, routing and dependencies (which cost more than the
    lookup): a kept route on the event loop, any other through the cache in a
    worker thread. A refused caller or a malformed number goes on to the
    endpoint, which renders the error."""

    def __init__(self, app: ASGIApp, ctx: Context, access_log: bool = False) -> None:
        self.app = app
        self.ctx = ctx
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == OUTBOUND
            and self._allowed(scope)
        ):
            await self._outbound(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            e164 = path[len(PREFIX) :]
            if path.startswith(PREFIX) and e164 and "/" not in e164 and self._allowed(scope):
                started = time.perf_counter()
                answer = self.ctx.routes.hit(e164)
                if answer is None:
                    try:
                        answer = await run_in_threadpool(_lookup, self.ctx, e164)
                    except DidhubError:
                        answer = None
                if answer is not None:
                    status, body = answer
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [
                                (b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    if self.access_log:  # the same line as api/observe.py's
                        elapsed = (time.perf_counter() - started) * 1000
                        access.info(
                            "GET %s %s %.1f ms",
                            path,
                            status,
                            elapsed,
                            extra={
                                "route": ROUTE,
                                "status": status,
                                "duration_ms": round(elapsed, 1),
                            },
                        )
                    return
        await self.app(scope, receive, send)

    async def _outbound(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /routing/outbound``: a well-formed body answered here, on
        the event loop when the callers' and the funds' caches both hold it
        (an emergency call never is), else in a worker thread; anything else
        replayed to the endpoint."""
        started = time.perf_counter()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > _MAX_BODY:
                break
        raw = b"".join(chunks)
        body = outbound_endpoints.fast_body(raw) if not more else None
        if body is not None:
            try:
                # Both parts kept: answered here, on the event loop; else in a thread.
                content = outbound_endpoints.kept_answer(self.ctx, body)
                if content is None:
                    content = await run_in_threadpool(outbound_endpoints.answer, self.ctx, body)
            except DidhubError:
                content = None
            if content is not None:
                await self._send(send, 200, outputs.encode(content))
                self._log("POST", OUTBOUND, OUTBOUND, 200, started)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(self, method: str, path: str, route: str, status: int, started: float) -> None:
        if self.access_log:  # the same line as api/observe.py's
            elapsed = (time.perf_counter() - started) * 1000
            access.info(
                "%s %s %s %.1f ms",
                method,
                path,
                status,
                elapsed,
                extra={"route": route, "status": status, "duration_ms": round(elapsed, 1)},
            )

    def _allowed(self, scope: Scope) -> bool:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        client = scope.get("client")
        return self.ctx.edge.refusal(client[0] if client else "", authorization) is None
