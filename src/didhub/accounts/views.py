"""Accounts in the dashboard: sign-in and sign-out, a partner's switch into a
tenant's view, Tenants, Agents, and the Settings page (default CNAM, unassigned
numbers). Every action calls the service the API's route calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from didhub.accounts import service as accounts
from didhub.accounts import settings as account_settings
from didhub.accounts.models import Account
from didhub.accounts.settings import UnassignedBehaviour
from didhub.api.deps import Context, Ctx
from didhub.config import Settings
from didhub.errors import DidhubError, TooManyRequests, Unauthorized, ValidationFailed
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.tenancy import TENANT, Scope
from didhub.web import session
from didhub.web.common import (
    PREFIX,
    Who,
    error_text,
    field_errors,
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
    return render(request, "accounts/login.html", next=safe_next(next, ""), method="password")


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
            "accounts/login.html",
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


def _tenants_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: object
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        tenants = accounts.list_tenants(db_session, viewer.scope)
        counts = numbers.count_by_tenant(db_session, viewer.scope)
    return render(
        request,
        "accounts/tenants.html",
        viewer,
        status_code=status_code,
        tenants=tenants,
        counts=counts,
        **extra,
    )


@router.get("/tenants", response_model=None)
def tenants(request: Request, ctx: Ctx, viewer: Who) -> Response:
    if not viewer.is_partner:
        return go(request, f"{PREFIX}/dids")
    return _tenants_page(request, ctx, viewer)


@router.post("/tenants", response_model=None)
def create_tenant(
    request: Request, ctx: Ctx, viewer: Who, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        with ctx.db.session() as db_session:
            tenant = accounts.create_tenant_for(
                db_session, viewer.scope, name, ctx.settings.currency
            )
    except DidhubError as exc:
        return _tenants_page(
            request, ctx, viewer, exc.status_code, error=error_text(exc), name=name
        )
    session.flash(request, "success", f"Tenant {tenant.name} created.")
    return go(request, f"{PREFIX}/tenants")


def _agents_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: object
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        agents = accounts.list_agents(db_session, viewer.scope)
        tenants = accounts.list_tenants(db_session, viewer.scope)
    names = {t.id: t.name for t in tenants}
    return render(
        request,
        "accounts/agents.html",
        viewer,
        status_code=status_code,
        agents=agents,
        tenants=tenants,
        names=names,
        **extra,
    )


@router.get("/agents", response_class=HTMLResponse)
def agents(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _agents_page(request, ctx, viewer)


@router.post("/agents", response_model=None)
def create_agent(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    name: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
    sip_uri: Annotated[str, Form()] = "",
) -> Response:
    # A tenant's agents are its own: in a tenant's view there is no choice.
    tenant = tenant_id if viewer.is_partner else viewer.scope.account_id
    try:
        with ctx.db.session() as db_session:
            agent = accounts.create_agent(
                db_session, viewer.scope, tenant, name, sip_uri.strip() or None
            )
    except DidhubError as exc:
        return _agents_page(
            request,
            ctx,
            viewer,
            exc.status_code,
            error=error_text(exc),
            name=name,
            chosen=tenant_id,
            sip_uri=sip_uri,
        )
    session.flash(request, "success", f"Agent {agent.name} created.")
    return go(request, f"{PREFIX}/agents")


@router.post("/agents/{agent_id}/sip-uri", response_model=None)
def set_agent_sip_uri(
    request: Request, ctx: Ctx, viewer: Who, agent_id: str, sip_uri: Annotated[str, Form()] = ""
) -> Response:
    """Where the SIP edge relays the agent's calls (empty: nowhere), as
    ``PATCH /accounts/agents/{id}``."""
    try:
        with ctx.db.session() as db_session:
            agent = accounts.update_agent(
                db_session, viewer.scope, agent_id, sip_uri=sip_uri.strip() or None
            )
    except DidhubError as exc:
        return _agents_page(
            request, ctx, viewer, exc.status_code, errors={agent_id: error_text(exc)},
            edited={agent_id: sip_uri},
        )  # fmt: skip
    text = (
        f"Calls for {agent.name} now go to {agent.sip_uri}."
        if agent.sip_uri
        else f"{agent.name} has no SIP URI now."
    )
    session.flash(request, "success", text)
    return go(request, f"{PREFIX}/agents")


SETTING_SOURCES = {
    "tenant": "the tenant's setting",
    "partner": "the partner's setting",
    "platform": "the platform's default",
    "none": "nobody has set one",
}


def describe_behaviour(behaviour: UnassignedBehaviour) -> str:
    """What a call to an unrouted number gets, in words."""
    if behaviour.action == account_settings.ANNOUNCEMENT:
        return f"Plays “{behaviour.text}”"
    if behaviour.action == account_settings.VOICEMAIL:
        return f"Goes to voicemail box {behaviour.mailbox}"
    if behaviour.action == account_settings.FORWARD:
        return f"Is forwarded to {behaviour.destination}"
    return "Is rejected"


def unassigned_behaviour(session: Session, settings: Settings, account_id: str) -> str:
    """What a call to an unrouted number of ``account_id`` (a tenant, or a
    partner's unassigned stock) gets, in words: the account's setting, else its
    partner's, else the platform's announcement."""
    inherited = account_settings.unassigned_for_number(session, settings, account_id, None)
    assert isinstance(inherited.value, UnassignedBehaviour)
    return describe_behaviour(inherited.value)


INHERIT = "inherit"


@dataclass
class SettingsForm:
    """An account's own default CNAM and unassigned behaviour (empty /
    ``inherit``: take the partner's or the platform's)."""

    default_cnam: str = ""
    unassigned_action: str = INHERIT  # inherit | announcement | voicemail | forward | reject
    unassigned_text: str = ""
    unassigned_mailbox: str = ""
    unassigned_destination: str = ""

    def change(self) -> account_settings.SettingsChange:
        behaviour: UnassignedBehaviour | None = None
        action = self.unassigned_action
        if action != INHERIT:
            # Each action takes only its own field; the service validates it.
            behaviour = UnassignedBehaviour(
                action,
                text=self.unassigned_text if action == account_settings.ANNOUNCEMENT else None,
                mailbox=self.unassigned_mailbox if action == account_settings.VOICEMAIL else None,
                destination=(
                    self.unassigned_destination if action == account_settings.FORWARD else None
                ),
            )
        return account_settings.SettingsChange(
            default_cnam=self.default_cnam.strip() or None, unassigned=behaviour
        )


def _kind(scope: Scope, account_id: str) -> str | None:
    # The caller's own account, else (a partner) one of its tenants, as the API's
    # /settings and /tenants/{id}/settings.
    return None if account_id == scope.account_id else TENANT


def load_settings(
    session: Session, config: Settings, scope: Scope, account_id: str
) -> tuple[account_settings.AccountSettingsView, SettingsForm]:
    """An account's settings view (own values and what applies) and its form."""
    view = account_settings.get_settings(
        session, config, scope, account_id, _kind(scope, account_id)
    )
    own = view.unassigned
    form = SettingsForm(
        default_cnam=view.default_cnam or "",
        unassigned_action=own.action if own else INHERIT,
        unassigned_text=(own.text or "") if own else "",
        unassigned_mailbox=(own.mailbox or "") if own else "",
        unassigned_destination=(own.destination or "") if own else "",
    )
    return view, form


