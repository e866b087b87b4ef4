"""What an operator watches (docs/operations.md): request ids and metrics for
every request, the access log line, ``GET /metrics``, ``GET /ready``.

The middleware is plain ASGI (no ``BaseHTTPMiddleware`` task per request) and
sits inside ``routing.FastLookups``, so routing lookups answered on the fast
path don't pay for it; they are counted by ``didhub_routing_cache_lookups``.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from didhub import logs, metrics, migrate
from didhub.api.deps import Ctx
from didhub.errors import Forbidden

log = logging.getLogger("didhub.api.observe")
access = logging.getLogger("didhub.access")

# An id a client (or a proxy in front) sent is kept if it is this sort of text.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _route_of(scope: Scope) -> str:
    """The route template (``/telephony/numbers/{number_id}``), never the raw
    path, so a metric's labels stay few; ``unmatched`` for a 404 with no route."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class Observe:
    """Request id in (``X-Request-ID``, or a new one) and out (the response
    header), in the log context for the request's lines; a count and a
    latency per route template and status; one access line when asked."""

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given is not None and _GOOD_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route, method = _route_of(scope), scope["method"]
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, route).observe(elapsed)
            if self.access_log:
                access.info(
                    "%s %s %s %.1f ms",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            logs.request_id.reset(token)


router = APIRouter(tags=["meta"])


def _may_read_metrics(request: Request, ctx: Ctx) -> bool:
    token = ctx.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        return hmac.compare_digest(given.encode(), expected.encode())
    return request.client is not None and request.client.host in _LOOPBACK


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request, ctx: Ctx) -> Response:
    """Prometheus' text format: with DIDHUB_METRICS_TOKEN set, for a caller
    bearing it; without, for callers on this machine only."""
    if not _may_read_metrics(request, ctx):
        raise Forbidden(
            "metrics are for the operator: send DIDHUB_METRICS_TOKEN as a bearer token, "
            "or ask from this machine"
        )
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/ready", include_in_schema=False)
def ready(ctx: Ctx) -> JSONResponse:
    """200 when the database answers and carries the newest migration; 503
    naming the check that failed otherwise."""
    checks: dict[str, Any] = {}
    try:
        current = migrate.current_revision(ctx.db)
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver's error: not reachable
        log.warning("ready: database unreachable: %s", exc.__class__.__name__)
        checks["database"] = {"ok": False, "error": f"unreachable ({exc.__class__.__name__})"}
        checks["migrations"] = {"ok": False, "error": "unknown: the database is unreachable"}
    else:
        head = migrate.head_revision()
        checks["migrations"] = (
            {"ok": True, "revision": current}
            if current == head
            else {
                "ok": False,
                "revision": current,
                "expected": head,
                "error": "the database is behind: run `didhub migrate`",
            }
        )
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks},
        status_code=200 if ok else 503,
    )
