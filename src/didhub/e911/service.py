"""E911 rules: addresses (normalize, validate at the carrier, confirm a
suggestion), attaching an address to a number (pushed to the carrier between
two transactions, like a release), locations, and the compliance report.

Routers, the CLI and the dashboard's Edit DID modal call these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from didhub import clock
from didhub.accounts import service as accounts
from didhub.carriers.base import (
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
)
from didhub.carriers.registry import carrier_for, served_carrier_names
from didhub.db import Database, new_id
from didhub.e911 import repository
from didhub.e911.models import E911Address, Location, NumberE911
from didhub.errors import CarrierError, Conflict, NotFound, ValidationFailed
from didhub.numbers import lifecycle
from didhub.numbers import repository as number_repository
from didhub.numbers import service as numbers
from didhub.numbers.models import PhoneNumber
from didhub.postal import normalize as norm
from didhub.tenancy import Scope

VALIDATED = "validated"
NEEDS_CONFIRMATION = "needs_confirmation"

PENDING = "pending"
PROVISIONED = "provisioned"
FAILED = "failed"


# ---------------------------------------------------------------- addresses


def _data(address: E911Address) -> E911AddressData:
    return E911AddressData(
        street=address.street,
        unit=address.unit,
        city=address.city,
        state=address.state,
        postal_code=address.postal_code,
        country=address.country,
        caller_name=address.caller_name,
    )


def _owner_for(session: Session, scope: Scope, tenant_id: str | None) -> str:
    """Whose address it is: the named tenant (in scope), else the caller."""
    if tenant_id:
        return accounts.get_tenant(session, scope, tenant_id).id
    return scope.account_id


def create_address(
    db: Database, carrier: Carrier, scope: Scope, fields: Mapping[str, object]
) -> E911Address:
    """``POST /e911/addresses``: normalize (422 naming the bad field), ask the
    carrier to validate, store. ``fields``: street, unit, city, state,
    postal_code, country, caller_name, and optionally tenant_id (a partner
    creating a tenant's address; default: the caller's own account).

    The address is ``validated``, or ``needs_confirmation`` when the carrier
    suggested a corrected form (see :func:`accept_suggestion`). An address the
    carrier can't find is refused (422 on ``street``) and not stored."""
    address = norm.normalize(fields)
    tenant_id = fields.get("tenant_id")
    with db.session() as session:
        owner = _owner_for(session, scope, str(tenant_id) if tenant_id else None)
    # The carrier is asked outside any transaction (it may be slow).
    data = E911AddressData(**address.as_dict())  # type: ignore[arg-type]
    try:
        answer = carrier.validate_e911_address(data)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        raise CarrierError(
            f"the carrier could not validate the address now: {exc}; try again", field="street"
        ) from exc
    if not answer.valid:
        raise ValidationFailed(
            answer.reason or "the carrier can't find this address", field="street"
        )
    now = clock.now()
    row = E911Address(
        id=new_id("e911"),
        account_id=owner,
        **address.as_dict(),
        status=NEEDS_CONFIRMATION if answer.suggestion is not None else VALIDATED,
        carrier=carrier.name,
        carrier_ref=answer.reference,
        suggestion=_suggestion_dict(answer.suggestion) if answer.suggestion else None,
        created_at=now,
        validated_at=None if answer.suggestion is not None else now,
    )
    with db.session() as session:
        session.add(row)
    return row


def _suggestion_dict(data: E911AddressData) -> dict[str, str | None]:
    return {
        "street": data.street,
        "unit": data.unit,
        "city": data.city,
        "state": data.state,
        "postal_code": data.postal_code,
        "country": data.country,
        "caller_name": data.caller_name,
    }


def get_address(
    session: Session, scope: Scope, address_id: str, field: str = "address_id"
) -> E911Address:
    return repository.get(session, scope, address_id, field=field)