def save_settings(
    ctx: Context, scope: Scope, account_id: str, form: SettingsForm
) -> list[tuple[str, str]]:
    """Save an account's default CNAM and unassigned behaviour; the messages to show."""
    with ctx.db.session() as db_session:
        before = account_settings.get_settings(
            db_session, ctx.settings, scope, account_id, _kind(scope, account_id)
        )
    change = form.change()
    view = cnam.change_settings(
        ctx.db, ctx.carrier, ctx.settings, scope, account_id, change, _kind(scope, account_id)
    )
    messages = [("success", "Settings saved.")]
    if view.default_cnam != before.default_cnam:
        messages.append(("info", cnam.CACHE_NOTICE))
    return messages


def _settings_page(
    request: Request,
    ctx: Ctx,
    viewer: session.Viewer,
    account_id: str,
    status_code: int = 200,
    submitted: SettingsForm | None = None,
    error: DidhubError | None = None,
) -> HTMLResponse:
    """The account, who may sign in, and the settings of the account acted as
    or (a partner) of one of its tenants. ``submitted`` re-shows a form that
    failed."""
    with ctx.db.read_session() as db_session:
        home = db_session.get_one(Account, viewer.home.account_id)
        users = accounts.list_users(db_session, viewer.home.account_id)
        keys = accounts.list_api_keys(db_session, viewer.home.account_id)
        tenants = accounts.list_tenants(db_session, viewer.scope) if viewer.is_partner else []
        account_id = account_id or viewer.scope.account_id
        target, view, form, problem = None, None, None, None
        try:
            view, form = load_settings(db_session, ctx.settings, viewer.scope, account_id)
            target = db_session.get_one(Account, view.account_id)
        except DidhubError as exc:
            problem = error_text(exc)
    return render(
        request,
        "accounts/settings.html",
        viewer,
        status_code=status_code,
        home=home,
        users=users,
        keys=[k for k in keys if k.revoked_at is None],
        tenants=tenants,
        target=target,
        view=view,
        form=submitted or form,
        sources=SETTING_SOURCES,
        effective_behaviour=describe_behaviour(view.effective_unassigned) if view else None,
        error=error_text(error) if error else problem,
        errors=field_errors(error) if error else {},
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, ctx: Ctx, viewer: Who, account_id: str = "") -> HTMLResponse:
    return _settings_page(request, ctx, viewer, account_id)


