"""Accounts, agents, API keys and dashboard users, and the one scoping rule for tenancy.

A partner key acts on the partner and its tenants; a tenant key only on that
tenant. Every query of account-owned rows goes through :class:`Scope`, and an
id outside the caller's scope reads as "not found", never as someone's data.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.accounts import repository, sessions, throttle
from didhub.accounts.models import Account, Agent, ApiKey, Invitation, User
from didhub.db import Database, new_id
from didhub.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from didhub.tenancy import PARTNER as PARTNER  # the account kinds
from didhub.tenancy import TENANT as TENANT
from didhub.tenancy import Scope
from didhub.wallet import ledger

KEY_PREFIX = "dh_"
MAX_CREDIT = Decimal("1000000000.00")


def _clean_name(name: str, field: str = "name") -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ValidationFailed("name must not be empty", field=field)
    if len(cleaned) > 200:
        raise ValidationFailed("name must be at most 200 characters", field=field)
    return cleaned


def create_partner(session: Session, name: str, currency: str) -> Account:
    account = Account(
        id=new_id("par"), kind=PARTNER, name=_clean_name(name), created_at=clock.now()
    )
    session.add(account)
    session.flush()
    ledger.ensure_wallet(session, account.id, currency)
    return account


def create_tenant(
    session: Session, name: str, currency: str, partner_id: str | None = None
) -> Account:
    if partner_id is not None:
        partner = session.get(Account, partner_id)
        if partner is None or partner.kind != PARTNER:
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
    account = Account(
        id=new_id("ten"),
        kind=TENANT,
        name=_clean_name(name),
        parent_id=partner_id,
        created_at=clock.now(),
    )
    session.add(account)
    session.flush()
    ledger.ensure_wallet(session, account.id, currency)
    return account


def create_tenant_for(session: Session, scope: Scope, name: str, currency: str) -> Account:
    """``POST /tenants``: a partner creates a tenant under itself."""
    if scope.kind != PARTNER:
        raise Forbidden("only a partner key can create tenants")
    return create_tenant(session, name, currency, partner_id=scope.account_id)


def fund_wallet(
    session: Session, account_id: str, amount: Decimal, currency: str, description: str
) -> None:
    """Credit a wallet from the platform's funding book (operator credit)."""
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed("amount must be zero or more", field="balance")
    # Before quantizing: past 28 digits, quantize raises instead of answering.
    if amount > MAX_CREDIT:
        raise ValidationFailed(f"amount is at most {MAX_CREDIT}", field="balance")
    if amount != amount.quantize(ledger.CENTS):
        raise ValidationFailed("amount has at most 2 decimal places", field="balance")
    if amount == 0:
        return
    funding = ledger.ensure_platform_book(session, ledger.FUNDING, currency)
    wallet = ledger.ensure_wallet(session, account_id, currency)
    ledger.transfer(
        session,
        kind="funding",
        description=description,
        debit=funding,
        credit=wallet,
        amount=amount,
        reference=account_id,
    )


def get_account(session: Session, scope: Scope, account_id: str, field: str) -> Account:
    return repository.get(session, scope, account_id, field=field)


def get_tenant(session: Session, scope: Scope, tenant_id: str, field: str = "tenant_id") -> Account:
    return repository.get(session, scope, tenant_id, kind=TENANT, field=field)


def list_tenants(session: Session, scope: Scope) -> list[Account]:
    return list(
        session.scalars(
            select(Account)
            .where(Account.kind == TENANT, repository.readable(scope))
            .order_by(Account.id)
        )
    )


def create_agent(
    session: Session, scope: Scope, tenant_id: str, name: str, sip_uri: str | None = None
) -> Agent:
    tenant = get_tenant(session, scope, tenant_id)
    agent = Agent(
        id=new_id("agt"),
        tenant_id=tenant.id,
        name=_clean_name(name),
        sip_uri=numbering.parse_sip_uri(sip_uri) if sip_uri else None,
        created_at=clock.now(),
    )
    session.add(agent)
    session.flush()
    return agent


# An argument left as it is by a partial update (``None`` means "clear").
UNCHANGED: Any = object()


