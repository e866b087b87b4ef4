"""CNAM, the caller name a receiving phone shows: set per number or inherited
from the tenant's default (else the partner's), listed at the number's carrier.

A change is two steps, never one transaction around a carrier call:

1. :func:`mark`, in the caller's transaction: the number's ``cnam_listings``
   row takes the new effective name with status ``pending`` and a new
   ``revision``, and ``cnam.pending`` is recorded.
2. :func:`push`, after commit: ``Carrier.set_cnam``; then, if the row still
   has the same revision (no newer change raced us), ``active`` or ``failed``
   with the carrier's reason. An unknown outcome leaves it ``pending``;
   :func:`repush_pending` (the sweep) pushes it again, which is safe because
   listing a name twice is harmless. A ``failed`` listing is pushed again by
   :func:`retry`.

CNAM databases are cached by terminating carriers for about a day, so the
answer to every change carries :data:`CACHE_NOTICE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import clock
from didhub.accounts import settings as account_settings
from didhub.accounts.models import Account
from didhub.carriers.base import Carrier, CarrierFailure, CarrierOutcomeUnknown
from didhub.carriers.registry import carrier_for, served_carrier_names
from didhub.config import Settings
from didhub.db import Database
from didhub.errors import Conflict
from didhub.numbers import lifecycle, repository
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import CnamListing, PhoneNumber
from didhub.tenancy import Scope

PENDING = "pending"
LISTED = "active"
FAILED = "failed"
# Only numbers the carrier has and keeps are listed.
LISTABLE = (ACTIVE, SUSPENDED)
# A default change pushes this many numbers before answering; the sweep lists
# the rest (they show ``pending`` meanwhile), so a big tenant's PATCH stays quick.
INLINE_PUSHES = 50
CACHE_NOTICE = (
    "Caller-name (CNAM) changes are cached by the receiving carriers: "
    "some phones may show the old name for about 24 hours."
)


@dataclass(frozen=True)
class EffectiveCnam:
    name: str | None
    source: str  # number | tenant | partner | none


@dataclass(frozen=True)
class CnamView:
    """What a number's representation shows as ``cnam``."""

    name: str | None
    source: str
    status: str | None  # pending | active | failed, None: never listed
    reason: str | None
    updated_at: datetime | None
    own_name: str | None  # the number's own setting (None: inherits)


def effective_cnam(
    session: Session, number: PhoneNumber, listing: CnamListing | None = None
) -> EffectiveCnam:
    """The name a number should be listed with: its own, else its tenant's
    default, else its partner's, else none."""
    if listing is None:
        listing = session.get(CnamListing, number.id)
    return _effective(session, number, listing)


def _effective(session: Session, number: PhoneNumber, listing: CnamListing | None) -> EffectiveCnam:
    """:func:`effective_cnam` with the listing already read (``None``: it has none)."""
    if listing is not None and listing.name is not None:
        return EffectiveCnam(listing.name, "number")
    inherited = account_settings.inherited_cnam(session, number.owner_id, number.tenant_id)
    name = inherited.value if isinstance(inherited.value, str) else None
    return EffectiveCnam(name, inherited.source)


def describe(
    session: Session, numbers: Sequence[PhoneNumber], listed: bool = True
) -> dict[str, CnamView]:
    """``cnam`` for each number's representation, in a few queries for the whole
    page: the listings, then the defaults inherited by the numbers without one.
    ``listed=False``: the caller knows none of them has a listing (numbers just
    bought, none listed at settlement), so none is read."""
    ids = [n.id for n in numbers]
    rows = (
        {
            r.number_id: r
            for r in session.scalars(select(CnamListing).where(CnamListing.number_id.in_(ids)))
        }
        if ids and listed
        else {}
    )
    inherited = account_settings.inherited_cnams(
        session, {(n.owner_id, n.tenant_id) for n in numbers if n.id not in rows}
    )
    out: dict[str, CnamView] = {}
    for number in numbers:
        row = rows.get(number.id)
        if row is not None:
            out[number.id] = CnamView(
                row.listed_name, row.source, row.status, row.reason, row.updated_at, row.name
            )
            continue
        wanted = inherited[(number.owner_id, number.tenant_id)]
        name = wanted.value if isinstance(wanted.value, str) else None
        out[number.id] = CnamView(name, wanted.source, None, None, None, None)
    return out


