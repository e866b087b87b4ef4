"""Account settings for numbers: a default CNAM (caller name) and what an
unassigned number does with a call. A tenant's setting wins, else its
partner's, else the platform's (config ``unassigned_announcement``; no
platform CNAM). NULL means "inherit" at every level.

Changing a default CNAM re-lists every number that inherits it, at its carrier:
``numbers.cnam.change_settings`` is the step the edges call (it stores the
change with :func:`write_settings`, commits, then asks the carrier outside any
transaction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock, numbering
from didhub.accounts.models import Account, AccountSettings
from didhub.accounts.service import UNCHANGED as UNCHANGED  # re-exported: settings changes use it
from didhub.accounts.service import get_account
from didhub.config import Settings as Config
from didhub.db import directory_answer, directory_memo
from didhub.errors import NotFound, ValidationFailed
from didhub.tenancy import PARTNER, TENANT, Scope

ANNOUNCEMENT = "announcement"
VOICEMAIL = "voicemail"
FORWARD = "forward"
REJECT = "reject"
UNASSIGNED_ACTIONS = (ANNOUNCEMENT, VOICEMAIL, FORWARD, REJECT)

CNAM_MAX = 15
# What US CNAM databases accept (carriers refuse anything else, or strip it).
_CNAM_CHARS = re.compile(r"[A-Za-z0-9 ,.&'-]*")
_MAILBOX = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_SIP_URI = re.compile(r"sips?:[^\s<>\"]+@?[^\s<>\"]*", re.IGNORECASE)
_TEXT_MAX = 500
_SIP_MAX = 255


def validate_cnam(value: str, field: str = "cnam") -> str:
    """A caller name as carriers enforce it: 1-15 characters, letters, digits,
    space and , . & ' - (leading and trailing spaces are dropped)."""
    name = value.strip()
    if not name:
        raise ValidationFailed(
            f"{field} must not be empty (send null to inherit the default)", field=field
        )
    if len(name) > CNAM_MAX:
        raise ValidationFailed(
            f"{field} is at most {CNAM_MAX} characters (got {len(name)})", field=field
        )
    if not _CNAM_CHARS.fullmatch(name):
        bad = sorted({ch for ch in name if not _CNAM_CHARS.fullmatch(ch)})
        raise ValidationFailed(
            f"{field} may contain only letters, digits, space and , . & ' - "
            f"(not {' '.join(repr(ch) for ch in bad)})",
            field=field,
        )
    return name


@dataclass(frozen=True)
class UnassignedBehaviour:
    """What a call to a number with no inbound agent gets."""

    action: str  # announcement | voicemail | forward | reject
    text: str | None = None  # announcement
    mailbox: str | None = None  # voicemail
    destination: str | None = None  # forward: E.164 or a sip:/sips: URI


def validate_destination(value: str, field: str = "unassigned.destination") -> str:
    """A forward target: an E.164 number (normalised) or a sip:/sips: URI."""
    target = value.strip()
    if target.lower().startswith(("sip:", "sips:")):
        if len(target) > _SIP_MAX or not _SIP_URI.fullmatch(target) or target.endswith(":"):
            raise ValidationFailed(
                f"{field} is not a valid SIP URI (e.g. sip:frontdesk@pbx.example.com)",
                field=field,
            )
        return target
    return numbering.parse_e164(target, field=field)


def validate_unassigned(
    action: str,
    text: str | None = None,
    mailbox: str | None = None,
    destination: str | None = None,
    field: str = "unassigned",
) -> UnassignedBehaviour:
    """Check one behaviour: each action takes exactly the field it needs."""
    if action not in UNASSIGNED_ACTIONS:
        raise ValidationFailed(
            f"{field}.action must be one of {', '.join(UNASSIGNED_ACTIONS)}",
            field=f"{field}.action",
        )
    needed = {ANNOUNCEMENT: "text", VOICEMAIL: "mailbox", FORWARD: "destination"}.get(action)
    given = {"text": text, "mailbox": mailbox, "destination": destination}
    for name, value in given.items():
        if value is not None and name != needed:
            raise ValidationFailed(
                f"{field}.{name} does not apply to action {action!r}", field=f"{field}.{name}"
            )
    if needed is not None and (given[needed] is None or not str(given[needed]).strip()):
        raise ValidationFailed(
            f"{field}.{needed} is required for action {action!r}", field=f"{field}.{needed}"
        )
    if action == ANNOUNCEMENT:
        assert text is not None
        if len(text.strip()) > _TEXT_MAX:
            raise ValidationFailed(
                f"{field}.text is at most {_TEXT_MAX} characters", field=f"{field}.text"
            )
        return UnassignedBehaviour(ANNOUNCEMENT, text=text.strip())
    if action == VOICEMAIL:
        assert mailbox is not None
        if not _MAILBOX.fullmatch(mailbox.strip()):
            raise ValidationFailed(
                f"{field}.mailbox is 1-64 letters, digits or _ . @ + -",
                field=f"{field}.mailbox",
            )
        return UnassignedBehaviour(VOICEMAIL, mailbox=mailbox.strip())
    if action == FORWARD:
        assert destination is not None
        return UnassignedBehaviour(
            FORWARD, destination=validate_destination(destination, f"{field}.destination")
        )
    return UnassignedBehaviour(REJECT)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Inherited:
    """An effective value and where it came from: ``tenant``, ``partner``,
    ``platform`` or ``none``."""

    value: str | UnassignedBehaviour | None
    source: str