@router.post("/settings/account", response_model=None)
def save_settings_form(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    account_id: Annotated[str, Form()] = "",
    default_cnam: Annotated[str, Form()] = "",
    unassigned_action: Annotated[str, Form()] = INHERIT,
    unassigned_text: Annotated[str, Form()] = "",
    unassigned_mailbox: Annotated[str, Form()] = "",
    unassigned_destination: Annotated[str, Form()] = "",
) -> Response:
    target = account_id or viewer.scope.account_id
    form = SettingsForm(
        default_cnam, unassigned_action, unassigned_text, unassigned_mailbox, unassigned_destination
    )
    try:
        messages = save_settings(ctx, viewer.scope, target, form)
    except DidhubError as exc:
        return _settings_page(
            request, ctx, viewer, target, status_code=exc.status_code, submitted=form, error=exc
        )
    for kind, text in messages:
        session.flash(request, kind, text)
    return go(request, f"{PREFIX}/settings?account_id={target}")


# ------------------------------------------------------------------ people


def _people_page(
    request: Request, ctx: Ctx, viewer: session.Viewer, status_code: int = 200, **extra: object
) -> HTMLResponse:
    with ctx.db.read_session() as db_session:
        users = accounts.list_users(db_session, viewer.home.account_id)
        invitations = accounts.list_invitations(db_session, viewer.home.account_id)
    return render(
        request,
        "accounts/people.html",
        viewer,
        status_code=status_code,
        users=users,
        invitations=invitations,
        roles=ROLE_WORDS,
        **extra,
    )


# The roles in words (docs/dashboard.md, "People and roles").
ROLE_WORDS = {
    accounts.ADMIN: "Admin: everything, including inviting people",
    accounts.BILLING: "Billing: top-ups, the card and auto-recharge; sees the rest",
    accounts.READ_ONLY: "Read-only: sees everything, changes nothing",
}


@router.get("/settings/people", response_class=HTMLResponse)
def people(request: Request, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _people_page(request, ctx, viewer)


@router.post("/settings/people/invite", response_class=HTMLResponse)
def invite(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = accounts.READ_ONLY,
) -> HTMLResponse:
    """The link is shown once, on this answer, to the admin who invited."""
    try:
        with ctx.db.session() as db_session:
            made = accounts.invite_user(
                db_session, viewer.home.account_id, email, role, viewer.signed_in_as
            )
            invited = made.invitation.email
    except DidhubError as exc:
        return _people_page(
            request, ctx, viewer, exc.status_code, error=error_text(exc), email=email, chosen=role
        )
    link = f"{str(request.base_url).rstrip('/')}{PREFIX}/invite/{made.token}"
    return _people_page(request, ctx, viewer, invited=invited, link=link)


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation_page(request: Request, ctx: Ctx, token: str) -> HTMLResponse:
    try:
        with ctx.db.read_session() as db_session:
            invitation = accounts.open_invitation(db_session, token)
            account = db_session.get_one(Account, invitation.account_id)
            shown: dict[str, Any] = {"email": invitation.email, "account_name": account.name}
    except DidhubError as exc:
        return render(
            request, "accounts/invite.html", status_code=exc.status_code, problem=error_text(exc)
        )
    return render(request, "accounts/invite.html", token=token, **shown)


@router.post("/invite/{token}", response_model=None)
def accept_invitation(
    request: Request,
    ctx: Ctx,
    token: str,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Set a password: the user is created and signed in."""
    try:
        if password != confirm:
            raise ValidationFailed("the two passwords differ", field="confirm")
        with ctx.db.session() as db_session:
            user = accounts.accept_invitation(db_session, token, password)
            user_id, email = user.id, user.email
        with ctx.db.session() as db_session:
            session.sign_in(request, db_session, user_id=user_id)
    except DidhubError as exc:
        with ctx.db.read_session() as db_session:
            try:
                invitation = accounts.open_invitation(db_session, token)
                account = db_session.get_one(Account, invitation.account_id)
                shown: dict[str, Any] = {
                    "email": invitation.email,
                    "account_name": account.name,
                    "token": token,
                }
            except DidhubError:
                shown = {}
        return render(
            request,
            "accounts/invite.html",
            status_code=exc.status_code,
            error=error_text(exc),
            problem=None if shown else error_text(exc),
            **shown,
        )
    session.flash(request, "success", f"Welcome! You're signed in as {email}.")
    viewer = session.viewer(request, ctx.db, ctx.settings)
    return go(request, home_url(viewer))
