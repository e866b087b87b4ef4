"""An account's port-out PIN: kept here, pushed to the carrier of each of the
account's live numbers where the carrier supports one (refused with its
reason where it doesn't)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from didhub import clock
from didhub.carriers.base import Carrier, CarrierFailure, CarrierOutcomeUnknown, porting_of
from didhub.carriers.registry import carrier_for
from didhub.db import Database
from didhub.errors import ValidationFailed
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import PhoneNumber
from didhub.porting.models import PortOutPin
from didhub.tenancy import Scope


@dataclass
class PinResult:
    set_on: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # number -> the carrier's reason


def set_pin(db: Database, carrier: Carrier, scope: Scope, pin: object) -> PinResult:
    if not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= 10:
        raise ValidationFailed("pin is 4 to 10 digits", field="pin")
    with db.session() as session:
        row = session.get(PortOutPin, scope.account_id, with_for_update=True)
        if row is None:
            session.add(PortOutPin(account_id=scope.account_id, pin=pin, updated_at=clock.now()))
        else:
            row.pin, row.updated_at = pin, clock.now()
        held = session.execute(
            select(PhoneNumber.e164, PhoneNumber.carrier)
            .where(
                PhoneNumber.owner_id == scope.account_id,
                PhoneNumber.is_managed.is_(True),
                PhoneNumber.status.in_((ACTIVE, SUSPENDED)),
            )
            .order_by(PhoneNumber.e164)
        ).all()
    result = PinResult()
    for e164, holder in held:
        try:
            porting_of(carrier_for(carrier, holder)).set_port_out_pin(e164, pin)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            result.refused[e164] = str(exc)
            continue
        result.set_on.append(e164)
    return result


def has_pin(db: Database, account_id: str) -> bool:
    with db.read_session() as session:
        return session.get(PortOutPin, account_id) is not None