def list_addresses(
    session: Session, scope: Scope, tenant_id: str | None = None
) -> list[E911Address]:
    query = select(E911Address).where(repository.readable(scope))
    if tenant_id is not None:
        query = query.where(E911Address.account_id == _owner_for(session, scope, tenant_id))
    return list(session.scalars(query.order_by(E911Address.id)))


def accept_suggestion(session: Session, scope: Scope, address_id: str) -> E911Address:
    """``POST /e911/addresses/{id}/accept-suggestion``: take the carrier's
    corrected form; the address becomes ``validated``."""
    address = get_address(session, scope, address_id)
    if address.status != NEEDS_CONFIRMATION or not address.suggestion:
        raise Conflict(
            f"E911 address {address.id} has no suggestion to accept (it is {address.status})",
            field="address_id",
            code="no_suggestion",
        )
    for name in norm.FIELDS:
        setattr(address, name, address.suggestion.get(name))
    address.suggestion = None
    address.status = VALIDATED
    address.validated_at = clock.now()
    session.flush()
    return address


def delete_address(session: Session, scope: Scope, address_id: str) -> None:
    """Refused (409) while a live number or a location uses the address.
    Released numbers' links go with it (the carrier dropped them on release)."""
    address = get_address(session, scope, address_id)
    in_use = session.scalars(
        select(PhoneNumber.e164)
        .join(NumberE911, NumberE911.number_id == PhoneNumber.id)
        .where(
            NumberE911.address_id == address.id,
            PhoneNumber.status.in_(lifecycle.LIVE_STATUSES),
        )
    ).first()
    if in_use is not None:
        raise Conflict(
            f"E911 address {address.id} is attached to {in_use}; detach it first",
            field="address_id",
            code="address_in_use",
        )
    if session.scalars(select(Location.id).where(Location.address_id == address.id)).first():
        raise Conflict(
            f"E911 address {address.id} is a location's address; delete the location first",
            field="address_id",
            code="address_in_use",
        )
    session.execute(delete(NumberE911).where(NumberE911.address_id == address.id))
    session.delete(address)


# ---------------------------------------------------------------- numbers


def get_number_e911(session: Session, scope: Scope, number_id: str) -> NumberE911 | None:
    """A number's E911 state (None: no address), for ``GET …/{id}/e911``."""
    number = numbers.get_number(session, scope, number_id)
    return session.get(NumberE911, number.id)


def number_states(
    session: Session, number_ids: Sequence[str]
) -> dict[str, tuple[NumberE911, E911Address]]:
    """Each number's E911 state and address, for a page of numbers in one
    query; numbers without an address are missing from the answer."""
    if not number_ids:
        return {}
    rows = session.execute(
        select(NumberE911, E911Address)
        .join(E911Address, E911Address.id == NumberE911.address_id)
        .where(NumberE911.number_id.in_(list(number_ids)))
    )
    return {row.number_id: (row, address) for row, address in rows}


@dataclass(frozen=True)
class Provisioning:
    """What an attach or retry left: ``status`` pending (outcome unknown: the
    sweep pushes again), provisioned or failed (``reason``)."""

    number_id: str
    phone_number: str
    address_id: str
    status: str
    reason: str | None


def _snapshot(number: PhoneNumber, row: NumberE911) -> Provisioning:
    return Provisioning(number.id, number.e164, row.address_id, row.status, row.reason)


def serving_account(number: PhoneNumber) -> str:
    """The account whose address a number's 911 calls must carry: the tenant
    it serves, else (not given to a tenant) the account that owns it."""
    return number.tenant_id or number.owner_id


def _require_serving_account(number: PhoneNumber, address: E911Address) -> None:
    serves = serving_account(number)
    if address.account_id == serves:
        return
    if number.tenant_id is not None and address.account_id == number.owner_id:
        # The partner's own office: a 911 call from the tenant's phone would
        # send help to the partner's building.
        message = (
            f"E911 address {address.id} is the partner's own; {number.e164} serves tenant "
            f"{number.tenant_id}, so its E911 address must be the tenant's (create one "
            f"with tenant_id {number.tenant_id})"
        )
    else:
        message = (
            f"E911 address {address.id} belongs to another account than the one "
            f"{number.e164} serves ({serves}); its E911 address must be that account's"
        )
    raise Conflict(message, field="address_id", code="tenant_mismatch")


