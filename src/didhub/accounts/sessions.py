"""Dashboard sessions kept on the server: the signed cookie carries a session
id, and signing out ends that session here, so a copied cookie stops working
the moment its owner signs out (not when the cookie would have expired)."""

from __future__ import annotations

import secrets

from sqlalchemy import update
from sqlalchemy.orm import Session

from didhub import clock
from didhub.accounts.models import DashboardSession


def start(session: Session, *, user_id: str | None, key_id: str | None) -> str:
    sid = secrets.token_urlsafe(32)
    session.add(DashboardSession(id=sid, user_id=user_id, key_id=key_id, created_at=clock.now()))
    return sid


def is_live(session: Session, sid: object) -> bool:
    if not isinstance(sid, str):
        return False
    found = session.get(DashboardSession, sid)
    return found is not None and found.ended_at is None


def end(session: Session, sid: object) -> None:
    if isinstance(sid, str):
        session.execute(
            update(DashboardSession)
            .where(DashboardSession.id == sid, DashboardSession.ended_at.is_(None))
            .values(ended_at=clock.now())
        )


def end_all_for_user(session: Session, user_id: str) -> None:
    """After a password change: every session of that user ends."""
    session.execute(
        update(DashboardSession)
        .where(DashboardSession.user_id == user_id, DashboardSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )
