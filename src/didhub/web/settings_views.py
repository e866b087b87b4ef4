"""CNAM, E911 and tenant settings in the dashboard: the Edit DID modal, the
Settings page, and the CNAM / E911 / unassigned-behaviour columns.

WIRING. The services for CNAM, E911 addresses and tenant settings (default
CNAM, unassigned-number behaviour) are being built on another branch
(``didhub.numbers`` and ``didhub.e911``). Until they merge, this module is the
one place that knows about them: the templates and routes are complete, and
the six functions marked ``WIRING`` below are what gets connected, each to one
service call. Nothing here stores CNAM or E911 data of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from didhub.accounts import service as accounts
from didhub.accounts.models import Account
from didhub.accounts.service import Scope
from didhub.api import presenters
from didhub.api.deps import Context, Ctx
from didhub.config import Settings
from didhub.errors import DidhubError
from didhub.numbers import service as numbers
from didhub.web import session
from didhub.web.common import (
    PREFIX,
    Who,
    error_text,
    go,
    home_url,
    make_router,
    phone,
    render,
    safe_next,
)

router = make_router()

# WIRING: True once the functions below call the CNAM/E911/tenant-settings
# services; the templates then drop their "not connected yet" notes.
FEATURES_CONNECTED = False

NOT_CONNECTED = (
    "CNAM, E911 and tenant settings are not connected on this server yet: nothing was saved."
)


class NotConnected(DidhubError):
    status_code = 501
    code = "not_connected"


@dataclass(frozen=True)
class DidFeatures:
    """What the inventory shows of a number's CNAM and E911."""

    cnam: str | None = None
    e911: str | None = None  # the address on one line
    e911_status: str | None = None  # e.g. valid, pending, invalid


@dataclass
class DidForm:
    """The Edit DID modal's fields."""

    cnam: str = ""
    street: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = "US"
    # A normalized address the validator suggests; the user accepts or edits it.
    suggestion: str | None = None


@dataclass
class TenantSettingsForm:
    default_cnam: str = ""
    unassigned_action: str = "announcement"  # announcement | agent
    announcement: str = ""
    agent_id: str = ""
    agents: list[Any] = field(default_factory=list)


# ------------------------------------------------------------------ WIRING


def did_features(session: Session, scope: Scope, number_ids: list[str]) -> dict[str, DidFeatures]:
    """WIRING: CNAM and E911 of these numbers, in one query, for the inventory's
    columns. Numbers missing from the answer show "—"."""
    return {}


def load_did(session: Session, scope: Scope, number_id: str) -> DidForm:
    """WIRING: the number's CNAM and E911 address for the Edit DID modal."""
    numbers.get_number(session, scope, number_id)
    return DidForm()


def save_did(ctx: Context, scope: Scope, number_id: str, form: DidForm) -> str:
    """WIRING: set the number's CNAM (empty: inherit the tenant's default) and
    E911 address (validated; a suggested address comes back in ``form.suggestion``
    via a ``DidhubError`` the modal shows). Answers the success message."""
    raise NotConnected(NOT_CONNECTED)


def load_tenant_settings(session: Session, scope: Scope, tenant_id: str) -> TenantSettingsForm:
    """WIRING: the tenant's default CNAM and unassigned-number behaviour."""
    accounts.get_tenant(session, scope, tenant_id)
    return TenantSettingsForm()


def save_tenant_settings(
    ctx: Context, scope: Scope, tenant_id: str, form: TenantSettingsForm
) -> str:
    """WIRING: save the tenant's default CNAM and unassigned-number behaviour."""
    raise NotConnected(NOT_CONNECTED)


def unassigned_behaviour(session: Session, settings: Settings, tenant_id: str | None) -> str:
    """WIRING: what a call to a number with no inbound agent gets, in words
    (the tenant's setting; for now the platform's default announcement)."""
    return f"Plays “{settings.unassigned_announcement}”"


# ------------------------------------------------------------------ Edit DID


def _edit_context(ctx: Ctx, viewer: session.Viewer, number_id: str) -> dict[str, Any]:
    with ctx.db.session() as db_session:
        number = numbers.get_number(db_session, viewer.scope, number_id)
        shaped = presenters.phone_numbers(db_session, [number])[0]
        form = load_did(db_session, viewer.scope, number_id)
    return {"number": shaped, "form": form, "connected": FEATURES_CONNECTED}


