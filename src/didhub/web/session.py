"""Dashboard sessions: a signed cookie, a CSRF token per session, and the viewer.

The cookie (Starlette's ``SessionMiddleware``, signed with itsdangerous) holds who
signed in (a user id or an API key id, never a secret), when, the CSRF token, and
the tenant a partner switched into. Every request re-checks that the user still
exists or the key is not revoked, so removing either ends its sessions.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from didhub import keyfile
from didhub.accounts import service as accounts
from didhub.accounts import sessions
from didhub.accounts.models import Account, ApiKey, User
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import DidhubError, NotFound, Unauthorized
from didhub.tenancy import Scope

log = logging.getLogger("didhub.web")

COOKIE = "didhub_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def secret_key(settings: Settings) -> str:
    """``DIDHUB_SECRET_KEY``, or a key generated once into ``secret_key_file``."""
    if settings.secret_key:
        return settings.secret_key
    return keyfile.read_or_create(
        Path(settings.secret_key_file), "a dashboard secret key", "DIDHUB_SECRET_KEY"
    )


class LoginRequired(Exception):
    """No one is signed in (or the session ended): go to the sign-in page."""


class CsrfFailed(Exception):
    pass


def _data(request: Request) -> dict[str, Any]:
    data: dict[str, Any] = request.session
    return data


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created with the session)."""
    data = _data(request)
    token = data.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        data["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every POST carries the session's token: htmx in the ``X-CSRF-Token``
    header, plain forms in a hidden ``csrf_token`` field."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = _data(request).get("csrf")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not (
        isinstance(expected, str)
        and presented
        and hmac.compare_digest(expected.encode(), presented.encode())
    ):
        raise CsrfFailed


def sign_in(
    request: Request, db_session: Session, *, user_id: str | None = None, key_id: str | None = None
) -> None:
    """A fresh session (a new CSRF token too), so a session id planted before
    sign-in is worth nothing after it. The session is also recorded on the
    server (``accounts.sessions``): signing out ends it there, so a copy of
    the cookie is worth nothing after that either."""
    data = _data(request)
    data.clear()
    if user_id is not None:
        data["uid"] = user_id
    if key_id is not None:
        data["kid"] = key_id
    data["sid"] = sessions.start(db_session, user_id=user_id, key_id=key_id)
    data["at"] = int(time.time())
    csrf_token(request)


def sign_out(request: Request, db: Database | None = None) -> None:
    """Forget the cookie's session; with ``db``, end it on the server too."""
    data = _data(request)
    if db is not None and data.get("sid") is not None:
        with db.session() as db_session:
            sessions.end(db_session, data.get("sid"))
    data.clear()


def flash(request: Request, kind: str, text: str) -> None:
    """A message for the next page shown (kind: success | error | info)."""
    data = _data(request)
    data["flash"] = [*data.get("flash", []), [kind, text]][-5:]


def take_flashes(request: Request) -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in _data(request).pop("flash", [])]


@dataclass(frozen=True)
class Viewer:
    """Who is looking. ``scope`` is what the pages act as: the signed-in account,
    or the tenant a partner switched into (``home`` is then the partner)."""

    scope: Scope
    home: Scope
    account_name: str
    home_name: str
    signed_in_as: str
    role: str = accounts.ADMIN  # a user's role; an API key's session is an admin's

    @property
    def is_partner(self) -> bool:
        return self.scope.kind == accounts.PARTNER

    @property
    def switched(self) -> bool:
        return self.scope != self.home


def _signed_in_as(session: Session, data: dict[str, Any]) -> tuple[Scope, str, Account | None, str]:
    """The signed-in scope, who it is in words, and its account row. The rows
    are held while the scope is checked, so the check finds them in the session
    (its identity map keeps only rows someone references) instead of reading
    them again."""
    if isinstance(data.get("uid"), str):
        user = session.get(User, data["uid"])
        account = session.get(Account, user.account_id) if user is not None else None
        scope = accounts.user_scope(session, data["uid"])
        assert user is not None  # user_scope refused a missing user
        return scope, user.email, account, user.role
    if isinstance(data.get("kid"), str):
        key = session.get(ApiKey, data["kid"])
        account = session.get(Account, key.account_id) if key is not None else None
        scope = accounts.key_scope(session, data["kid"])
        assert key is not None
        return scope, f"API key {key.prefix}…", account, accounts.ADMIN
    raise LoginRequired


def viewer(request: Request, db: Database, settings: Settings) -> Viewer:
    data = _data(request)
    started = data.get("at")
    if not isinstance(started, int) or time.time() - started > settings.session_hours * 3600:
        sign_out(request)
        raise LoginRequired
    with db.read_session() as session:
        if not sessions.is_live(session, data.get("sid")):
            sign_out(request)  # signed out elsewhere (or a cookie from before sessions)
            raise LoginRequired
        try:
            home, who, home_account, role = _signed_in_as(session, data)
        except Unauthorized:
            sign_out(request)
            raise LoginRequired from None
        scope, acting = home, home_account
        tenant_id = data.get("as_tenant")
        if isinstance(tenant_id, str):
            try:
                tenant = accounts.get_tenant(session, home, tenant_id)
                if tenant.id != home.account_id:
                    scope, acting = Scope(tenant.id, accounts.TENANT), tenant
            except NotFound:
                data.pop("as_tenant", None)
        assert home_account is not None and acting is not None  # the scope check found them
    return Viewer(scope, home, acting.name, home_account.name, who, role)


def switch_to(request: Request, db: Database, home: Scope, tenant_id: str | None) -> str | None:
    """Act as one of the partner's tenants (``None``: back to the partner).
    Answers the tenant's name."""
    data = _data(request)
    if tenant_id is None:
        data.pop("as_tenant", None)
        return None
    with db.session() as session:
        tenant = accounts.get_tenant(session, home, tenant_id)
        if tenant.id == home.account_id:
            raise DidhubError("you are this tenant already", field="tenant_id")
        data["as_tenant"] = tenant.id
        return tenant.name
