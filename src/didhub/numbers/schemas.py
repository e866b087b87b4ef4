"""The API's request shapes for numbers, with the seeds' field names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub import numbering
from didhub.accounts.models import Account, Agent
from didhub.carriers.base import AvailableNumber, SearchQuery
from didhub.config import Settings
from didhub.e911 import service as e911
from didhub.e911.models import NumberE911
from didhub.errors import ValidationFailed
from didhub.inputs import RequestModel
from didhub.numbers import cnam
from didhub.numbers import service as numbers
from didhub.numbers.models import NumberAssignment, PhoneNumber
from didhub.outputs import CursorMeta, Data, Notice, ResponseModel, cost, when


class _Strict(RequestModel):
    """Unknown fields refused, text stripped and checked (``didhub.inputs``)."""


_ADMINISTRATIVE_AREAS = {"US": numbering.US_STATES, "CA": numbering.CA_PROVINCES}
_EXAMPLE_AREA = {"US": "AR", "CA": "ON", "AU": "NSW"}


class SearchRequest(_Strict):
    country_code: str = "US"
    area_code: str | None = None
    nxx: str | None = None
    administrative_area: str | None = None
    locality: str | None = Field(default=None, max_length=100)
    rate_center: str | None = Field(default=None, max_length=32)
    pattern: str | None = Field(default=None, max_length=30)
    # A US ZIP code: numbers whose rate center serves it (carriers that search by ZIP).
    postal_code: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    # Without one: what the pattern implies (877-… is toll-free), else local.
    phone_number_type: Literal["local", "toll-free", "mobile"] | None = None
    # 100 pages of 50 is as deep as a person pages; narrow the search to go further.
    page: int = Field(default=1, ge=1, le=100)
    page_size: int = Field(default=20, ge=1, le=50)

    @field_validator("country_code")
    @classmethod
    def _country(cls, value: str) -> str:
        return numbering.normalize_country(value)

    @field_validator("area_code", "nxx")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not (value.isascii() and value.isdigit()) or not 1 <= len(value) <= 5:
            raise ValueError("must be digits only")
        return value

    @field_validator("administrative_area")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not (value.isascii() and value.isalpha()) or len(value) > 3:
            raise ValueError("must be a state or province abbreviation, e.g. CA")
        return value.upper()

    @field_validator("locality", "rate_center")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return numbering.compile_pattern(value) if value else None

    @model_validator(mode="after")
    def _nanp_only(self) -> SearchRequest:
        nanp = self.country_code in ("US", "CA")
        if self.nxx is not None and (not nanp or len(self.nxx) != 3):
            raise ValueError("nxx is three digits and exists only for US and CA numbers")
        if nanp and self.area_code is not None and len(self.area_code) != 3:
            raise ValueError("area_code for US and CA is three digits")
        if self.phone_number_type is None:
            toll_free = nanp and (self.pattern or "")[:3] in numbering.TOLL_FREE_NPAS
            self.phone_number_type = "toll-free" if toll_free else "local"
        if self.administrative_area is not None:
            known = _ADMINISTRATIVE_AREAS.get(self.country_code)
            if known is None:
                known = numbering.administrative_areas(self.country_code)
            if known and self.administrative_area not in known:
                raise ValidationFailed(
                    f"{self.administrative_area!r} is not a state or province of "
                    f"{self.country_code}: use its abbreviation, e.g. "
                    f"{_EXAMPLE_AREA.get(self.country_code, sorted(known)[0])}",
                    field="administrative_area",
                )
        return self

    def to_query(self) -> SearchQuery:
        return SearchQuery(
            country_code=self.country_code,
            phone_number_type=self.phone_number_type or "local",
            area_code=self.area_code,
            nxx=self.nxx,
            administrative_area=self.administrative_area,
            locality=self.locality,
            rate_center=self.rate_center,
            pattern=self.pattern,
            postal_code=self.postal_code,
        )


class QuoteRequest(_Strict):
    phone_numbers: list[str] = Field(min_length=1, max_length=100)


class PurchaseRequest(_Strict):
    phone_number: str | None = None
    phone_numbers: list[str] | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_of(self) -> PurchaseRequest:
        if (self.phone_number is None) == (self.phone_numbers is None):
            raise ValueError("give either phone_number or phone_numbers")
        return self


class BulkTenantRequest(_Strict):
    """Give many numbers to one tenant at once (``tenant_id`` null: take them
    back); all or none."""

    number_ids: list[str] = Field(min_length=1, max_length=500)
    tenant_id: str | None


class PatchNumberRequest(_Strict):
    """Absent fields stay as they are. ``tenant_id``: null unassigns;
    ``cnam``: the number's caller name, null to inherit the default;
    ``friendly_name``: the owner's label for it, null for none."""

    tenant_id: str | None = None
    cnam: str | None = None
    friendly_name: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _something(self) -> PatchNumberRequest:
        if not self.model_fields_set & {"tenant_id", "cnam", "friendly_name"}:
            raise ValueError("give tenant_id, cnam and/or friendly_name")
        return self