@dataclass(frozen=True)
class AccountSettingsView:
    """An account's own settings (None: inherit) and what applies to it."""

    account_id: str
    account_kind: str
    default_cnam: str | None
    unassigned: UnassignedBehaviour | None
    effective_cnam: str | None
    effective_cnam_source: str  # tenant | partner | none
    effective_unassigned: UnassignedBehaviour
    effective_unassigned_source: str  # tenant | partner | platform
    updated_at: datetime | None


def own_unassigned(row: AccountSettings | None) -> UnassignedBehaviour | None:
    if row is None or row.unassigned_action is None:
        return None
    return UnassignedBehaviour(
        row.unassigned_action,
        text=row.unassigned_text,
        mailbox=row.unassigned_mailbox,
        destination=row.unassigned_destination,
    )


def levels(session: Session, owner_id: str, tenant_id: str | None) -> list[Account]:
    """The accounts whose settings apply to a number, nearest first: its tenant
    (or its owner when the owner is a tenant), then that tenant's partner (or
    the owner when a partner holds it unassigned)."""
    return _levels(lambda account_id: session.get(Account, account_id), owner_id, tenant_id)


def _levels(
    account: Callable[[str], Account | None], owner_id: str, tenant_id: str | None
) -> list[Account]:
    owner = account(owner_id)
    if owner is None:
        raise NotFound(f"account {owner_id} not found", field="account_id")
    tenant = account(tenant_id) if tenant_id is not None else None
    if tenant is None and owner.kind == TENANT:
        tenant = owner
    chain: list[Account] = []
    if tenant is not None:
        chain.append(tenant)
        partner = account(tenant.parent_id) if tenant.parent_id else None
    else:
        partner = owner if owner.kind == PARTNER else None
    if partner is not None:
        chain.append(partner)
    return chain


def _chain_of(session: Session, account: Account) -> list[Account]:
    chain = [account]
    if account.kind == TENANT and account.parent_id:
        chain.append(session.get_one(Account, account.parent_id))
    return chain


def resolve_cnam(session: Session, chain: list[Account]) -> Inherited:
    """The first default CNAM along ``chain`` (see :func:`levels`)."""
    return _first_cnam(chain, lambda account_id: session.get(AccountSettings, account_id))


def _first_cnam(
    chain: list[Account], settings_of: Callable[[str], AccountSettings | None]
) -> Inherited:
    for account in chain:
        row = settings_of(account.id)
        if row is not None and row.default_cnam is not None:
            return Inherited(row.default_cnam, account.kind)
    return Inherited(None, "none")


def inherited_cnam(session: Session, owner_id: str, tenant_id: str | None) -> Inherited:
    """:func:`resolve_cnam` along :func:`levels` for a number of ``owner_id``
    serving ``tenant_id``; in a server, kept until an account or its settings
    change (``db.directory_memo``)."""

    def read() -> Inherited:
        return resolve_cnam(session, levels(session, owner_id, tenant_id))

    return directory_answer(session, _cnam_key(owner_id, tenant_id), read)


def inherited_cnams(
    session: Session, holders: Collection[tuple[str, str | None]]
) -> dict[tuple[str, str | None], Inherited]:
    """:func:`inherited_cnam` for many ``(owner_id, tenant_id)`` pairs (a page
    of numbers): the kept ones from memory, the rest in at most three queries
    together: the accounts, their partners, their settings (one pair at a time,
    a settings row that doesn't exist is asked for again for every pair)."""
    if not holders:
        return {}
    memo = directory_memo(session)
    if memo is None:
        return _read_inherited_cnams(session, holders)
    keys = {_cnam_key(*pair): pair for pair in set(holders)}

    def read(missing: list[str]) -> dict[str, Inherited]:
        found = _read_inherited_cnams(session, [keys[key] for key in missing])
        return {key: found[keys[key]] for key in missing}

    kept: dict[str, Inherited] = memo.get_many(keys, read)
    return {pair: kept[key] for key, pair in keys.items()}


def _cnam_key(owner_id: str, tenant_id: str | None) -> str:
    return f"cnam {owner_id} {tenant_id or ''}"