def mark(
    session: Session,
    number: PhoneNumber,
    account_id: str | None,
    *,
    first_listable: bool = False,
    **data: object,
) -> bool:
    """Bring the number's listing in line with its effective name, in this
    transaction: when the name (or a failed listing) needs the carrier, the
    row goes ``pending`` and ``cnam.pending`` is recorded. Returns whether a
    push is needed. Call with the number row locked.

    ``first_listable``: the number has just become listable for the first
    time (provisioning to active), so it has no listing yet (a listing is
    written only for a listable number) and none is read."""
    if number.status not in LISTABLE:
        return False
    row = None if first_listable else session.get(CnamListing, number.id, with_for_update=True)
    wanted = _effective(session, number, row)
    now = clock.now()
    if row is None:
        if wanted.name is None:
            return False  # never listed, nothing to list
        row = CnamListing(number_id=number.id, revision=0, status=PENDING, source=wanted.source)
        session.add(row)
    elif row.listed_name == wanted.name and row.status != FAILED:
        row.source = wanted.source  # same name, now from elsewhere: nothing to push
        return False
    row.listed_name = wanted.name
    row.source = wanted.source
    row.status = PENDING
    row.reason = None
    row.revision += 1
    row.pushed_at = row.updated_at = now
    session.flush()
    lifecycle.record(
        session, number, "cnam.pending", account_id, name=wanted.name, source=wanted.source, **data
    )
    return True


