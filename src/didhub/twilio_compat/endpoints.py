"""``/2010-04-01/Accounts/{AccountSid}/…``: Twilio's phone-number resources on
didhub's own services (docs/twilio-compat.md). HTTP Basic auth: the account SID
(a didhub account id or its ``AC…`` alias) and its API key as the auth token.
Every error answers in Twilio's shape; a parameter we don't support is refused."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from didhub import numbering
from didhub.accounts import service as accounts
from didhub.accounts.models import Agent
from didhub.api.deps import Ctx
from didhub.billing.service import assignments
from didhub.carriers.base import SearchQuery
from didhub.e911 import service as e911
from didhub.errors import DidhubError, NumberUnavailable
from didhub.idempotency import run_once
from didhub.numbers import service as numbers
from didhub.numbers.lifecycle import LIVE_STATUSES
from didhub.numbers.models import PhoneNumber
from didhub.tenancy import Scope
from didhub.twilio_compat import schemas as tw

router = APIRouter(prefix=tw.API, tags=["twilio-compatible"], include_in_schema=False)

KINDS = {"Local": "local", "TollFree": "toll-free", "Mobile": "mobile"}
MAX_SEARCH_PAGE = 50
MAX_LIST_PAGE = 1000
VOICE_AGENT = "Twilio VoiceUrl {}"
# Parameters we take and ignore: they change nothing didhub does.
_IGNORED = {
    "Beta",
    "ExcludeAllAddressRequired",
    "ExcludeLocalAddressRequired",
    "ExcludeForeignAddressRequired",
    "PageToken",
    "VoiceMethod",
    "Origin",
}
_CAPABILITY = {
    "VoiceEnabled": "voice",
    "SmsEnabled": "sms",
    "MmsEnabled": "mms",
    "FaxEnabled": "fax",
}


class TwilioFailure(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _from_didhub(exc: DidhubError) -> TwilioFailure:
    status = exc.status_code
    if isinstance(exc, NumberUnavailable) or status == 409:
        return TwilioFailure(21422, exc.message, 400 if status == 409 else status)
    code = {401: 20003, 402: 20402, 403: 20403, 404: 20404, 429: 20429, 502: 20503}.get(
        status, 20001
    )
    if status in (400, 422) and exc.field in ("PhoneNumber", "phone_number"):
        code = 21421
    return TwilioFailure(code, exc.message, 400 if status == 422 else status)


def _answer(work: Callable[[], Response]) -> Response:
    try:
        return work()
    except DidhubError as exc:
        failure = _from_didhub(exc)
    except TwilioFailure as exc:
        failure = exc
    return JSONResponse(
        tw.error(failure.code, failure.message, failure.status), status_code=failure.status
    )


async def _params(request: Request) -> dict[str, str]:
    """The query string, and a POST's form body (Twilio posts form-encoded)."""
    params = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


Params = Annotated[dict[str, str], Depends(_params)]


