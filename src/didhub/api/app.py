"""The FastAPI application: routers, error shapes, and the shared context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from didhub import __version__, metrics, outputs, web
from didhub.accounts import endpoints as accounts
from didhub.accounts import views as account_views
from didhub.api import contract, observe
from didhub.api.deps import Context
from didhub.billing import endpoints as billing
from didhub.billing import views as billing_views
from didhub.carriers import endpoints as carrier_webhooks
from didhub.carriers.base import Carrier
from didhub.carriers.metering import meter
from didhub.carriers.registry import make_carrier
from didhub.config import Settings, get_settings
from didhub.db import DIRECTORY, Database
from didhub.e911 import endpoints as e911
from didhub.e911 import views as e911_views
from didhub.errors import DidhubError
from didhub.numbers import endpoints as numbers
from didhub.numbers import manage_views as number_manage_views
from didhub.numbers import views as number_views
from didhub.outbound import endpoints as outbound
from didhub.outbound import views as outbound_views
from didhub.outbound.funds_cache import FundsCache
from didhub.outbound.service import Snapshot
from didhub.payments.base import PaymentGateway
from didhub.payments.registry import make_gateway
from didhub.porting import endpoints as porting
from didhub.porting import views as porting_views
from didhub.routing import endpoints as routing
from didhub.routing.cache import Generations, RouteCache
from didhub.routing.edge_auth import EdgeAuth
from didhub.runtime import Runtime
from didhub.telnyx_compat import endpoints as telnyx_compat
from didhub.tenancy import Scope
from didhub.twilio_compat import endpoints as twilio_compat
from didhub.wallet import endpoints as wallet
from didhub.wallet import views as wallet_views
from didhub.webhooks import endpoints as webhooks

log = logging.getLogger("didhub.api")


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # Pydantic names the failing validator's type in the location for unions/models.
    parts = [p for p in parts if not p.startswith("function-")]
    if not parts:
        return "body" if loc and loc[0] == "body" else None
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


class _Runner(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def _job_runner(rt: Runtime) -> _Runner | None:
    """The periodic jobs inside the server: threads on SQLite (one machine),
    a job-queue worker on PostgreSQL (safe beside other servers and workers)."""
    from didhub.jobs.registry import JOBS

    if not rt.settings.serve_jobs or not any(job.every(rt.settings) > 0 for job in JOBS):
        return None
    if rt.db.is_sqlite:
        from didhub.jobs.local import LocalJobs

        return LocalJobs(rt, JOBS)
    from didhub.jobs.queue import QueueWorker

    return QueueWorker(rt, JOBS)


def job_runner(db: Database, settings: Settings) -> _Runner | None:
    """The periodic jobs' runner for a process of their own (``serve --workers``)."""
    return _job_runner(
        Runtime(db, meter(make_carrier(settings, db)), make_gateway(settings, db), settings)
    )


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    carrier: Carrier | None = None,
    gateway: PaymentGateway | None = None,
    jobs: bool = False,
    access_log: bool = False,
) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database.from_settings(settings)
    carrier = meter(carrier or make_carrier(settings, db))
    gateway = gateway or make_gateway(settings, db)
    runner = _job_runner(Runtime(db, carrier, gateway, settings)) if jobs else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Requests run in a fixed number of threads: by default as many as the
        # database pool has connections (a request waits for a thread, never
        # on the pool), or DIDHUB_REQUEST_THREADS.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = settings.requests_at_once
        generations.start()
        funds.start()
        if runner is not None:
            runner.start()
        yield
        if runner is not None:
            runner.stop()
        generations.stop()
        funds.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="didhub",
        version=__version__,
        description="Search, buy, assign and release phone numbers (DIDs).",
        dependencies=[Depends(contract.checked_parameters)],
    )
    generations = Generations(db, settings.routing_cache_seconds)
    routes: RouteCache[tuple[int, bytes]] = RouteCache(
        db, settings.routing_cache_seconds, generations=generations
    )
    callers: RouteCache[Snapshot] = RouteCache(
        db, settings.routing_cache_seconds, generations=generations
    )
    scopes: RouteCache[Scope] = RouteCache(
        db,
        settings.routing_cache_seconds,
        counter=metrics.KEY_CACHE,
        watch=DIRECTORY,
        generations=generations,
    )
    db.directory = RouteCache[Any](
        db,
        settings.routing_cache_seconds,
        counter=metrics.DIRECTORY_CACHE,
        watch=DIRECTORY,
        generations=generations,
    )
    funds = FundsCache(db, settings.routing_cache_seconds)
    app.state.ctx = Context(
        db=db,
        carrier=carrier,
        settings=settings,
        gateway=gateway,
        routes=routes,
        callers=callers,
        scopes=scopes,
        funds=funds,
        edge=EdgeAuth(settings),
    )

    # The dashboard (under /dashboard) answers errors as pages; the API as JSON.
    @app.exception_handler(DidhubError)
    async def _didhub_error(request: Request, exc: DidhubError) -> Response:
        if web.is_dashboard(request):
            title = "Not found" if exc.status_code == 404 else "That didn't work"
            return web.error_page(request, exc.status_code, title, exc.message)
        return JSONResponse(
            outputs.error(exc.code, exc.message, exc.field), status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if web.is_dashboard(request):
            return web.error_page(
                request, 422, "That didn't work", "The form or address was not one we expected."
            )
        errors = exc.errors()
        first: dict[str, Any] = dict(errors[0]) if errors else {}
        loc = tuple(first.get("loc", ()))
        field = _field_of(loc)
        if first.get("type") == "json_invalid":
            field, message = "body", "the request body is not valid JSON"
        elif first.get("type") == "extra_forbidden":
            message = f"unknown field {field!r}"
        else:
            message = f"{field}: {_message(first)}" if field else _message(first)
        return JSONResponse(outputs.error("validation_error", message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if web.is_dashboard(request):
            title = "Page not found" if exc.status_code == 404 else "That didn't work"
            return web.error_page(request, exc.status_code, title, str(exc.detail))
        if exc.status_code == 400:
            # The framework's 400s are all bodies it couldn't read: one that isn't
            # even text is as invalid JSON as a malformed one, and a broken
            # multipart form (no boundary, a part without a name) says what.
            text = "the request body is not valid JSON"
            if exc.detail != contract.UNPARSABLE_BODY:
                text = f"the request body is not a valid form: {exc.detail}"
            return JSONResponse(outputs.error("validation_error", text, "body"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": contract.allowed_methods(request)}
        return JSONResponse(
            outputs.error(code, str(exc.detail), None),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        if web.is_dashboard(request):
            return web.error_page(
                request, 500, "Something went wrong", "It was logged. Try again in a moment."
            )
        return JSONResponse(
            outputs.error(
                "internal_error",
                "something went wrong on our side; it was logged. Retrying with the same "
                "Idempotency-Key is safe.",
                None,
            ),
            status_code=500,
        )

    @app.get(
        "/health", tags=["meta"], response_model=contract.HealthOut, responses=contract.errors()
    )
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "carrier": carrier.name}

    app.include_router(observe.router)
    app.include_router(numbers.router)
    app.include_router(accounts.router)
    app.include_router(wallet.router)
    app.include_router(billing.router)
    app.include_router(routing.router)
    app.include_router(outbound.router)
    app.include_router(webhooks.router)
    app.include_router(e911.router)
    app.include_router(carrier_webhooks.router)
    app.include_router(twilio_compat.router)
    app.include_router(telnyx_compat.router)
    app.include_router(porting.router)
    for views in (
        account_views,
        number_views,
        number_manage_views,
        wallet_views,
        billing_views,
        e911_views,
        porting_views,
        outbound_views,
    ):
        app.include_router(views.router)
    web.install(app, settings)
    app.add_middleware(observe.Observe, access_log=access_log)
    # Outermost, so that a cached route skips the middleware and routing above.
    app.add_middleware(routing.FastLookups, ctx=app.state.ctx, access_log=access_log)
    return app
