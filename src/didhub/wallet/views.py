"""Billing: the wallet's balance, top-up, the card on file, auto-recharge, the
wallet's transactions and the monthly invoices."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from didhub.api.deps import Ctx
from didhub.billing.service import invoices, renewals
from didhub.errors import DidhubError, Forbidden
from didhub.inputs import MAX_INT
from didhub.wallet import repository as billing
from didhub.wallet import service as wallets
from didhub.web import session, uses_stripe_elements
from didhub.web.common import (
    PREFIX,
    Who,
    decimal_field,
    error_text,
    go,
    make_router,
    money,
    render,
)

router = make_router()

TRANSACTIONS_PAGE = 25


def _page(
    request: Request,
    ctx: Ctx,
    viewer: session.Viewer,
    before: int | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    account_id, currency = viewer.scope.account_id, ctx.settings.currency
    with ctx.db.read_session() as db_session:
        summary = billing.wallet_summary(db_session, account_id, currency)
        lines = billing.transactions(
            db_session, viewer.scope, currency, TRANSACTIONS_PAGE + 1, before
        )
        statements = [
            invoices.build(db_session, ctx.settings, account_id, month)
            for month in invoices.months(db_session, account_id, currency)
        ]
        events = billing.events(db_session, account_id, 8)
    page = lines[:TRANSACTIONS_PAGE]
    return render(
        request,
        "wallet/billing.html",
        viewer,
        status_code=status_code,
        summary=summary,
        lines=page,
        older=page[-1].entry_id if len(lines) > TRANSACTIONS_PAGE else None,
        statements=list(reversed(statements)),
        events=events,
        currency=currency,
        form_key=secrets.token_urlsafe(16),
        sandbox=ctx.settings.payment_gateway == "sandbox",
        stripe_key=ctx.settings.stripe_publishable_key
        if uses_stripe_elements(ctx.settings)
        else None,
        **extra,
    )


@router.get("/billing", response_class=HTMLResponse)
def billing_page(
    request: Request, ctx: Ctx, viewer: Who, before: int | None = Query(None, le=MAX_INT)
) -> HTMLResponse:
    return _page(request, ctx, viewer, before)


def _own_wallet(viewer: session.Viewer) -> None:
    """A tenant's card and wallet are the tenant's: its partner, switched into
    its view, sees them but doesn't charge its card."""
    if viewer.switched:
        raise Forbidden(
            f"{viewer.account_name}'s card and wallet are its own; switch back to "
            f"{viewer.home_name} to manage your billing"
        )


@router.post("/billing/topup", response_model=None)
def topup(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    amount: Annotated[str, Form()] = "",
    form_key: Annotated[str, Form()] = "",
) -> Response:
    """The form's one-time key is the charge's idempotency key: submitting the
    same form twice charges the card once."""
    try:
        _own_wallet(viewer)
        value = decimal_field(amount, "amount")
        done = renewals.topup(
            ctx.db,
            ctx.gateway,
            ctx.settings,
            viewer.scope.account_id,
            value,
            f"dashboard:{form_key}" if form_key else None,
        )
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, status_code=exc.status_code, errors={"topup": error_text(exc)}
        )
    currency = ctx.settings.currency
    text = (
        f"Added {money(done.charge.amount, currency)} to your wallet; "
        f"the balance is {money(done.balance, currency, to_cent=True)}."
    )
    if done.renewals_paid:
        text += f" {done.renewals_paid} overdue renewal(s) paid."
    session.flash(request, "success", text)
    return go(request, f"{PREFIX}/billing")


@router.post("/billing/card", response_model=None)
def save_card(
    request: Request, ctx: Ctx, viewer: Who, card: Annotated[str, Form()] = ""
) -> Response:
    try:
        _own_wallet(viewer)
        saved = wallets.set_card(ctx.db, ctx.gateway, viewer.scope.account_id, card)
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, status_code=exc.status_code, errors={"card": error_text(exc)}
        )
    session.flash(
        request, "success", f"Card {saved.brand.title()} ending {saved.last4} is on file."
    )
    return go(request, f"{PREFIX}/billing")


@router.post("/billing/card/remove", response_model=None)
def remove_card(request: Request, ctx: Ctx, viewer: Who) -> Response:
    try:
        _own_wallet(viewer)
        with ctx.db.session() as db_session:
            wallets.remove_card(db_session, viewer.scope.account_id)
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, status_code=exc.status_code, errors={"card": error_text(exc)}
        )
    session.flash(request, "success", "The card was removed; auto-recharge is off.")
    return go(request, f"{PREFIX}/billing")


@router.post("/billing/auto-recharge", response_model=None)
def auto_recharge(
    request: Request,
    ctx: Ctx,
    viewer: Who,
    enabled: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "0",
    amount: Annotated[str, Form()] = "0",
) -> Response:
    try:
        _own_wallet(viewer)
        on = enabled in ("on", "true", "1")
        low = decimal_field(threshold or "0", "threshold")
        add = decimal_field(amount or "0", "amount")
        with ctx.db.session() as db_session:
            wallets.set_auto_recharge(db_session, viewer.scope.account_id, on, low, add)
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, status_code=exc.status_code, errors={"auto": error_text(exc)}
        )
    currency = ctx.settings.currency
    text = (
        f"Auto-recharge is on: below {money(low, currency)} the card adds {money(add, currency)}."
        if on
        else "Auto-recharge is off."
    )
    session.flash(request, "success", text)
    return go(request, f"{PREFIX}/billing")
