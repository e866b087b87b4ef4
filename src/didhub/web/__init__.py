"""The dashboard: server-rendered Jinja2 pages with htmx, served by the API's app
under ``/dashboard``. Every action calls the same service function as the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from didhub.config import Settings
from didhub.web import session
from didhub.web.common import HERE, PREFIX, is_htmx, render

# Pages may load only what didhub serves; nothing may frame them.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
# With the Stripe gateway, Stripe.js is the one external script: it is loaded
# from js.stripe.com, draws the card field in its own frame and sends the card
# to api.stripe.com, so card numbers never reach didhub (Stripe's CSP guide).
STRIPE_CSP = (
    "default-src 'self'; img-src 'self' data: https://*.stripe.com; style-src 'self'; "
    "script-src 'self' https://js.stripe.com; frame-src https://js.stripe.com "
    "https://hooks.stripe.com; connect-src 'self' https://api.stripe.com; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def uses_stripe_elements(settings: Settings) -> bool:
    return settings.payment_gateway == "stripe" and bool(settings.stripe_publishable_key)


def csp_for(settings: Settings) -> str:
    return STRIPE_CSP if uses_stripe_elements(settings) else CSP


def is_dashboard_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def is_dashboard(request: Request) -> bool:
    return is_dashboard_path(request.url.path)


class DashboardHeaders:
    """The dashboard's security headers on its own responses. Plain ASGI, so
    that API requests (routing lookups among them) pass straight through."""

    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not is_dashboard_path(path):
            await self.app(scope, receive, send)
            return
        static = path.startswith(f"{PREFIX}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard's frame on the app: session cookies, security
    headers, static files, sign-in redirects (each domain's ``views.py``
    router is included by the app factory)."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session.secret_key(settings),
        session_cookie=session.COOKIE,
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    app.add_middleware(DashboardHeaders, csp=csp_for(settings))

    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

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
