"""Port-in orders: create (with the portability check), change, documents,
the LOA, FOC dates, submit, correct and resubmit, cancel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from didhub import clock, numbering
from didhub.accounts import service as accounts
from didhub.accounts import settings as account_settings
from didhub.carriers.base import (
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    Porting,
    PortRequestData,
    porting_of,
)
from didhub.carriers.multi import MultiCarrier
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.e911 import service as e911
from didhub.errors import CarrierError, Conflict, InsufficientFunds, ValidationFailed
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import LIVE_STATUSES
from didhub.numbers.models import PhoneNumber
from didhub.porting import documents, lifecycle, repository
from didhub.porting.lifecycle import CANCELLED, CORRECTED, DRAFT, EXCEPTION, RESUBMITTED, SUBMITTED
from didhub.porting.models import PortCarrierOrder, PortDocument, PortNumber, PortOrder
from didhub.porting.service.files import order_documents, store
from didhub.tenancy import PARTNER, TENANT, Scope
from didhub.wallet import ledger
from didhub.wallet import service as billing_wallet

EDITABLE = (
    "entity_name",
    "authorized_person",
    "account_number",
    "pin",
    "billing_phone_number",
    "e911_address_id",
    "agent_id",
    "cnam",
)
_REQUIRED = ("entity_name", "authorized_person", "account_number", "billing_phone_number")


def porting_for(carrier: Carrier) -> Porting:
    """The configured carrier's porting (the first of ``multi``'s that ports)."""
    if isinstance(carrier, MultiCarrier):
        for one in carrier.by_name.values():
            if getattr(one, "porting", None) is not None:
                return porting_of(one)
    try:
        return porting_of(carrier)
    except CarrierFailure as exc:
        raise CarrierError(str(exc), field="carrier", code="porting_not_supported") from exc


def owner_scope(order: PortOrder) -> Scope:
    """The scope of the account that asked (and pays) for the order."""
    return Scope(order.owner_id, TENANT if order.owner_id == order.tenant_id else PARTNER)


# ---------------------------------------------------------------- fields


def _text(body: Mapping[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text", field=name)
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(f"{name} is at most {limit} characters", field=name)
    return value


def _fields(
    session: Any, scope: Scope, tenant_id: str, body: Mapping[str, Any], *, new: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limits = {"entity_name": 200, "authorized_person": 200, "account_number": 60, "pin": 20}
    for name, limit in limits.items():
        if new or name in body:
            out[name] = _text(body, name, limit, required=name in _REQUIRED)
    if new or "billing_phone_number" in body:
        raw = _text(body, "billing_phone_number", 20, required=True)
        out["billing_phone_number"] = numbers.validate_numbers([raw or ""], "billing_phone_number")[
            0
        ]
    if "pin" in out and out["pin"] is not None and not out["pin"].isalnum():
        raise ValidationFailed("pin is letters and digits only", field="pin")
    if "cnam" in body:
        cnam = _text(body, "cnam", 15, required=False)
        out["cnam"] = account_settings.validate_cnam(cnam, "cnam") if cnam else None
    if body.get("e911_address_id") is not None:
        address = e911.get_address(session, scope, str(body["e911_address_id"]))
        if address.account_id != tenant_id:
            raise ValidationFailed(
                "the E911 address must be the tenant's own", field="e911_address_id"
            )
        out["e911_address_id"] = address.id
    elif "e911_address_id" in body:
        out["e911_address_id"] = None
    if body.get("agent_id") is not None:
        agent = accounts.get_agent(session, scope, str(body["agent_id"]))
        if agent.tenant_id != tenant_id:
            raise ValidationFailed("the agent must be the tenant's", field="agent_id")
        out["agent_id"] = agent.id
    elif "agent_id" in body:
        out["agent_id"] = None
    return out


def check(carrier: Carrier, phone_numbers: Sequence[str]) -> list[Any]:
    """The carrier's portability check of each number (no order written)."""
    wanted = numbers.validate_numbers(list(phone_numbers), "phone_numbers")
    try:
        return porting_for(carrier).check_portability(wanted)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        raise CarrierError(f"the portability check failed: {exc}", field="phone_numbers") from exc