class AssignRequest(_Strict):
    number_id: str
    agent_id: str
    assignment_type: Literal["inbound", "outbound"]


class UnassignRequest(_Strict):
    number_id: str
    assignment_type: Literal["inbound", "outbound"]


class ReleaseRequest(_Strict):
    number_id: str


class ImportRequest(_Strict):
    """Bring-your-own numbers. ``credentials`` and ``voice`` are checked per
    provider in ``numbers/byo.py`` so a 422 names the missing key."""

    provider: str
    credentials: dict[str, object]
    phone_numbers: list[str]
    voice: dict[str, object] | None = None


class ReleaseImportRequest(_Strict):
    credentials: dict[str, object]


# ------------------------------------------------------------------ answers


class CostInformation(ResponseModel):
    monthly_cost: str
    upfront_cost: str
    currency: str


class AvailableNumberOut(ResponseModel):
    phone_number: str
    phone_number_type: str
    country_code: str
    locality: str | None
    administrative_area: str | None
    rate_center: str | None
    features: list[str]
    cost_information: CostInformation


class SearchMeta(ResponseModel):
    page: int
    page_size: int
    count: int
    has_more: bool
    carrier: str
    partial: bool | None = Field(
        default=None, description="Only when some carriers didn't answer: true"
    )
    failed_carriers: list[str] | None = Field(
        default=None, description="Only when partial: the carriers that didn't answer"
    )


class SearchAnswer(ResponseModel):
    data: list[AvailableNumberOut]
    meta: SearchMeta


class LocalityOut(ResponseModel):
    locality: str
    administrative_area: str


class QuoteLineOut(ResponseModel):
    phone_number: str
    phone_number_type: str
    locality: str | None
    administrative_area: str | None
    rate_center: str | None
    monthly_cost: str
    upfront_cost: str
    total: str


class QuoteOut(ResponseModel):
    quote_id: str
    held: bool
    expires_at: str | None
    hold_refused: str | None
    phone_numbers: list[QuoteLineOut]
    monthly_total: str
    upfront_total: str
    total: str
    currency: str
    wallet_balance: str
    sufficient_funds: bool


class AssignmentOut(ResponseModel):
    id: str
    number_id: str
    agent_id: str
    agent_name: str | None
    assignment_type: str
    assigned_at: str | None
    ended_at: str | None


class AssignmentsOut(ResponseModel):
    inbound: AssignmentOut | None
    outbound: AssignmentOut | None


class CnamOut(ResponseModel):
    name: str | None
    source: str
    status: str | None
    reason: str | None
    updated_at: str | None


class NumberE911Out(ResponseModel):
    address_id: str
    status: str
    reason: str | None


class PhoneNumberOut(ResponseModel):
    id: str
    phone_number: str
    phone_number_type: str
    country_code: str
    status: str
    is_managed: bool
    carrier_missing_since: str | None
    locality: str | None
    administrative_area: str | None
    rate_center: str | None
    friendly_name: str | None = Field(description="The owner's label for it")
    features: list[str]
    tenant_id: str | None
    tenant_name: str | None
    assigned_to: str
    assignments: AssignmentsOut
    cost_information: CostInformation
    cnam: CnamOut
    e911: NumberE911Out | None
    carrier: str | None
    order_id: str | None
    failure_reason: str | None
    created_at: str | None
    purchased_at: str | None
    renews_on: str | None
    released_at: str | None


class PurchaseMeta(ResponseModel):
    order_id: str
    charged: str
    refunded: str
    currency: str
    outcome_known: bool
    errors: dict[str, str]


class PurchaseAnswer(ResponseModel):
    data: PhoneNumberOut | list[PhoneNumberOut] = Field(
        description="One number for phone_number, a list for phone_numbers"
    )
    meta: PurchaseMeta


class ImportMeta(ResponseModel):
    provider: str
    edge_uri: str | None
    charged: str


class ImportAnswer(ResponseModel):
    data: list[PhoneNumberOut]
    meta: ImportMeta