@router.get("/numbers/{number_id}/edit", response_class=HTMLResponse)
def edit_did_form(
    request: Request, ctx: Ctx, viewer: Who, number_id: str, next: str = ""
) -> HTMLResponse:
    return render(
        request,
        "_edit_modal.html",
        viewer,
        next=safe_next(next, home_url(viewer)),
        **_edit_context(ctx, viewer, number_id),
    )


@router.post("/numbers/{number_id}/edit", response_model=None)
def edit_did(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    number_id: str,
    cnam: Annotated[str, Form()] = "",
    street: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    city: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "",
    postal_code: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "US",
    next: Annotated[str, Form()] = "",
) -> Response:
    form = DidForm(cnam, street, unit, city, state, postal_code, country)
    context = _edit_context(ctx, viewer, number_id)
    try:
        text = save_did(ctx, viewer.scope, number_id, form)
    except DidhubError as exc:
        context["form"] = form
        return render(
            request,
            "_edit_modal.html",
            viewer,
            status_code=exc.status_code,
            next=safe_next(next, home_url(viewer)),
            error=error_text(exc),
            **context,
        )
    session.flash(request, "success", text or f"{phone(context['number']['phone_number'])} saved.")
    return go(request, safe_next(next, home_url(viewer)))


# ------------------------------------------------------------------ Settings


def _settings_page(
    request: Request,
    ctx: Ctx,
    viewer: session.Viewer,
    tenant_id: str,
    status_code: int = 200,
    submitted: TenantSettingsForm | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """The account, who may sign in, and one tenant's settings (a partner picks
    which; a tenant sees its own). ``submitted`` re-shows a form that failed."""
    with ctx.db.session() as db_session:
        home = db_session.get_one(Account, viewer.home.account_id)
        users = accounts.list_users(db_session, viewer.home.account_id)
        keys = accounts.list_api_keys(db_session, viewer.home.account_id)
        tenants = accounts.list_tenants(db_session, viewer.scope) if viewer.is_partner else []
        if not viewer.is_partner:
            tenant_id = viewer.scope.account_id
        elif not tenant_id and tenants:
            tenant_id = tenants[0].id
        tenant, form = None, None
        if tenant_id:
            try:
                tenant = accounts.get_tenant(db_session, viewer.scope, tenant_id)
                form = submitted or load_tenant_settings(db_session, viewer.scope, tenant.id)
                form.agents = accounts.list_agents(db_session, viewer.scope, tenant.id)
            except DidhubError as exc:
                error = error or error_text(exc)
        current = unassigned_behaviour(db_session, ctx.settings, tenant.id if tenant else None)
    return render(
        request,
        "settings.html",
        viewer,
        status_code=status_code,
        home=home,
        users=users,
        keys=[k for k in keys if k.revoked_at is None],
        tenants=tenants,
        tenant=tenant,
        form=form,
        current_behaviour=current,
        connected=FEATURES_CONNECTED,
        error=error,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, ctx: Ctx, viewer: Who, tenant_id: str = "") -> HTMLResponse:
    return _settings_page(request, ctx, viewer, tenant_id)


@router.post("/settings/tenant", response_model=None)
def save_settings(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    tenant_id: Annotated[str, Form()] = "",
    default_cnam: Annotated[str, Form()] = "",
    unassigned_action: Annotated[str, Form()] = "announcement",
    announcement: Annotated[str, Form()] = "",
    agent_id: Annotated[str, Form()] = "",
) -> Response:
    target = tenant_id if viewer.is_partner else viewer.scope.account_id
    form = TenantSettingsForm(default_cnam, unassigned_action, announcement, agent_id)
    try:
        text = save_tenant_settings(ctx, viewer.scope, target, form)
    except DidhubError as exc:
        return _settings_page(
            request,
            ctx,
            viewer,
            target,
            status_code=exc.status_code,
            submitted=form,
            error=error_text(exc),
        )
    session.flash(request, "success", text or "Settings saved.")
    return go(request, f"{PREFIX}/settings?tenant_id={target}")