def attach(
    db: Database, carrier: Carrier, scope: Scope, number_id: str, address_id: str
) -> Provisioning:
    """``PUT /telephony/numbers/{id}/e911``: give an active number a validated
    address of the account it serves (:func:`serving_account`: its tenant, else
    its owner; a partner's own address never goes on a tenant's number) and
    push it to the number's own carrier.
    The number is ``pending`` in one transaction, the carrier is asked, and the
    answer is written in a second: ``provisioned``, or ``failed`` (then
    CarrierError, 502; ``retry`` pushes again). An unknown outcome stays
    ``pending`` for the sweep."""
    with db.session() as session:
        number = numbers.lock_number(session, scope, number_id)
        if number.status != lifecycle.ACTIVE:
            raise Conflict(
                f"{number.e164} is {number.status}; only an active number takes an E911 address",
                field="number_id",
                code="number_not_active",
            )
        address = get_address(session, scope, address_id)
        if address.status != VALIDATED:
            raise ValidationFailed(
                f"E911 address {address.id} is not validated ({address.status}); "
                "accept the carrier's suggestion first",
                field="address_id",
            )
        _require_serving_account(number, address)
        row = session.get(NumberE911, number.id, with_for_update=True)
        now = clock.now()
        if row is None:
            row = NumberE911(
                number_id=number.id,
                address_id=address.id,
                status=PENDING,
                attempt=1,
                updated_at=now,
            )
            session.add(row)
        else:
            row.address_id = address.id
            row.status = PENDING
            row.reason = None
            row.attempt += 1
            row.updated_at = now
        session.flush()
        lifecycle.record(session, number, "e911.pending", scope.account_id, address_id=address.id)
        attempt = row.attempt
    return _push(db, carrier, number_id, attempt, scope.account_id)


def retry(db: Database, carrier: Carrier, scope: Scope, number_id: str) -> Provisioning:
    """``POST /telephony/numbers/{id}/e911/retry``: push a failed (or still
    pending) E911 address again."""
    with db.session() as session:
        number = numbers.lock_number(session, scope, number_id)
        row = session.get(NumberE911, number.id, with_for_update=True)
        if row is None:
            raise NotFound(f"{number.e164} has no E911 address", field="number_id")
        if row.status == PROVISIONED:
            return _snapshot(number, row)
        row.status = PENDING
        row.reason = None
        row.attempt += 1
        row.updated_at = clock.now()
        lifecycle.record(
            session, number, "e911.pending", scope.account_id, address_id=row.address_id, retry=True
        )
        attempt = row.attempt
    return _push(db, carrier, number_id, attempt, scope.account_id)


def _holding(carrier: Carrier, managed: bool, holder: str) -> Carrier:
    """Where a number's E911 address is set: the carrier that holds it. An
    imported number is not held by any platform carrier; it goes to the
    configured one, as it always has."""
    return carrier_for(carrier, holder) if managed else carrier


