"""Agents → an agent's calling-out page: the numbers it may present, its SIP
digest credential (the password shown once, on the page that made it), and
where its SIP client points. Every action calls the service the API's
``/agents/{id}/sip-credential`` calls."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from didhub.accounts import repository as accounts_repo
from didhub.api.deps import Ctx
from didhub.errors import DidhubError
from didhub.outbound import service as outbound
from didhub.web import session
from didhub.web.common import Who, error_text, make_router, render

router = make_router()


def _page(
    request: Request, ctx: Any, viewer: session.Viewer, agent_id: str, **extra: Any
) -> HTMLResponse:
    status_code = extra.pop("status_code", 200)
    with ctx.db.read_session() as db_session:
        agent = accounts_repo.get_agent(db_session, viewer.scope, agent_id)
        credential = outbound.get_credential(db_session, viewer.scope, agent_id)
        numbers = [n.e164 for n in outbound.outbound_numbers(db_session, agent.id)]
    return render(
        request,
        "outbound/agent_calling.html",
        viewer,
        status_code=status_code,
        agent=agent,
        credential=credential,
        numbers=numbers,
        edge=ctx.settings.sip_edge_uri,
        **extra,
    )


@router.get("/agents/{agent_id}/calling", response_class=HTMLResponse)
def calling_page(request: Request, agent_id: str, ctx: Ctx, viewer: Who) -> HTMLResponse:
    return _page(request, ctx, viewer, agent_id)


@router.post("/agents/{agent_id}/sip-credential", response_class=HTMLResponse)
def rotate(request: Request, agent_id: str, ctx: Ctx, viewer: Who) -> HTMLResponse:
    """Create or rotate the credential, as ``POST /agents/{id}/sip-credential``.
    The answer is the page itself (not a redirect), so the password is never
    kept in the session's messages: it is shown here once."""
    try:
        with ctx.db.session() as db_session:
            issued = outbound.issue_credential(db_session, ctx.settings, viewer.scope, agent_id)
    except DidhubError as exc:
        return _page(
            request, ctx, viewer, agent_id, status_code=exc.status_code, error=error_text(exc)
        )
    response = _page(request, ctx, viewer, agent_id, issued=issued)
    response.headers["Cache-Control"] = "no-store"
    return response