def _read_inherited_cnams(
    session: Session, holders: Collection[tuple[str, str | None]]
) -> dict[tuple[str, str | None], Inherited]:
    accounts: dict[str, Account] = {}

    def load(ids: set[str]) -> None:
        missing = ids - accounts.keys()
        if missing:
            found = session.scalars(select(Account).where(Account.id.in_(missing)))
            accounts.update((a.id, a) for a in found)

    load({owner for owner, _ in holders} | {tenant for _, tenant in holders if tenant})
    load({a.parent_id for a in list(accounts.values()) if a.parent_id})
    settings = {
        row.account_id: row
        for row in session.scalars(
            select(AccountSettings).where(AccountSettings.account_id.in_(list(accounts)))
        )
    }
    return {pair: _first_cnam(_levels(accounts.get, *pair), settings.get) for pair in set(holders)}


def resolve_unassigned(session: Session, config: Config, chain: list[Account]) -> Inherited:
    """The first unassigned behaviour along ``chain``, else the platform's
    announcement."""
    for account in chain:
        behaviour = own_unassigned(session.get(AccountSettings, account.id))
        if behaviour is not None:
            return Inherited(behaviour, account.kind)
    return Inherited(
        UnassignedBehaviour(ANNOUNCEMENT, text=config.unassigned_announcement), "platform"
    )


def unassigned_for_number(
    session: Session, config: Config, owner_id: str, tenant_id: str | None
) -> Inherited:
    """What an unassigned number does (``/routing/inbound``)."""
    return resolve_unassigned(session, config, levels(session, owner_id, tenant_id))


def _view(session: Session, config: Config, account: Account) -> AccountSettingsView:
    row = session.get(AccountSettings, account.id)
    chain = _chain_of(session, account)
    cnam = resolve_cnam(session, chain)
    unassigned = resolve_unassigned(session, config, chain)
    assert isinstance(unassigned.value, UnassignedBehaviour)
    return AccountSettingsView(
        account_id=account.id,
        account_kind=account.kind,
        default_cnam=row.default_cnam if row is not None else None,
        unassigned=own_unassigned(row),
        effective_cnam=cnam.value if isinstance(cnam.value, str) else None,
        effective_cnam_source=cnam.source,
        effective_unassigned=unassigned.value,
        effective_unassigned_source=unassigned.source,
        updated_at=row.updated_at if row is not None else None,
    )


def _account(session: Session, scope: Scope, account_id: str, kind: str | None) -> Account:
    field = "tenant_id" if kind == TENANT else "account_id"
    account = get_account(session, scope, account_id, field)
    if kind is not None and account.kind != kind:
        raise NotFound(f"{kind} {account_id} not found", field=field)
    return account


def get_settings(
    session: Session, config: Config, scope: Scope, account_id: str, kind: str | None = None
) -> AccountSettingsView:
    """An account's settings: the caller's own, or a partner's tenant's (only
    accounts of ``kind`` when given); any other id is 404."""
    return _view(session, config, _account(session, scope, account_id, kind))


# ---------------------------------------------------------------- changing


@dataclass(frozen=True)
class SettingsChange:
    """A partial update: a field left ``UNCHANGED`` is kept; ``None`` clears it
    (inherit). Values are validated by :func:`set_settings`."""

    default_cnam: str | None | object = UNCHANGED
    unassigned: UnassignedBehaviour | None | object = UNCHANGED


def write_settings(
    session: Session,
    scope: Scope,
    account_id: str,
    change: SettingsChange,
    kind: str | None = None,
) -> tuple[Account, bool]:
    """Store a change of an account's settings in ``session``'s transaction,
    validated; answers the account and whether its default CNAM changed (the
    numbers that inherit it are re-listed by ``numbers.cnam.change_settings``,
    which the edges call)."""
    account = _account(session, scope, account_id, kind)
    row = session.get(AccountSettings, account.id, with_for_update=True)
    if row is None:
        row = AccountSettings(account_id=account.id, updated_at=clock.now())
        session.add(row)
    cnam_changed = False
    if change.default_cnam is not UNCHANGED:
        new = (
            validate_cnam(change.default_cnam, "default_cnam")
            if isinstance(change.default_cnam, str)
            else None
        )
        cnam_changed = new != row.default_cnam
        row.default_cnam = new
    if change.unassigned is not UNCHANGED:
        behaviour = change.unassigned
        if isinstance(behaviour, UnassignedBehaviour):
            behaviour = validate_unassigned(
                behaviour.action, behaviour.text, behaviour.mailbox, behaviour.destination
            )
            row.unassigned_action = behaviour.action
            row.unassigned_text = behaviour.text
            row.unassigned_mailbox = behaviour.mailbox
            row.unassigned_destination = behaviour.destination
        else:
            row.unassigned_action = row.unassigned_text = None
            row.unassigned_mailbox = row.unassigned_destination = None
    row.updated_at = clock.now()
    session.flush()
    return account, cnam_changed


def view_of(session: Session, config: Config, account_id: str) -> AccountSettingsView:
    return _view(session, config, session.get_one(Account, account_id))