def _push(
    db: Database, carrier: Carrier, number_id: str, attempt: int, account_id: str | None
) -> Provisioning:
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_id)
        row = session.get_one(NumberE911, number_id)
        data = _data(session.get_one(E911Address, row.address_id))
        e164, managed, holder = number.e164, number.is_managed, number.carrier
    reason: str | None = None
    try:
        _holding(carrier, managed, holder).provision_e911(e164, data)
        outcome = PROVISIONED
    except CarrierFailure as exc:
        outcome, reason = FAILED, str(exc) or "the carrier refused the E911 address"
    except CarrierOutcomeUnknown:
        outcome = PENDING
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_id)
        row = session.get_one(NumberE911, number_id, with_for_update=True)
        # A newer push (another attach or retry) owns the row now.
        if outcome != PENDING and row.attempt == attempt and row.status == PENDING:
            row.status = outcome
            row.reason = reason
            row.updated_at = clock.now()
            if outcome == PROVISIONED:
                row.provisioned_at = row.updated_at
            lifecycle.record(
                session,
                number,
                f"e911.{outcome}",
                account_id,
                address_id=row.address_id,
                **({"reason": reason} if reason else {}),
            )
        result = _snapshot(number, row)
    if result.status == FAILED and outcome == FAILED:
        raise CarrierError(
            f"the carrier did not set the E911 address of {e164}: {reason}; "
            f"retry with POST /telephony/numbers/{number_id}/e911/retry",
            field="address_id",
        )
    return result


def detach(db: Database, carrier: Carrier, scope: Scope, number_id: str) -> None:
    """``DELETE /telephony/numbers/{id}/e911``: remove the address at the
    carrier, then here. A refusal (502) leaves it as it was."""
    with db.session() as session:
        number = numbers.lock_number(session, scope, number_id)
        if session.get(NumberE911, number.id) is None:
            raise NotFound(f"{number.e164} has no E911 address", field="number_id")
        e164, managed, holder = number.e164, number.is_managed, number.carrier
    try:
        _holding(carrier, managed, holder).remove_e911(e164)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        raise CarrierError(
            f"the carrier did not remove the E911 address of {e164}: {exc}", field="number_id"
        ) from exc
    with db.session() as session:
        number = session.get_one(PhoneNumber, number_id)
        row = session.get(NumberE911, number_id, with_for_update=True)
        if row is not None:
            session.delete(row)
            lifecycle.record(
                session, number, "e911.removed", scope.account_id, address_id=row.address_id
            )


def repush_pending(
    db: Database, carrier: Carrier, min_age: timedelta = timedelta(seconds=60)
) -> list[str]:
    """The sweep's step: push again E911 addresses an unknown outcome left
    ``pending`` (older than ``min_age``: a push may still be under way).
    Pushing an address twice is harmless. Returns the numbers now provisioned."""
    cutoff = clock.now() - min_age
    with db.session() as session:
        due = [
            (number_id, attempt)
            for number_id, attempt in session.execute(
                select(NumberE911.number_id, NumberE911.attempt)
                .join(PhoneNumber, PhoneNumber.id == NumberE911.number_id)
                .where(
                    NumberE911.status == PENDING,
                    NumberE911.updated_at <= cutoff,
                    PhoneNumber.carrier.in_(served_carrier_names(carrier)),
                )
                .order_by(NumberE911.number_id)
            )
        ]
    done: list[str] = []
    for number_id, attempt in due:
        try:
            result = _push(db, carrier, number_id, attempt, None)
        except CarrierError:
            continue
        if result.status == PROVISIONED:
            done.append(result.phone_number)
    return done


def outbound_warnings(session: Session, number_id: str) -> list[dict[str, str]]:
    """Warnings for calling out from a number: none once its E911 address is
    provisioned (a 911 call from it would reach no dispatcher otherwise)."""
    row = session.get(NumberE911, number_id)
    if row is not None and row.status == PROVISIONED:
        return []
    number = session.get_one(PhoneNumber, number_id)
    state = "has no E911 address" if row is None else f"has an E911 address still {row.status}"
    return [
        {
            "code": "e911_missing",
            "message": f"{number.e164} {state}: a 911 call placed from it can't be routed "
            "to the caller's location. Set one with PUT "
            f"/telephony/numbers/{number_id}/e911.",
        }
    ]


# ---------------------------------------------------------------- locations