def create(
    db: Database, carrier: Carrier, settings: Settings, scope: Scope, body: Mapping[str, Any]
) -> PortOrder:
    """A draft order. Every number is checked first: one not portable refuses
    the order (422 naming the number and the carrier's reason); nothing is written."""
    raw = body.get("phone_numbers")
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("phone_numbers must list at least one number", field="phone_numbers")
    wanted = numbers.validate_numbers([str(n) for n in raw], "phone_numbers")
    results = check(carrier, wanted)
    for result in results:
        if not result.portable:
            raise ValidationFailed(
                f"{result.phone_number} can't be ported: {result.reason}",
                field=f"phone_numbers[{wanted.index(result.phone_number)}]"
                if len(wanted) > 1
                else "phone_numbers",
                code="not_portable",
            )
    now = clock.now()
    with db.session() as session:
        if scope.kind == TENANT:
            tenant_id = scope.account_id
        else:
            tenant_raw = body.get("tenant_id")
            if not isinstance(tenant_raw, str) or not tenant_raw:
                raise ValidationFailed("tenant_id is required for a partner", field="tenant_id")
            tenant_id = accounts.get_tenant(session, scope, tenant_raw).id
        live = session.scalars(
            select(PhoneNumber.e164).where(
                PhoneNumber.e164.in_(wanted), PhoneNumber.status.in_(LIVE_STATUSES)
            )
        ).first()
        if live is not None:
            raise Conflict(
                f"{live} is already a live number in didhub",
                field="phone_numbers",
                code="number_exists",
            )
        values = _fields(session, scope, tenant_id, body, new=True)
        order = PortOrder(
            id=new_id("port"),
            owner_id=scope.account_id,
            tenant_id=tenant_id,
            carrier=porting_for(carrier).name,
            status=DRAFT,
            ported_count=0,
            created_at=now,
            updated_at=now,
            **values,
        )
        session.add(order)
        session.flush()
        by = {r.phone_number: r for r in results}
        for e164 in wanted:
            r = by[e164]
            session.add(
                PortNumber(
                    order_id=order.id,
                    e164=e164,
                    portable=True,
                    fast_portable=r.fast_portable,
                    losing_carrier=r.losing_carrier,
                )
            )
        return order


