"""The dashboard: server-rendered Jinja2 pages with htmx, served by the API's app
under ``/dashboard``. Every action calls the same service function as the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from didhub.config import Settings
from didhub.web import (
    accounts_views,
    auth_views,
    billing_views,
    numbers_views,
    session,
    settings_views,
)
from didhub.web.common import HERE, PREFIX, is_htmx, render

# Pages may load only what didhub serves; nothing may frame them.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def is_dashboard(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard on the app: session cookies, static files, pages."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session.secret_key(settings),
        session_cookie=session.COOKIE,
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if is_dashboard(request):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if not request.url.path.startswith(f"{PREFIX}/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    for module in (auth_views, numbers_views, accounts_views, billing_views, settings_views):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)

    @app.exception_handler(session.LoginRequired)
    async def _login_required(request: Request, _: session.LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"{PREFIX}/login" if request.method != "GET" else f"{PREFIX}/login?next={target}"
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    @app.exception_handler(session.CsrfFailed)
    async def _csrf_failed(request: Request, _: session.CsrfFailed) -> Response:
        return error_page(
            request,
            403,
            "This form has expired",
            "The page was open too long or from another site. Reload it and try again.",
        )


def error_page(request: Request, status_code: int, title: str, text: str) -> HTMLResponse:
    """An error as a page (or, for htmx, as a message at the top of the page)."""
    if is_htmx(request):
        return render(
            request, "_message.html", status_code=status_code, kind="error", text=text,
            close_modal=True,
        )  # fmt: skip
    return render(request, "error.html", status_code=status_code, title=title, text=text)