def create_location(session: Session, scope: Scope, name: str, address_id: str) -> Location:
    """A physical site of the address's tenant (``POST /e911/locations``)."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 200:
        raise ValidationFailed("name must be 1 to 200 characters", field="name")
    address = get_address(session, scope, address_id)
    location = Location(
        id=new_id("loc"),
        account_id=address.account_id,
        name=cleaned,
        address_id=address.id,
        created_at=clock.now(),
    )
    session.add(location)
    session.flush()
    return location


def list_locations(session: Session, scope: Scope) -> list[Location]:
    return list(
        session.scalars(
            select(Location).where(repository.locations_readable(scope)).order_by(Location.id)
        )
    )


def delete_location(session: Session, scope: Scope, location_id: str) -> None:
    location = repository.get_location(session, scope, location_id)
    session.delete(location)


# ---------------------------------------------------------------- compliance


# Why a number is in the compliance report.
NO_ADDRESS = "no_address"
NOT_PROVISIONED = "not_provisioned"  # pending or failed at the carrier
OTHER_ACCOUNTS_ADDRESS = "address_of_another_account"


class NumberGap(NamedTuple):
    number: PhoneNumber
    e911: NumberE911 | None
    problem: str  # NO_ADDRESS | NOT_PROVISIONED | OTHER_ACCOUNTS_ADDRESS


@dataclass
class ComplianceReport:
    """``locations``: sites with no active number whose provisioned E911
    address is the site's address (Kari's Law / RAY BAUM'S Act want one per
    site); ``numbers``: active numbers with no provisioned E911 address of the
    account they serve (none, not provisioned, or, for a number given to
    another tenant since, still the previous tenant's or the partner's)."""

    locations: list[tuple[Location, E911Address]] = field(default_factory=list)
    numbers: list[NumberGap] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return not self.locations and not self.numbers


def _same_place(other: type[E911Address], address: type[E911Address]) -> ColumnElement[bool]:
    """Two address records of one account naming the same place (ZIP+4 aside)."""
    return and_(
        other.account_id == address.account_id,
        other.street == address.street,
        other.unit.is_not_distinct_from(address.unit),
        other.city == address.city,
        other.state == address.state,
        func.substr(other.postal_code, 1, 5) == func.substr(address.postal_code, 1, 5),
    )


def compliance_report(session: Session, scope: Scope) -> ComplianceReport:
    """``GET /compliance/e911``: what the caller's scope (a partner: its own
    account and its tenants) lacks. Two queries, set-based."""
    other = aliased(E911Address)
    covered = exists(
        select(NumberE911.number_id)
        .join(PhoneNumber, PhoneNumber.id == NumberE911.number_id)
        .join(other, other.id == NumberE911.address_id)
        .where(
            NumberE911.status == PROVISIONED,
            PhoneNumber.status == lifecycle.ACTIVE,
            _same_place(other, E911Address),
        )
    )
    locations = [
        (location, address)
        for location, address in session.execute(
            select(Location, E911Address)
            .join(E911Address, E911Address.id == Location.address_id)
            .where(repository.locations_readable(scope), ~covered)
            .order_by(Location.id)
        )
    ]
    visible = number_repository.readable(scope)
    serves = func.coalesce(PhoneNumber.tenant_id, PhoneNumber.owner_id)
    missing = [
        NumberGap(
            number,
            row,
            NO_ADDRESS
            if row is None
            else NOT_PROVISIONED
            if row.status != PROVISIONED
            else OTHER_ACCOUNTS_ADDRESS,
        )
        for number, row in session.execute(
            select(PhoneNumber, NumberE911)
            .outerjoin(NumberE911, NumberE911.number_id == PhoneNumber.id)
            .outerjoin(E911Address, E911Address.id == NumberE911.address_id)
            .where(
                visible,
                PhoneNumber.status == lifecycle.ACTIVE,
                or_(
                    NumberE911.status.is_(None),
                    NumberE911.status != PROVISIONED,
                    # Given to another tenant since (or back to its owner):
                    # its 911 calls still carry the previous account's address.
                    E911Address.account_id != serves,
                ),
            )
            .order_by(PhoneNumber.id)
        )
    ]
    return ComplianceReport(locations=locations, numbers=missing)