def update(db: Database, scope: Scope, order_id: str, body: Mapping[str, Any]) -> PortOrder:
    """Change a draft, or correct an order in exception (-> corrected)."""
    unknown = sorted(set(body) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(f"{unknown[0]} can't be changed", field=unknown[0])
    with db.session() as session:
        order = repository.get(session, scope, order_id, for_update=True)
        if order.status not in (DRAFT, EXCEPTION, CORRECTED):
            raise Conflict(
                f"port order {order.id} is {order.status}; only a draft or an order in "
                "exception can be changed",
                field="order_id",
                code="port_not_editable",
            )
        values = _fields(session, scope, order.tenant_id, body, new=False)
        if order.status == DRAFT:
            for name, value in values.items():
                setattr(order, name, value)
            order.updated_at = clock.now()
        elif not lifecycle.move(
            session, order.id, CORRECTED, only_from=(EXCEPTION, CORRECTED), **values
        ):
            raise Conflict(
                "the order changed meanwhile; look again", field="order_id", code="port_changed"
            )
        session.flush()
        return repository.get(session, scope, order_id)


# ---------------------------------------------------------------- documents


def loa_pdf(db: Database, scope: Scope, order_id: str) -> bytes:
    """The LOA didhub fills from the order, for the authorized person to sign."""
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        rows = port_numbers(session, order.id)
        address = _address_lines(session, order)
    return documents.render_loa(
        entity_name=order.entity_name,
        authorized_person=order.authorized_person,
        account_number=order.account_number,
        billing_phone_number=order.billing_phone_number,
        service_address=address,
        phone_numbers=[r.e164 for r in rows],
        losing_carriers=sorted({r.losing_carrier for r in rows if r.losing_carrier}),
        gaining_carrier=order.carrier,
        today=clock.now().date(),
    )


def port_numbers(session: Any, order_id: str) -> list[PortNumber]:
    return list(
        session.scalars(
            select(PortNumber).where(PortNumber.order_id == order_id).order_by(PortNumber.e164)
        )
    )


def carrier_orders(session: Any, order_id: str) -> list[PortCarrierOrder]:
    return list(
        session.scalars(
            select(PortCarrierOrder)
            .where(PortCarrierOrder.order_id == order_id)
            .order_by(PortCarrierOrder.carrier_order_id)
        )
    )


def _address(session: Any, order: PortOrder) -> E911AddressData | None:
    if order.e911_address_id is None:
        return None
    from didhub.e911.models import E911Address

    row = session.get(E911Address, order.e911_address_id)
    if row is None:
        return None
    return E911AddressData(
        row.street, row.unit, row.city, row.state, row.postal_code, row.country, row.caller_name
    )


def _address_lines(session: Any, order: PortOrder) -> list[str]:
    a = _address(session, order)
    if a is None:
        return ["(add the E911 / service address)"]
    return [a.street + (f" {a.unit}" if a.unit else ""), f"{a.city}, {a.state} {a.postal_code}"]


# ---------------------------------------------------------------- FOC and submit


def foc_dates(db: Database, carrier: Carrier, scope: Scope, order_id: str) -> list[str]:
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        wanted = [r.e164 for r in port_numbers(session, order.id)]
    try:
        return porting_for(carrier).allowed_foc_dates(wanted)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        raise CarrierError(
            f"the carrier could not give FOC dates: {exc}", field="foc_date"
        ) from exc


def monthly_total(settings: Settings, e164s: Sequence[str]) -> Decimal:
    return sum(
        (numbers.price_for(settings, numbering.number_type_of(n)).monthly for n in e164s),
        Decimal("0.00"),
    )


@dataclass(frozen=True)
class _Prepared:
    request: PortRequestData
    numbers: list[str]


def _prepare(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    order_id: str,
    foc_date: date | None,
) -> _Prepared:
    """Everything submission needs, checked; the documents sent to the carrier."""
    porting = porting_for(carrier)
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        address = _address(session, order)
        if address is None:
            raise ValidationFailed(
                "an E911 address is required before submission", field="e911_address_id"
            )
        from didhub.e911.models import E911Address

        row = session.get(E911Address, order.e911_address_id)
        if row is None or row.status != e911.VALIDATED:
            raise ValidationFailed(
                "the E911 address is not validated; accept the carrier's suggestion first",
                field="e911_address_id",
            )
        docs = order_documents(session, order.id)
        wanted = [r.e164 for r in port_numbers(session, order.id)]
        requested = foc_date or order.foc_date_requested
        snapshot = (
            order.id,
            order.entity_name,
            order.authorized_person,
            order.account_number,
            order.pin,
            order.billing_phone_number,
            order.owner_id,
        )
    bill = next((d for d in reversed(docs) if d.kind == "bill"), None)
    loa = next((d for d in reversed(docs) if d.kind == "loa" and d.signed), None)
    if bill is None:
        raise ValidationFailed("upload a recent bill from the losing carrier", field="bill")
    if loa is None:
        raise ValidationFailed(
            "upload the signed LOA (GET …/loa.pdf gives the one didhub filled)", field="loa"
        )
    if requested is None:
        raise ValidationFailed(
            "choose a FOC date from the carrier's allowed dates", field="foc_date"
        )
    allowed = foc_dates(db, carrier, scope, order_id)
    if requested.isoformat() not in allowed:
        raise ValidationFailed(
            f"{requested.isoformat()} is not one of the carrier's allowed FOC dates "
            f"({', '.join(allowed[:5])}…)",
            field="foc_date",
        )
    with db.read_session() as session:
        balance = ledger.wallet_balance(session, snapshot[6], settings.currency)
    due = monthly_total(settings, wanted)
    if balance < due:
        raise InsufficientFunds(
            f"the ported numbers' first month costs {due:.2f} {settings.currency} from the "
            f"port date but the wallet holds {balance:.2f}; top up and try again",
            field="wallet",
        )
    ids: dict[str, str | None] = {}
    for doc in (loa, bill):
        if doc.carrier_document_id is None:
            content = store(settings).get(doc.storage_key)
            try:
                ids[doc.id] = porting.upload_document(doc.filename, content)
            except (CarrierFailure, CarrierOutcomeUnknown) as exc:
                raise CarrierError(
                    f"the carrier did not take the {doc.kind}: {exc}", field=doc.kind
                ) from exc
            with db.session() as session:
                stored = session.get_one(PortDocument, doc.id)
                stored.carrier_document_id = ids[doc.id]
        else:
            ids[doc.id] = doc.carrier_document_id
    request = PortRequestData(
        reference=snapshot[0],
        phone_numbers=tuple(wanted),
        entity_name=snapshot[1],
        authorized_person=snapshot[2],
        account_number=snapshot[3],
        pin=snapshot[4],
        billing_phone_number=snapshot[5],
        service_address=address,
        foc_date=requested.isoformat(),
        loa_document=ids[loa.id],
        bill_document=ids[bill.id],
    )
    return _Prepared(request, wanted)


def _publish(session: Any, order: PortOrder, kind: str, message: str, **data: Any) -> None:
    """The order's event: in its owner's history, published (``port.*``)."""
    details: dict[str, Any] = {"order_id": order.id, "tenant_id": order.tenant_id, **data}
    billing_wallet.event(session, order.owner_id, kind, message, **details)


def submit(
    db: Database,
    carrier: Carrier,
    settings: Settings,
    scope: Scope,
    order_id: str,
    foc_date: date | None,
) -> PortOrder:
    """draft -> submitted: the carrier creates its orders (split by losing carrier)."""
    prepared = _prepare(db, carrier, settings, scope, order_id, foc_date)
    with db.session() as session:
        repository.get(session, scope, order_id)
        if not lifecycle.move(
            session,
            order_id,
            SUBMITTED,
            only_from=(DRAFT,),
            foc_date_requested=date.fromisoformat(prepared.request.foc_date),
            submitted_at=clock.now(),
        ):
            raise Conflict(
                "only a draft order can be submitted", field="order_id", code="port_not_draft"
            )
    try:
        states = porting_for(carrier).submit_port(prepared.request)
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        with db.session() as session:
            lifecycle.move(session, order_id, DRAFT, only_from=(SUBMITTED,), reason=str(exc)[:1000])
        raise CarrierError(f"the carrier refused the port order: {exc}", field="order_id") from exc
    now = clock.now()
    with db.session() as session:
        order = repository.get(session, scope, order_id)
        rows = {r.e164: r for r in port_numbers(session, order.id)}
        for state in states:
            session.add(
                PortCarrierOrder(
                    carrier_order_id=state.carrier_order_id,
                    order_id=order.id,
                    status=state.status,
                    losing_carrier=state.losing_carrier,
                    reason=state.reason,
                    phone_numbers=list(state.phone_numbers),
                    updated_at=now,
                )
            )
            for e164 in state.phone_numbers:
                if e164 in rows:
                    rows[e164].carrier_order_id = state.carrier_order_id
        _publish(
            session,
            order,
            "port.submitted",
            f"Port order {order.id} submitted: {len(rows)} number(s), FOC requested "
            f"{prepared.request.foc_date}",
            carrier_orders=[s.carrier_order_id for s in states],
            foc_date_requested=prepared.request.foc_date,
        )
        return order


def resubmit(
    db: Database, carrier: Carrier, settings: Settings, scope: Scope, order_id: str
) -> PortOrder:
    """corrected -> resubmitted: each carrier order in exception is sent again."""
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        if order.status != CORRECTED:
            raise Conflict(
                f"port order {order.id} is {order.status}; correct it first",
                field="order_id",
                code="port_not_corrected",
            )
        pending = [
            c.carrier_order_id for c in carrier_orders(session, order.id) if c.status == EXCEPTION
        ]
        requested = order.foc_date_requested
    # A corrected order keeps its FOC date if the carrier still allows it.
    allowed = foc_dates(db, carrier, scope, order_id)
    chosen = (
        requested
        if requested and requested.isoformat() in allowed
        else date.fromisoformat(allowed[0])
    )
    prepared = _prepare(db, carrier, settings, scope, order_id, chosen)
    with db.session() as session:
        if not lifecycle.move(
            session,
            order_id,
            RESUBMITTED,
            only_from=(CORRECTED,),
            foc_date_requested=chosen,
            reason=None,
        ):
            raise Conflict(
                "the order changed meanwhile; look again", field="order_id", code="port_changed"
            )
    porting = porting_for(carrier)
    states = []
    try:
        for carrier_order_id in pending:
            states.append(porting.resubmit_port(carrier_order_id, prepared.request))
    except (CarrierFailure, CarrierOutcomeUnknown) as exc:
        with db.session() as session:
            lifecycle.move(session, order_id, CORRECTED, only_from=(RESUBMITTED,))
        raise CarrierError(
            f"the carrier refused the corrected order: {exc}", field="order_id"
        ) from exc
    with db.session() as session:
        order = repository.get(session, scope, order_id)
        for state in states:
            row = session.get_one(PortCarrierOrder, state.carrier_order_id)
            row.status, row.reason, row.updated_at = state.status, None, clock.now()
        _publish(
            session,
            order,
            "port.submitted",
            f"Port order {order.id} corrected and resubmitted",
            resubmitted=True,
            carrier_orders=pending,
        )
        return order


def cancel(db: Database, carrier: Carrier, scope: Scope, order_id: str) -> PortOrder:
    """Cancel at the carrier, then here; an order that has begun porting
    (or has ported) can't be, whichever happens first wins (one UPDATE)."""
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        if order.status in lifecycle.FINAL:
            raise Conflict(
                f"port order {order.id} is {order.status}", field="order_id", code="port_final"
            )
        open_ids = [
            c.carrier_order_id
            for c in carrier_orders(session, order.id)
            if c.status not in lifecycle.FINAL
        ]
    porting = porting_for(carrier)
    for carrier_order_id in open_ids:
        try:
            porting.cancel_port(carrier_order_id)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            raise CarrierError(
                f"the carrier did not cancel {carrier_order_id}: {exc}", field="order_id"
            ) from exc
    return finish_cancel(db, scope, order_id)


def finish_cancel(db: Database, scope: Scope, order_id: str) -> PortOrder:
    with db.session() as session:
        order = repository.get(session, scope, order_id)
        if not lifecycle.move(session, order_id, CANCELLED, extra=PortOrder.ported_count == 0):
            raise Conflict(
                f"port order {order_id} can't be cancelled: it is {order.status}"
                + (" and numbers have ported" if order.ported_count else ""),
                field="order_id",
                code="port_not_cancellable",
            )
        for row in carrier_orders(session, order_id):
            if row.status not in lifecycle.FINAL:
                row.status = CANCELLED
        order = repository.get(session, scope, order_id)
        _publish(
            session, order, "port.cancelled", f"Port order {order.id} cancelled; nothing is billed"
        )
        return order