def _only(params: Mapping[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed - _IGNORED)
    if unknown:
        raise TwilioFailure(
            20001, f"Unsupported parameter(s): {', '.join(unknown)} (docs/twilio-compat.md)"
        )


def _scope(request: Request, ctx: Ctx, account: str) -> Scope:
    """The key's scope, when the Basic credentials and the path's AccountSid
    name the key's own account."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = token = ""
    if scheme.lower() != "basic" or not token:
        raise TwilioFailure(20003, "Authenticate: HTTP Basic with AccountSid:AuthToken", 401)
    try:
        with ctx.db.read_session() as session:
            scope = accounts.authenticate(session, token)
    except DidhubError:
        raise TwilioFailure(20003, "Authenticate: the auth token is not valid", 401) from None
    own = {scope.account_id, tw.account_sid(scope.account_id)}
    if user not in own:
        raise TwilioFailure(20003, "Authenticate: the account SID is not this key's", 401)
    if account not in own:
        raise TwilioFailure(20404, f"The requested resource {request.url.path} was not found", 404)
    return scope


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise TwilioFailure(20001, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


# ---------------------------------------------------------------- AvailablePhoneNumbers


def _query(country: str, kind: str, params: Mapping[str, str]) -> SearchQuery:
    area = params.get("AreaCode") or None
    if area is not None and not (area.isascii() and area.isdigit() and len(area) == 3):
        raise TwilioFailure(21451, "AreaCode must be three digits")
    region = params.get("InRegion") or None
    postal = params.get("InPostalCode") or None
    if postal is not None and not (postal.isdigit() and len(postal) == 5):
        raise TwilioFailure(20001, "InPostalCode must be a five-digit ZIP code")
    return SearchQuery(
        country_code=numbering.normalize_country(country),
        phone_number_type=KINDS[kind],  # type: ignore[arg-type]
        area_code=area,
        administrative_area=region.upper() if region else None,
        locality=params.get("InLocality") or None,
        rate_center=params.get("InRateCenter") or None,
        postal_code=postal,
    )


def _contains(raw: str) -> list[str]:
    """Twilio's ``Contains`` (digits, letters, ``*`` one digit) as didhub's
    patterns: 10 characters fix every position, fewer match anywhere."""
    pattern = numbering.compile_pattern(raw, field="Contains")
    if len(pattern) >= 10:
        return [pattern]
    return ["X" * offset + pattern for offset in range(10 - len(pattern) + 1)]


def _find(
    ctx: Ctx, scope: Scope, query: SearchQuery, params: Mapping[str, str], size: int
) -> list[Any]:
    wanted = [c for name, c in _CAPABILITY.items() if params.get(name, "").lower() == "true"]
    patterns: list[str | None] = [None]
    if params.get("Contains"):
        patterns = list(_contains(params["Contains"]))
    found: dict[str, Any] = {}
    for pattern in patterns:
        q = SearchQuery(**{**query.__dict__, "pattern": pattern})
        page = numbers.search(ctx.db, ctx.carrier, scope, q, 1, MAX_SEARCH_PAGE)
        for item in page.data:
            if all(c in item.features for c in wanted):
                found.setdefault(item.phone_number, item)
        if len(found) >= size:
            break
    return sorted(found.values(), key=lambda i: i.phone_number)[:size]


@router.get("/Accounts/{account}/AvailablePhoneNumbers/{country}/{kind}.json")
def available(
    account: str, country: str, kind: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        if kind not in KINDS:
            raise TwilioFailure(
                20404, f"{kind} numbers are not offered (Local, TollFree, Mobile)", 404
            )
        _only(
            params,
            {
                "AreaCode",
                "Contains",
                "InRegion",
                "InLocality",
                "InRateCenter",
                "InPostalCode",
                "PageSize",
                "Page",
                *_CAPABILITY,
            },
        )
        size = _int(params, "PageSize", 30, 1, MAX_SEARCH_PAGE)
        items = _find(ctx, scope, _query(country, kind, params), params, size)
        uri = request.url.path + ("?" + request.url.query if request.url.query else "")
        return _json(
            {
                "available_phone_numbers": [tw.available(i) for i in items],
                "uri": uri,
                "end": max(len(items) - 1, 0),
                "page": 0,
                "page_size": size,
                "start": 0,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
            }
        )

    return _answer(work)


# ---------------------------------------------------------------- IncomingPhoneNumbers

_NUMBER_FIELDS = {"FriendlyName", "VoiceUrl", "EmergencyAddressSid"}
_NOT_SIP = "VoiceUrl must be a sip: URI; didhub relays calls over SIP and does not fetch TwiML"
_NO_TENANT = (
    "VoiceUrl needs the number assigned to a tenant: agents, which calls go to, belong to tenants"
)


def _number_id(number_sid: str) -> str:
    found = tw.didhub_id("num", "PN", number_sid)
    if found is None:
        raise TwilioFailure(20404, f"IncomingPhoneNumber {number_sid} was not found", 404)
    return found


def _shaped(ctx: Ctx, rows: list[PhoneNumber]) -> list[dict[str, Any]]:
    with ctx.db.read_session() as session:
        live = numbers.live_assignments(session, [r.id for r in rows])
        states = e911.number_states(session, [r.id for r in rows])
        out = []
        for row in rows:
            inbound = live.get(row.id, {}).get("inbound")
            agent = session.get(Agent, inbound.agent_id) if inbound is not None else None
            state = states.get(row.id)
            out.append(
                tw.incoming(
                    row,
                    row.friendly_name,
                    agent.sip_uri if agent is not None else None,
                    state[0].address_id if state else None,
                    state[0].status if state else None,
                )
            )
        return out


def _voice_target(ctx: Ctx, scope: Scope, number_id: str, url: str) -> None:
    """A ``sip:`` VoiceUrl: the number's inbound agent (one per number, named
    after it, in the tenant it serves) relays calls there; empty: none."""
    with ctx.db.session() as session:
        number = numbers.get_number(session, scope, number_id)
        current = numbers.live_assignments(session, [number.id]).get(number.id, {})
        if not url:
            if "inbound" in current:
                numbers.unassign_agent(session, scope, number.id, "inbound")
            return
        if not url.lower().startswith(("sip:", "sips:")):
            raise TwilioFailure(21502, _NOT_SIP)
        sip_uri = numbering.parse_sip_uri(url, field="VoiceUrl")
        tenant_id = e911.serving_account(number)
        if accounts.get_account(session, scope, tenant_id, "VoiceUrl").kind != "tenant":
            raise TwilioFailure(21502, _NO_TENANT)
        name = VOICE_AGENT.format(number.e164)
        agent = next(
            (a for a in accounts.list_agents(session, scope, tenant_id) if a.name == name), None
        )
        if agent is None:
            agent = accounts.create_agent(session, scope, tenant_id, name, sip_uri)
        else:
            accounts.update_agent(session, scope, agent.id, sip_uri=sip_uri)
        agent_id = agent.id
    assignments.assign_to_agent(
        ctx.db, ctx.carrier, ctx.settings, scope, number_id, agent_id, "inbound"
    )


def _apply(ctx: Ctx, scope: Scope, number_id: str, params: Mapping[str, str]) -> None:
    if "FriendlyName" in params:
        assignments.update_number(
            ctx.db,
            ctx.carrier,
            ctx.settings,
            scope,
            number_id,
            assignments.NumberChange(
                change_tenant=False, friendly_name=params["FriendlyName"], change_friendly_name=True
            ),
        )
    if "VoiceUrl" in params:
        _voice_target(ctx, scope, number_id, params["VoiceUrl"].strip())
    if "EmergencyAddressSid" in params:
        raw = params["EmergencyAddressSid"].strip()
        if not raw:
            with ctx.db.read_session() as session:
                attached = e911.get_number_e911(session, scope, number_id)
            if attached is not None:
                e911.detach(ctx.db, ctx.carrier, scope, number_id)
        else:
            address_id = _address_id(raw)
            e911.attach(ctx.db, ctx.carrier, scope, number_id, address_id)


def _precheck(ctx: Ctx, scope: Scope, params: Mapping[str, str]) -> None:
    """What a purchase would be configured with, refused before anything is bought."""
    if len(params.get("FriendlyName", "").strip()) > numbers.FRIENDLY_NAME_MAX:
        raise TwilioFailure(
            20001, f"FriendlyName is at most {numbers.FRIENDLY_NAME_MAX} characters"
        )
    url = params.get("VoiceUrl", "").strip()
    with ctx.db.read_session() as session:
        if url:
            if not url.lower().startswith(("sip:", "sips:")):
                raise TwilioFailure(21502, _NOT_SIP)
            numbering.parse_sip_uri(url, field="VoiceUrl")
            if accounts.get_account(session, scope, scope.account_id, "VoiceUrl").kind != (
                "tenant"
            ):
                raise TwilioFailure(21502, _NO_TENANT)
        raw = params.get("EmergencyAddressSid", "").strip()
        if raw:
            e911.get_address(session, scope, _address_id(raw), field="EmergencyAddressSid")


def _key(request: Request) -> str | None:
    return request.headers.get("Idempotency-Key") or request.headers.get(
        "I-Twilio-Idempotency-Token"
    )


@router.post("/Accounts/{account}/IncomingPhoneNumbers.json")
def buy(account: str, request: Request, ctx: Ctx, params: Params) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, {"PhoneNumber", "AreaCode", *_NUMBER_FIELDS})
        wanted = params.get("PhoneNumber", "").strip()
        if not wanted and not params.get("AreaCode"):
            raise TwilioFailure(21421, "A PhoneNumber or an AreaCode is required")
        if not wanted:
            query = _query("US", "Local", {"AreaCode": params["AreaCode"]})
            offered = _find(ctx, scope, query, {}, 1)
            if not offered:
                raise TwilioFailure(
                    21452, f"No phone numbers found in area code {params['AreaCode']}"
                )
            wanted = offered[0].phone_number

        _precheck(ctx, scope, params)

        def purchase() -> tuple[int, Any]:
            result = numbers.purchase(
                ctx.db,
                ctx.carrier,
                ctx.settings,
                scope,
                [wanted],
                "PhoneNumber",
                gateway=ctx.gateway,
            )
            return (201 if result.outcome_known else 202), {"number_id": result.numbers[0].id}

        status, stored = run_once(
            ctx.db, scope.account_id, _key(request), "twilio:buy", {"PhoneNumber": wanted}, purchase
        )
        number_id = stored["number_id"]
        _apply(ctx, scope, number_id, params)
        with ctx.db.read_session() as session:
            row = numbers.get_number(session, scope, number_id)
        return _json(_shaped(ctx, [row])[0], status)

    return _answer(work)


@router.get("/Accounts/{account}/IncomingPhoneNumbers.json")
def list_incoming(account: str, request: Request, ctx: Ctx, params: Params) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, {"PhoneNumber", "FriendlyName", "Page", "PageSize"})
        size = _int(params, "PageSize", 50, 1, MAX_LIST_PAGE)
        page_no = _int(params, "Page", 0, 0, 100_000)
        digits = "".join(c for c in params.get("PhoneNumber", "") if c.isdigit())
        chosen: list[PhoneNumber] = []
        has_more = False
        if digits or not params.get("PhoneNumber"):  # no digits: matches no number
            name = params.get("FriendlyName")
            with ctx.db.read_session() as session:
                chosen, has_more, _ = numbers.live_page(
                    session,
                    scope,
                    page_no * size,
                    size,
                    digits=digits,
                    named=None if name is None else (name, tw.e164_of_friendly(name)),
                )
        kept = {k: v for k, v in params.items() if k in ("PhoneNumber", "FriendlyName")}
        return _json(
            tw.page(
                "incoming_phone_numbers",
                _shaped(ctx, chosen),
                request.url.path,
                urlencode(kept),
                page_no,
                size,
                has_more,
            )
        )

    return _answer(work)


@router.get("/Accounts/{account}/IncomingPhoneNumbers/{number_sid}.json")
def fetch_incoming(
    account: str, number_sid: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, set())
        return _json(_shaped(ctx, [_live(ctx, scope, number_sid)])[0])

    return _answer(work)


def _live(ctx: Ctx, scope: Scope, number_sid: str) -> PhoneNumber:
    with ctx.db.read_session() as session:
        row = numbers.get_number(session, scope, _number_id(number_sid), field="Sid")
    if row.status not in LIVE_STATUSES:
        raise TwilioFailure(20404, f"IncomingPhoneNumber {number_sid} was not found", 404)
    return row


@router.post("/Accounts/{account}/IncomingPhoneNumbers/{number_sid}.json")
def update_incoming(
    account: str, number_sid: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, _NUMBER_FIELDS)
        row = _live(ctx, scope, number_sid)
        _apply(ctx, scope, row.id, params)
        return _json(_shaped(ctx, [_live(ctx, scope, number_sid)])[0])

    return _answer(work)


@router.delete("/Accounts/{account}/IncomingPhoneNumbers/{number_sid}.json")
def release_incoming(
    account: str, number_sid: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, set())
        row = _live(ctx, scope, number_sid)
        numbers.release(ctx.db, ctx.carrier, scope, row.id, ctx.settings)
        return Response(status_code=204)

    return _answer(work)


# ---------------------------------------------------------------- Addresses

_ADDRESS_FIELDS = {
    "CustomerName",
    "Street",
    "StreetSecondary",
    "City",
    "Region",
    "PostalCode",
    "IsoCountry",
    "FriendlyName",
    "EmergencyEnabled",
    "AutoCorrectAddress",
}


def _address_id(address_sid: str) -> str:
    found = tw.didhub_id("e911", "AD", address_sid)
    if found is None:
        raise TwilioFailure(20404, f"Address {address_sid} was not found", 404)
    return found


@router.post("/Accounts/{account}/Addresses.json")
def create_address(account: str, request: Request, ctx: Ctx, params: Params) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, _ADDRESS_FIELDS)
        missing = [
            n
            for n in ("CustomerName", "Street", "City", "Region", "PostalCode", "IsoCountry")
            if not params.get(n)
        ]
        if missing:
            raise TwilioFailure(20001, f"Missing required parameter {missing[0]}")
        address = e911.create_address(
            ctx.db,
            ctx.carrier,
            scope,
            {
                "street": params["Street"],
                "unit": params.get("StreetSecondary") or None,
                "city": params["City"],
                "state": params["Region"],
                "postal_code": params["PostalCode"],
                "country": params["IsoCountry"],
                "caller_name": params["CustomerName"],
                "tenant_id": None,
            },
        )
        if address.status != "validated" and params.get("AutoCorrectAddress", "true") != "false":
            # Twilio's AutoCorrectAddress (default true): take the carrier's correction.
            with ctx.db.session() as session:
                address = e911.accept_suggestion(session, scope, address.id)
        return _json(tw.address(address), 201)

    return _answer(work)


@router.get("/Accounts/{account}/Addresses.json")
def list_addresses(account: str, request: Request, ctx: Ctx, params: Params) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, {"CustomerName", "IsoCountry", "Page", "PageSize"})
        size = _int(params, "PageSize", 50, 1, MAX_LIST_PAGE)
        page_no = _int(params, "Page", 0, 0, 100_000)
        with ctx.db.read_session() as session:
            rows = [tw.address(a) for a in e911.list_addresses(session, scope, None)]
        for name, key in (("CustomerName", "customer_name"), ("IsoCountry", "iso_country")):
            if params.get(name):
                rows = [r for r in rows if r[key] == params[name]]
        chosen = rows[page_no * size : (page_no + 1) * size]
        kept = {k: v for k, v in params.items() if k in ("CustomerName", "IsoCountry")}
        return _json(
            tw.page(
                "addresses",
                chosen,
                request.url.path,
                urlencode(kept),
                page_no,
                size,
                len(rows) > (page_no + 1) * size,
            )
        )

    return _answer(work)


@router.get("/Accounts/{account}/Addresses/{address_sid}.json")
def fetch_address(
    account: str, address_sid: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, set())
        with ctx.db.read_session() as session:
            found = e911.get_address(session, scope, _address_id(address_sid))
            return _json(tw.address(found))

    return _answer(work)


@router.delete("/Accounts/{account}/Addresses/{address_sid}.json")
def delete_address(
    account: str, address_sid: str, request: Request, ctx: Ctx, params: Params
) -> Response:
    def work() -> Response:
        scope = _scope(request, ctx, account)
        _only(params, set())
        with ctx.db.session() as session:
            e911.delete_address(session, scope, _address_id(address_sid))
        return Response(status_code=204)

    return _answer(work)


@router.api_route("/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
def not_supported(rest: str) -> Response:
    return JSONResponse(
        tw.error(20404, f"The requested resource /2010-04-01/{rest} was not found", 404),
        status_code=404,
    )