def update_agent(
    session: Session,
    scope: Scope,
    agent_id: str,
    name: str | None = None,
    sip_uri: str | None | Any = UNCHANGED,
) -> Agent:
    """Rename an agent or point its calls elsewhere (``sip_uri=None`` clears it)."""
    agent = get_agent(session, scope, agent_id)
    if name is not None:
        agent.name = _clean_name(name)
    if sip_uri is not UNCHANGED:
        agent.sip_uri = numbering.parse_sip_uri(sip_uri) if sip_uri else None
    session.flush()
    return agent


def get_agent(session: Session, scope: Scope, agent_id: str, field: str = "agent_id") -> Agent:
    return repository.get_agent(session, scope, agent_id, field=field)


def list_agents(session: Session, scope: Scope, tenant_id: str | None = None) -> list[Agent]:
    query = select(Agent).where(repository.agents_readable(scope)).order_by(Agent.id)
    if tenant_id is not None:
        query = query.where(Agent.tenant_id == get_tenant(session, scope, tenant_id).id)
    return list(session.scalars(query))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_digest(secret: str) -> str:
    """What a key is stored and looked up by (its secret is never kept)."""
    return _hash(secret)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once, never stored


def create_api_key(session: Session, account_id: str, name: str = "") -> NewKey:
    if session.get(Account, account_id) is None:
        raise NotFound(f"account {account_id} not found", field="account_id")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        name=name.strip(),
        prefix=secret[:10],
        secret_hash=_hash(secret),
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    return NewKey(key=key, secret=secret)


def list_api_keys(session: Session, account_id: str) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
    return key


def find_key(session: Session, secret: str | None) -> ApiKey:
    """The live key with this secret; 401 for a missing, unknown or revoked key."""
    if not secret:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    key = session.scalars(select(ApiKey).where(ApiKey.secret_hash == _hash(secret))).first()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key is not valid")
    return key


def _scope_of(session: Session, account_id: str, message: str) -> Scope:
    """The account's scope with what it may see, in one query: the account
    and the accounts it is the partner of."""
    rows = session.scalars(
        select(Account).where(or_(Account.id == account_id, Account.parent_id == account_id))
    ).all()
    own = next((row for row in rows if row.id == account_id), None)
    if own is None:
        raise Unauthorized(message)
    tenants = [row.id for row in rows if row.parent_id == account_id]
    accessible = frozenset({own.id, *tenants}) if own.kind == PARTNER else frozenset({own.id})
    return Scope(own.id, own.kind, accessible)


def authenticate(session: Session, secret: str | None) -> Scope:
    """The scope of a presented API key; 401 for a missing, unknown or revoked key."""
    return _scope_of(session, find_key(session, secret).account_id, "the API key is not valid")


def key_scope(session: Session, key_id: str) -> Scope:
    """The scope of a key a dashboard session signed in with, while it is not revoked."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key this session signed in with was revoked")
    return _scope_of(session, key.account_id, "the API key is not valid")


# ------------------------------------------------------------------ dashboard users

# argon2id with the library's defaults (RFC 9106's second recommended profile).
_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both answers take as long."""
    return _hasher.hash("didhub: no such user")


def _clean_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise ValidationFailed(f"{email!r} is not an email address", field="email")
    return cleaned


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            f"the password must be at least {MIN_PASSWORD} characters", field="password"
        )
    if len(password) > 1024:
        raise ValidationFailed("the password must be at most 1024 characters", field="password")
    return password