class NumberAnswer(Data[PhoneNumberOut]):
    meta: Notice | None = Field(
        default=None, description="Only when the caller name changed: carriers' caches"
    )


class NumberList(ResponseModel):
    data: list[PhoneNumberOut]
    meta: CursorMeta


class AssignAnswer(Data[AssignmentOut]):
    warnings: list[dict[str, str]] = Field(
        description="Outbound from a number without a provisioned E911 address: said here"
    )


# ------------------------------------------------------------------ answers


def available(settings: Settings, item: AvailableNumber) -> dict[str, Any]:
    price = numbers.price_for(settings, item.phone_number_type)
    return {
        "phone_number": item.phone_number,
        "phone_number_type": item.phone_number_type,
        "country_code": item.country_code,
        "locality": item.locality,
        "administrative_area": item.administrative_area,
        "rate_center": item.rate_center,
        "features": list(item.features),
        "cost_information": cost(price.monthly, price.setup, settings.currency),
    }


def assignment(item: NumberAssignment, agent_name: str | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "number_id": item.number_id,
        "agent_id": item.agent_id,
        "agent_name": agent_name,
        "assignment_type": item.assignment_type,
        "assigned_at": when(item.assigned_at),
        "ended_at": when(item.ended_at),
    }


def phone_numbers(
    session: Session,
    rows: list[PhoneNumber],
    e911_states: Mapping[str, tuple[NumberE911, Any]] | None = None,
    *,
    fresh: bool = False,
) -> list[dict[str, Any]]:
    """Numbers with their tenant, live agent assignments, CNAM listing and E911
    state: the same few queries for a page of any size (``e911_states``: from
    ``e911.number_states``, when the caller needed them too). ``fresh``: a
    purchase's numbers as its settlement left them (``PurchaseResult.fresh``),
    which have no assignment, listing or E911 address to read."""
    ids = [r.id for r in rows]
    live = {} if fresh else numbers.live_assignments(session, ids)
    tenant_ids = {r.tenant_id for r in rows if r.tenant_id}
    agent_ids = {a.agent_id for by_type in live.values() for a in by_type.values()}
    tenants = {t.id: t.name for t in _get_all(session, Account, tenant_ids)}
    agents = {a.id: a.name for a in _get_all(session, Agent, agent_ids)}
    listings = cnam.describe(session, rows, listed=not fresh)
    if e911_states is None:
        e911_states = {} if fresh else e911.number_states(session, ids)
    out = []
    for row in rows:
        by_type = live.get(row.id, {})
        out.append(
            {
                "id": row.id,
                "phone_number": row.e164,
                "phone_number_type": row.phone_number_type,
                "country_code": row.country_code,
                "status": row.status,
                "is_managed": row.is_managed,
                "carrier_missing_since": when(row.carrier_missing_since),
                "locality": row.locality,
                "administrative_area": row.administrative_area,
                "rate_center": row.rate_center,
                "friendly_name": row.friendly_name,
                "features": list(row.features or []),
                "tenant_id": row.tenant_id,
                "tenant_name": tenants.get(row.tenant_id) if row.tenant_id else None,
                "assigned_to": tenants.get(row.tenant_id, "Unassigned")
                if row.tenant_id
                else "Unassigned",
                "assignments": {
                    kind: assignment(a, agents.get(a.agent_id))
                    if (a := by_type.get(kind))
                    else None
                    for kind in numbers.ASSIGNMENT_TYPES
                },
                "cost_information": cost(row.monthly_cost, row.upfront_cost, row.currency),
                "cnam": cnam_view(listings[row.id]),
                "e911": e911_view(e911_states.get(row.id)),
                "carrier": row.carrier,
                "order_id": row.order_id,
                "failure_reason": row.failure_reason,
                "created_at": when(row.created_at),
                "purchased_at": when(row.purchased_at),
                "renews_on": when(row.renews_on),
                "released_at": when(row.released_at),
            }
        )
    return out


def e911_view(state: tuple[NumberE911, Any] | None) -> dict[str, Any] | None:
    """A number's E911 address and its provisioning (None: no address)."""
    if state is None:
        return None
    row = state[0]
    return {"address_id": row.address_id, "status": row.status, "reason": row.reason}


def cnam_view(view: cnam.CnamView) -> dict[str, Any]:
    return {
        "name": view.name,
        "source": view.source,
        "status": view.status,
        "reason": view.reason,
        "updated_at": when(view.updated_at),
    }


def _get_all(session: Session, model: type[Any], ids: set[str]) -> list[Any]:
    if not ids:
        return []
    return list(session.scalars(select(model).where(model.id.in_(ids))))
