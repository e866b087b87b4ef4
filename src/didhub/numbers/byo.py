"""Bring-your-own numbers (issue 6, "Import"): an account adds numbers it holds
at its own Telnyx, Twilio or Bandwidth account. didhub checks the account
really holds them, points their voice at the platform's SIP edge through the
route the request names, and keeps them as ``is_managed = False``: no monthly
fee, no renewal, never released at the platform's carrier. Usage is still rated.

The provider credentials are used for the request and dropped: never stored,
never logged. What is kept, in the number's ``imported`` history event, is the
provider's id for the number and its routing before the import (ids only), so
``release_import`` can put the routing back.

All or nothing: a number not held, a number already live in didhub, or a
provider refusing to route one number imports none (numbers already pointed
at the edge are pointed back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from didhub import clock, numbering
from didhub.accounts import service as accounts
from didhub.carriers import byo as providers
from didhub.carriers.base import CarrierFailure, CarrierOutcomeUnknown
from didhub.carriers.byo import ByoProvider, ClientOptions, HeldNumber
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.errors import CarrierError, Conflict, ValidationFailed
from didhub.numbers import lifecycle
from didhub.numbers import repository as number_repository
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import ACTIVE, LIVE_STATUSES
from didhub.numbers.models import NumberEvent, PhoneNumber
from didhub.tenancy import Scope

IMPORTED = "imported"  # the history kind that records the import
ProviderFactory = Callable[[str, Mapping[str, str]], ByoProvider]


@dataclass(frozen=True)
class ImportResult:
    numbers: list[PhoneNumber]
    provider: str
    edge_uri: str | None


def _base_url(settings: Settings, provider: str) -> str:
    urls = {
        "telnyx": settings.telnyx_base_url,
        "twilio": settings.twilio_base_url,
        "bandwidth": settings.bandwidth_base_url,
    }
    return urls[provider]


def default_factory(settings: Settings) -> ProviderFactory:
    options = {
        p: ClientOptions(
            _base_url(settings, p),
            timeout=httpx.Timeout(settings.carrier_timeout_seconds, connect=5.0),
            max_attempts=settings.carrier_max_attempts,
        )
        for p in providers.PROVIDERS
    }

    def make(provider: str, credentials: Mapping[str, str]) -> ByoProvider:
        return providers.make(provider, credentials, options[provider])

    return make


# ---------------------------------------------------------------- validation


def check_provider(provider: object) -> str:
    if not isinstance(provider, str) or provider.strip().lower() not in providers.PROVIDERS:
        raise ValidationFailed(
            f"provider must be one of {', '.join(providers.PROVIDERS)}", field="provider"
        )
    return provider.strip().lower()


def _keys(
    provider: str, given: object, wanted: tuple[str, ...], field: str, what: str
) -> dict[str, str]:
    if not isinstance(given, Mapping):
        raise ValidationFailed(f"{field} must be an object with {', '.join(wanted)}", field=field)
    out: dict[str, str] = {}
    for key in wanted:
        value = given.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"{provider} needs {what} {key}", field=f"{field}.{key}")
        out[key] = value.strip()
    extra = sorted(set(given) - set(wanted))
    if extra:
        raise ValidationFailed(
            f"{provider} takes no {what} {extra[0]}", field=f"{field}.{extra[0]}"
        )
    return out


def check_credentials(provider: str, credentials: object) -> dict[str, str]:
    return _keys(
        provider, credentials, providers.CREDENTIAL_KEYS[provider], "credentials", "credential"
    )


def check_voice(provider: str, voice: object) -> dict[str, str]:
    return _keys(provider, voice or {}, providers.VOICE_KEYS[provider], "voice", "voice setting")


# ---------------------------------------------------------------- import


def _already_live(db: Database, wanted: Sequence[str]) -> None:
    with db.session() as session:
        live = session.scalars(
            select(PhoneNumber.e164)
            .where(PhoneNumber.e164.in_(wanted), PhoneNumber.status.in_(LIVE_STATUSES))
            .order_by(PhoneNumber.e164)
        ).first()
    if live is not None:
        field = f"phone_numbers[{wanted.index(live)}]" if len(wanted) > 1 else "phone_numbers"
        raise Conflict(
            f"{live} is already a live number in didhub", field=field, code="number_exists"
        )


def _carrier_error(exc: Exception, what: str) -> CarrierError:
    return CarrierError(f"{what}: {exc}", field="provider")


def import_numbers(
    db: Database,
    settings: Settings,
    scope: Scope,
    provider: object,
    credentials: object,
    phone_numbers: Sequence[str],
    voice: object = None,
    factory: ProviderFactory | None = None,
) -> ImportResult:
    name = check_provider(provider)
    creds = check_credentials(name, credentials)
    route = check_voice(name, voice)
    wanted = numbers.validate_numbers(phone_numbers, "phone_numbers")
    _already_live(db, wanted)
    client = (factory or default_factory(settings))(name, creds)
    try:
        return _import(db, settings, scope, client, wanted, route)
    finally:
        client.close()


def _import(
    db: Database,
    settings: Settings,
    scope: Scope,
    client: ByoProvider,
    wanted: list[str],
    route: dict[str, str],
) -> ImportResult:
    held: list[HeldNumber] = []
    missing: list[str] = []
    for e164 in wanted:
        try:
            found = client.find(e164)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            raise _carrier_error(exc, f"could not ask {client.name} about {e164}") from exc
        if found is None:
            missing.append(e164)
        else:
            held.append(found)
    if missing:
        raise ValidationFailed(
            f"the {client.name} account does not hold {', '.join(missing)}; nothing was imported",
            field="phone_numbers",
        )
    try:
        client.point(held, route)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        _put_back(client, held)
        raise _carrier_error(
            exc, f"{client.name} did not route the numbers to the edge; nothing was imported"
        ) from exc
    try:
        rows = _store(db, settings, scope, client.name, held, route)
    except IntegrityError:
        _put_back(client, held)
        raise Conflict(
            "a number was just added to didhub by someone else; nothing was imported",
            field="phone_numbers",
            code="number_exists",
        ) from None
    return ImportResult(rows, client.name, settings.sip_edge_uri)


def _put_back(client: ByoProvider, held: Sequence[HeldNumber]) -> None:
    """Best effort: route every number as it was (a number never moved is
    set to what it already had, which is harmless)."""
    for number in held:
        with contextlib.suppress(CarrierFailure, CarrierOutcomeUnknown):
            client.restore(number)


def _store(
    db: Database,
    settings: Settings,
    scope: Scope,
    provider: str,
    held: Sequence[HeldNumber],
    route: dict[str, str],
) -> list[PhoneNumber]:
    now = clock.now()
    tenant_id = scope.account_id if scope.kind == accounts.TENANT else None
    with db.session() as session:
        rows: list[PhoneNumber] = []
        for number in sorted(held, key=lambda n: n.phone_number):
            e164 = number.phone_number
            row = PhoneNumber(
                id=new_id("num"),
                e164=e164,
                country_code=numbering.region_of(e164),
                phone_number_type=numbering.number_type_of(e164),
                features=["voice"],
                status=ACTIVE,
                is_managed=False,
                carrier=provider,
                owner_id=scope.account_id,
                tenant_id=tenant_id,
                monthly_cost=Decimal("0.00"),
                upfront_cost=Decimal("0.00"),
                currency=settings.currency,
                created_at=now,
                purchased_at=now,
                renews_on=None,
                billed_periods=0,
            )
            session.add(row)
            session.flush()
            lifecycle.record(
                session,
                row,
                IMPORTED,
                scope.account_id,
                provider=provider,
                provider_id=number.provider_id,
                previous_routing=dict(number.routing),
                routing=dict(route),
            )
            rows.append(row)
    by_e164 = {r.e164: r for r in rows}
    return [by_e164[n.phone_number] for n in held]


# ---------------------------------------------------------------- give back


def _import_record(db: Database, number_id: str) -> dict[str, Any]:
    with db.session() as session:
        event = session.scalars(
            select(NumberEvent)
            .where(NumberEvent.number_id == number_id, NumberEvent.kind == IMPORTED)
            .order_by(NumberEvent.id.desc())
        ).first()
        return dict(event.data) if event is not None else {}


def release_import(
    db: Database,
    settings: Settings,
    scope: Scope,
    number_id: str,
    credentials: object,
    factory: ProviderFactory | None = None,
) -> PhoneNumber:
    """Give an imported number back: its voice routing at the provider is put
    back as it was before the import (with the credentials given again), then
    it is released in didhub (assignments end). If the provider refuses, the
    number stays active in didhub, routed as it was."""
    with db.session() as session:
        number = numbers.lock_number(session, scope, number_id)
        number_repository.require_writable(session, scope, number, "release")
        if number.is_managed:
            raise Conflict(
                f"{number.e164} was bought through didhub, not imported; use /numbers/release",
                field="number_id",
                code="not_imported",
            )
        provider = number.carrier
        creds = check_credentials(provider, credentials)
        numbers.begin_release(session, number, scope.account_id, "import given back")
        number_pk, e164 = number.id, number.e164
    record = _import_record(db, number_pk)
    previous = record.get("previous_routing")
    held = HeldNumber(
        e164,
        str(record.get("provider_id") or ""),
        dict(previous) if isinstance(previous, dict) else {},
    )
    client = (factory or default_factory(settings))(provider, creds)
    try:
        client.restore(held)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        with db.session() as session:
            row = session.get_one(PhoneNumber, number_pk, with_for_update=True)
            before = lifecycle.status_before(session, row, lifecycle.RELEASING) or ACTIVE
            lifecycle.transition(session, row, before, scope.account_id, reason=str(exc))
        raise CarrierError(
            f"{provider} did not restore the routing of {e164}: {exc}; it is still in didhub",
            field="provider",
        ) from exc
    finally:
        client.close()
    with db.session() as session:
        row = session.get_one(PhoneNumber, number_pk, with_for_update=True)
        lifecycle.transition(session, row, lifecycle.RELEASED, scope.account_id)
        numbers.end_assignments(session, row, scope.account_id, "import given back")
        row.released_at = clock.now()
        row.renews_on = None
        return row