# Who may do what in the dashboard (enforced in ``web.session.check_role``;
# docs/dashboard.md, "People and roles").
ADMIN, BILLING, READ_ONLY = "admin", "billing", "read-only"
ROLES = (ADMIN, BILLING, READ_ONLY)
INVITATION_DAYS = 7


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def create_user(
    session: Session, account_id: str, email: str, password: str, role: str = ADMIN
) -> User:
    """A person who signs in to ``account_id`` (``didhub user create``, and an
    accepted invitation)."""
    _check_role(role)
    if session.get(Account, account_id) is None:
        raise NotFound(f"account {account_id} not found", field="account_id")
    address = _clean_email(email)
    taken = session.scalars(select(User.id).where(User.email == address)).first()
    if taken is not None:
        raise Conflict(f"a user with the email {address} exists", field="email")
    user = User(
        id=new_id("usr"),
        account_id=account_id,
        email=address,
        password_hash=_hasher.hash(_check_password(password)),
        role=role,
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # shown once, in the link; only its hash is kept


def invite_user(
    session: Session, account_id: str, email: str, role: str, invited_by: str | None = None
) -> NewInvitation:
    """Invite a person to ``account_id`` with a role: answers the one-time
    secret of the link. A newer invitation of the same email replaces an
    open one."""
    _check_role(role)
    address = _clean_email(email)
    if session.scalars(select(User.id).where(User.email == address)).first() is not None:
        raise Conflict(f"a user with the email {address} exists", field="email")
    now = clock.now()
    for open_one in session.scalars(
        select(Invitation).where(
            Invitation.account_id == account_id,
            Invitation.email == address,
            Invitation.accepted_at.is_(None),
        )
    ):
        open_one.expires_at = now  # replaced: its link stops working
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        id=new_id("inv"),
        account_id=account_id,
        email=address,
        role=role,
        token_hash=_hash(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    session.flush()
    return NewInvitation(invitation, token)


def open_invitation(session: Session, token: str, *, for_update: bool = False) -> Invitation:
    """The invitation a link names, if it can still be accepted."""
    query = select(Invitation).where(Invitation.token_hash == _hash(token.strip()))
    if for_update:
        query = query.with_for_update()
    invitation = session.scalars(query).first()
    if invitation is None or invitation.accepted_at is not None:
        raise NotFound("this invitation link was used already or doesn't exist", field="token")
    if invitation.expires_at <= clock.now():
        raise NotFound("this invitation link has expired; ask for a new one", field="token")
    return invitation


def accept_invitation(session: Session, token: str, password: str) -> User:
    """Set a password for an invitation: the user is created (as ``didhub
    user create`` does) and the link is used up, at most once even when two
    requests race (the invitation row is locked)."""
    invitation = open_invitation(session, token, for_update=True)
    user = create_user(session, invitation.account_id, invitation.email, password, invitation.role)
    invitation.accepted_at = clock.now()
    return user


def list_invitations(session: Session, account_id: str) -> list[Invitation]:
    """Invitations not yet accepted and not expired, newest first."""
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.account_id == account_id,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > clock.now(),
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def list_users(session: Session, account_id: str) -> list[User]:
    return list(
        session.scalars(select(User).where(User.account_id == account_id).order_by(User.id))
    )


def set_password(session: Session, email: str, password: str) -> User:
    """A new password; every dashboard session of the user ends (a session
    someone else had is over with the old password)."""
    user = session.scalars(select(User).where(User.email == _clean_email(email))).first()
    if user is None:
        raise NotFound(f"no user has the email {email}", field="email")
    user.password_hash = _hasher.hash(_check_password(password))
    sessions.end_all_for_user(session, user.id)
    return user


# Password hashes at once in this process: each is ~190 ms of a core and
# 64 MiB, so a crowd of sign-ins queues here instead of taking the machine.
HASHING = throttle.HashingSlots(max(1, os.cpu_count() or 1))


def sign_in_throttled(db: Database, email: str, password: str, address: str | None) -> str:
    """Sign in with an email and password (the dashboard): 401, the same for an
    unknown email and a wrong password and as slow, behind the throttle
    (``accounts/throttle.py``). A locked-out email or address is refused
    before any hashing (429); the hash runs outside any transaction, in one of
    ``HASHING``'s slots; a failure counts against the email and the address,
    a success clears the email's count. Returns the user's id."""
    with db.read_session() as session:
        throttle.check(session, email, address)
        user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
        stored = user.password_hash if user is not None else None
        user_id = user.id if user is not None else None
    with HASHING.slot():
        try:
            _hasher.verify(stored or _dummy_hash(), password)
            ok = stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        rehashed = (
            _hasher.hash(password) if ok and _hasher.check_needs_rehash(stored or "") else None
        )
    with db.session() as session:
        if not ok or user_id is None:
            throttle.failed(session, email, address)
        else:
            throttle.succeeded(session, email)
            if rehashed is not None:
                session.get_one(User, user_id).password_hash = rehashed
    if not ok or user_id is None:
        raise Unauthorized("the email or password is not right")
    return user_id


def user_scope(session: Session, user_id: str) -> Scope:
    """The scope of a signed-in user, while the user exists."""
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("this user no longer exists")
    return _scope_of(session, user.account_id, "this user's account no longer exists")
