"""Sign in (email + password, or an API key), sign out, and a partner's switch
into one of its tenants' view."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.errors import DidhubError, TooManyRequests, Unauthorized
from didhub.web import session
from didhub.web.common import (
    PREFIX,
    Who,
    error_text,
    go,
    home_url,
    make_router,
    render,
    safe_next,
)

router = make_router()


@router.get("", response_model=None)
def dashboard_home(request: Request, viewer: Who) -> Response:
    return go(request, home_url(viewer))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next, ""), method="password")


@router.post("/login", response_model=None)
def login(
    request: Request,
    ctx: Ctx,
    method: Annotated[str, Form()] = "password",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        if method == "api_key":
            with ctx.db.session() as db_session:
                key = accounts.find_key(db_session, api_key.strip())
                session.sign_in(request, db_session, key_id=key.id)
        else:
            if not email.strip() or not password:
                raise Unauthorized("enter your email and password")
            address = request.client.host if request.client else None
            user_id = accounts.sign_in_throttled(ctx.db, email, password, address)
            with ctx.db.session() as db_session:
                session.sign_in(request, db_session, user_id=user_id)
    except DidhubError as exc:
        response = render(
            request,
            "login.html",
            status_code=exc.status_code,
            error=error_text(exc),
            method=method,
            email=email,
            next=safe_next(next, ""),
        )
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    viewer = session.viewer(request, ctx.db, ctx.settings)
    return go(request, safe_next(next, home_url(viewer)))


@router.post("/logout", response_model=None)
def logout(request: Request, ctx: Ctx) -> Response:
    session.sign_out(request, ctx.db)
    session.flash(request, "info", "You signed out.")
    return go(request, f"{PREFIX}/login")


@router.post("/switch", response_model=None)
def switch(
    request: Request, ctx: Ctx, viewer: Who, tenant_id: Annotated[str, Form()] = ""
) -> Response:
    try:
        name = session.switch_to(request, ctx.db, viewer.home, tenant_id)
    except DidhubError as exc:
        session.flash(request, "error", error_text(exc))
        return go(request, f"{PREFIX}/tenants")
    session.flash(request, "info", f"You're now viewing {name}'s dashboard, as its partner.")
    return go(request, f"{PREFIX}/dids")


@router.post("/switch/back", response_model=None)
def switch_back(request: Request, ctx: Ctx, viewer: Who) -> Response:
    session.switch_to(request, ctx.db, viewer.home, None)
    session.flash(request, "info", f"Back to {viewer.home_name}.")
    return go(request, f"{PREFIX}/tenants")
