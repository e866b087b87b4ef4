from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base, UtcDateTime


class Account(Base):
    """A partner (reseller) or a tenant. A tenant's ``parent_id`` is its partner,
    or NULL when it sits directly under the platform (the AI-agent seed's case)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # partner | tenant
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Where the SIP edge relays this agent's calls (endpoint, PBX extension, queue).
    sip_uri: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    """Only a SHA-256 of the secret is stored; ``prefix`` is what a person sees
    in a key list to tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class AccountSettings(Base):
    """An account's number settings; NULL everywhere means "inherit": a tenant
    falls back to its partner, a partner to the platform (config). The
    unassigned-number columns describe one behaviour, ``unassigned_action``
    saying which of the others apply (see ``accounts/settings.py``)."""

    __tablename__ = "account_settings"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    default_cnam: Mapped[str | None] = mapped_column(String(15), default=None)
    # announcement | voicemail | forward | reject, or NULL to inherit
    unassigned_action: Mapped[str | None] = mapped_column(String(16), default=None)
    unassigned_text: Mapped[str | None] = mapped_column(String(500), default=None)
    unassigned_mailbox: Mapped[str | None] = mapped_column(String(64), default=None)
    unassigned_destination: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class User(Base):
    """A person who signs in to the dashboard for an account. Only an argon2 hash
    of the password is stored; ``email`` is kept lower-case, unique platform-wide."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # admin | billing | read-only (docs/dashboard.md, "People and roles").
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Invitation(Base):
    """A person invited to sign in to an account: the link's secret is shown
    once to the inviting admin; only its hash is kept. Accepting it (setting a
    password) creates the user and uses the invitation up."""

    __tablename__ = "user_invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(String(254), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class SignInFailures(Base):
    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # email:… | address:…
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class DashboardSession(Base):
    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