def set_own_name(
    session: Session, scope: Scope, number_id: str, name: str | None
) -> tuple[PhoneNumber, bool]:
    """The transactional half of :func:`set_number_cnam` (for a caller that
    already holds a session, e.g. a PATCH also changing the tenant); push the
    number afterwards when the second value is true."""
    cleaned = account_settings.validate_cnam(name, "cnam") if name is not None else None
    number = repository.get(session, scope, number_id, for_update=True)
    if number.status not in LISTABLE:
        raise Conflict(
            f"{number.e164} is {number.status}; CNAM is set on active numbers",
            field="number_id",
            code="number_not_active",
        )
    row = session.get(CnamListing, number.id, with_for_update=True)
    if row is None:
        if cleaned is None:
            return number, False  # inherits already and was never listed
        row = CnamListing(
            number_id=number.id,
            name=cleaned,
            revision=0,
            status=PENDING,
            source="number",
            pushed_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(row)  # no listed name yet, so mark() lists it
    else:
        row.name = cleaned
    return number, mark(session, number, scope.account_id)


def set_number_cnam(
    db: Database, carrier: Carrier, scope: Scope, number_id: str, name: str | None
) -> PhoneNumber:
    """Set a number's own CNAM (``None``: inherit the tenant's or partner's
    default) and list it at the carrier. Anyone who sees the number may set it.
    Returns the number; its listing is ``active``, ``failed`` (with the
    carrier's reason) or still ``pending`` when the carrier's answer was lost."""
    with db.session() as session:
        number, needs_push = set_own_name(session, scope, number_id, name)
    if needs_push:
        push(db, carrier, [number.id], scope.account_id)
    return number


def retry(db: Database, carrier: Carrier, scope: Scope, number_id: str) -> PhoneNumber:
    """Push a ``failed`` (or still ``pending``) listing to the carrier again."""
    with db.session() as session:
        number = repository.get(session, scope, number_id, for_update=True)
        row = session.get(CnamListing, number.id, with_for_update=True)
        if row is None or row.status == LISTED:
            raise Conflict(
                f"{number.e164} has no failed or pending CNAM listing to retry",
                field="number_id",
                code="cnam_not_retryable",
            )
        if number.status not in LISTABLE:
            raise Conflict(
                f"{number.e164} is {number.status}; CNAM is set on active numbers",
                field="number_id",
                code="number_not_active",
            )
        if row.status == FAILED:
            row.status = PENDING
            row.reason = None
            row.revision += 1
            row.pushed_at = row.updated_at = clock.now()
            lifecycle.record(
                session,
                number,
                "cnam.pending",
                scope.account_id,
                name=row.listed_name,
                source=row.source,
                retry=True,
            )
    push(db, carrier, [number_id], scope.account_id)
    with db.session() as session:
        return session.get_one(PhoneNumber, number_id)


def relist_inheriting(session: Session, account_id: str, acting: str | None) -> list[str]:
    """After ``account_id``'s default CNAM changed: mark every live number whose
    name may come from it (the account's numbers and, for a partner, its
    tenants'); the ones whose effective name changed go ``pending``. Returns
    their ids for :func:`push`. Number rows are locked in id order."""
    account = session.get_one(Account, account_id)
    scope = Scope(account.id, account.kind)
    numbers = session.scalars(
        select(PhoneNumber)
        .where(
            PhoneNumber.status.in_(LISTABLE),
            repository.readable(scope),
        )
        .order_by(PhoneNumber.id)
        .with_for_update()
    ).all()
    return [n.id for n in numbers if mark(session, n, acting, reason="default changed")]


def push(db: Database, carrier: Carrier, number_ids: Sequence[str], account_id: str | None) -> None:
    """List each number's pending name at the number's own carrier
    (``registry.carrier_for``), one number at a time, each carrier call outside
    any transaction."""
    for number_id in number_ids:
        with db.session() as session:
            row = session.get(CnamListing, number_id)
            number = session.get(PhoneNumber, number_id)
            if row is None or number is None or row.status != PENDING:
                continue
            e164, name, revision = number.e164, row.listed_name, row.revision
            managed, holder = number.is_managed, number.carrier
        status, reason = LISTED, None
        try:
            if managed:  # listed where the number is held, never elsewhere
                carrier_for(carrier, holder).set_cnam(e164, name)
        except CarrierFailure as exc:
            status, reason = FAILED, str(exc)
        except CarrierOutcomeUnknown:
            continue  # stays pending; the sweep pushes it again
        with db.session() as session:
            number = session.get_one(PhoneNumber, number_id, with_for_update=True)
            row = session.get_one(CnamListing, number_id, with_for_update=True)
            if row.revision != revision or row.status != PENDING:
                continue  # a newer change won; its own push settles it
            row.status, row.reason = status, reason
            row.updated_at = clock.now()
            kind = "cnam.active" if status == LISTED else "cnam.failed"
            details: dict[str, object] = {"name": name, "source": row.source}
            if reason is not None:
                details["reason"] = reason
            lifecycle.record(session, number, kind, account_id, **details)


@dataclass
class CnamSweepReport:
    pushed: list[str] = field(default_factory=list)


def repush_pending(
    db: Database, carrier: Carrier, min_age: timedelta = timedelta(seconds=60)
) -> CnamSweepReport:
    """The sweep's step: push again every ``pending`` listing whose push began
    more than ``min_age`` ago (its answer was lost, or the process stopped
    before asking). Younger ones may still be talking to the carrier."""
    cutoff = clock.now() - min_age
    with db.session() as session:
        rows = session.scalars(
            select(CnamListing)
            .join(PhoneNumber, PhoneNumber.id == CnamListing.number_id)
            .where(
                CnamListing.status == PENDING,
                CnamListing.pushed_at <= cutoff,
                PhoneNumber.carrier.in_(served_carrier_names(carrier)),
            )
            .order_by(CnamListing.number_id)
            .with_for_update(of=CnamListing, skip_locked=True)
        ).all()
        for row in rows:
            row.pushed_at = clock.now()  # claimed: another sweeper skips it for min_age
        ids = [r.number_id for r in rows]
    push(db, carrier, ids, None)
    return CnamSweepReport(pushed=ids)


def change_settings(
    db: Database,
    carrier: Carrier,
    config: Settings,
    scope: Scope,
    account_id: str,
    change: account_settings.SettingsChange,
    kind: str | None = None,
) -> account_settings.AccountSettingsView:
    """Change an account's settings. A new default CNAM re-lists, at the
    carrier, every live number that inherits it: the first ``INLINE_PUSHES``
    before this returns, the rest (and any whose answer was lost) by the sweep;
    each shows ``pending`` until the carrier answers."""
    with db.session() as session:
        account, cnam_changed = account_settings.write_settings(
            session, scope, account_id, change, kind
        )
        pending = relist_inheriting(session, account.id, scope.account_id) if cnam_changed else []
    push(db, carrier, pending[:INLINE_PUSHES], scope.account_id)
    with db.read_session() as session:
        return account_settings.view_of(session, config, account_id)
