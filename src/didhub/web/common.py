"""What every dashboard view shares: templates and their filters, the viewer
dependency, CSRF on every POST, messages, redirects that work for htmx too."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from didhub import __version__, outputs
from didhub.accounts import service as accounts
from didhub.api.deps import Ctx
from didhub.errors import DidhubError, Forbidden, ValidationFailed
from didhub.inputs import check_amount
from didhub.web import session
from didhub.web.session import Viewer

PREFIX = "/dashboard"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def phone(e164: str | None) -> str:
    """A number the way people of its country write it: (501) 555-0123."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


def money(value: Decimal | str | None, currency: str = "USD", to_cent: bool = False) -> str:
    """The one way the dashboard writes money (``outputs.money_text``): charges
    as exact as they are (a call's $0.0035), balances (``to_cent``) rounded to
    the cent for display."""
    if value is None:
        return ""
    amount = Decimal(outputs.cents(Decimal(value))) if to_cent else Decimal(value)
    return outputs.money_text(amount, currency)


# Lines written before billing lines said things in words.
_OLD_WORDS = {": auto_recharge": ": auto-recharge", ": topup": ": top-up"}


def billing_line(description: str) -> str:
    for raw, words in _OLD_WORDS.items():
        if description.endswith(raw):
            return description.removesuffix(raw) + words
    return description


def when(value: datetime | date | str | None, with_time: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.strftime("%b %-d, %Y %H:%M UTC" if with_time else "%b %-d, %Y")
    return value.strftime("%b %-d, %Y")


templates.env.filters["phone"] = phone
templates.env.filters["money"] = money
templates.env.filters["balance"] = lambda value, currency="USD": money(value, currency, True)
templates.env.filters["amount"] = lambda value: outputs.money(Decimal(value))
templates.env.filters["when"] = when
templates.env.filters["billing_line"] = billing_line
templates.env.globals["PREFIX"] = PREFIX
templates.env.globals["VERSION"] = __version__


# ------------------------------------------------------------------ dependencies


def get_viewer(request: Request, ctx: Ctx) -> Viewer:
    return session.viewer(request, ctx.db, ctx.settings)


Who = Annotated[Viewer, Depends(get_viewer)]

# POSTs anyone may send: signing in and out, switching views, accepting an invitation.
_OPEN_TO_ALL = ("/login", "/logout", "/switch", "/switch/back")
# What the billing role may change, besides those.
_BILLING_PATHS = ("/billing/",)


def check_role(request: Request, ctx: Ctx) -> None:
    """Every dashboard POST is checked against the signer's role, here, once
    (docs/dashboard.md, "People and roles"): read-only changes nothing; billing
    changes only the Billing page (top-ups, the card, auto-recharge); admin
    changes everything."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    path = request.url.path.removeprefix(PREFIX)
    if path in _OPEN_TO_ALL or path.startswith("/invite/"):
        return
    viewer = get_viewer(request, ctx)
    if viewer.role == accounts.ADMIN:
        return
    if viewer.role == accounts.BILLING and path.startswith(_BILLING_PATHS):
        return
    allowed = (
        "billing: top-ups, the card and auto-recharge on the Billing page"
        if viewer.role == accounts.BILLING
        else "read-only: you can look, not change"
    )
    raise Forbidden(f"your role doesn't allow this ({allowed}); ask an admin of your account")


def make_router() -> APIRouter:
    """A dashboard router: out of the OpenAPI document, CSRF and the signer's
    role checked on every POST."""
    return APIRouter(
        prefix=PREFIX,
        include_in_schema=False,
        dependencies=[Depends(session.check_csrf), Depends(check_role)],
    )


def home_url(viewer: Viewer) -> str:
    """A partner lands on its DID Inventory, a tenant on its DIDs page."""
    return f"{PREFIX}/numbers/inventory" if viewer.is_partner else f"{PREFIX}/dids"


# ------------------------------------------------------------------ answers


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page or fragment. Pages also show (and so use up) the pending messages."""
    full_page = not template.startswith("_")
    response = templates.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "csrf_token": session.csrf_token(request),
            "flashes": session.take_flashes(request) if full_page else [],
            **context,
        },
        status_code=status_code,
    )
    return response


def message(
    request: Request,
    kind: str,
    text: str,
    status_code: int = 200,
    *,
    close_modal: bool = True,
) -> HTMLResponse:
    """An htmx answer that shows one message at the top of the page (and, by
    default, empties the modal slot it was aimed at, closing the dialog)."""
    response = render(request, "_message.html", status_code=status_code, kind=kind, text=text)
    if not close_modal:
        response.headers["HX-Reswap"] = "none"
    return response


def go(request: Request, url: str) -> Response:
    """Redirect: a full navigation for htmx requests, a 303 otherwise."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_next(url: str | None, default: str) -> str:
    """Only a dashboard path is a place to go back to (no open redirects)."""
    if url and url.startswith(PREFIX) and not url.startswith("//") and "\\" not in url:
        return url
    return default


def error_text(exc: DidhubError) -> str:
    return exc.message[:1].upper() + exc.message[1:]


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Build an API request shape from form fields; the first problem becomes a
    ``ValidationFailed`` naming the field."""
    try:
        return model(**{k: v for k, v in data.items() if v not in (None, "")})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        text = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationFailed(f"{where}: {text}" if where else text, field=where) from None


def decimal_field(value: str, field: str) -> Decimal:
    try:
        # As the dashboard writes it ($25.00, CA$1,000.00) or bare.
        amount = Decimal(re.sub(r"^[^\d.\-−]*", "", value.strip()).replace(",", ""))
    except ArithmeticError:
        raise ValidationFailed(f"{value!r} is not an amount", field=field) from None
    if not amount.is_finite():
        raise ValidationFailed(f"{value!r} is not an amount", field=field)
    return check_amount(amount, field)


# Inputs named in a service's 422 ``field`` → the form input showing it.
_INPUTS = {
    "unassigned.action": "unassigned_action",
    "unassigned.text": "unassigned_text",
    "unassigned.mailbox": "unassigned_mailbox",
    "unassigned.destination": "unassigned_destination",
    "number_id": "address_id",
}


def field_errors(exc: DidhubError) -> dict[str, str]:
    """The error under the input it is about (a service names the field)."""
    if not exc.field:
        return {}
    return {_INPUTS.get(exc.field, exc.field): error_text(exc)}
