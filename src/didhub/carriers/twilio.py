"""Twilio, REST API 2010-04-01 (HTTP Basic auth ``AccountSid:AuthToken``).

* search: ``GET /2010-04-01/Accounts/{Sid}/AvailablePhoneNumbers/{Country}/
  Local.json | TollFree.json | Mobile.json`` with ``AreaCode``, ``Contains``,
  ``InRegion``, ``InLocality``, ``InRateCenter``, ``PageSize``. Our pattern
  (digits and ``X``, anchored at the start of the national number) becomes
  Twilio's ``Contains`` with ``*`` wildcards, padded to the full national
  length for NANP numbers so that Twilio matches it position for position.
  Twilio documents ``InRateCenter`` as needing ``InLata``; we don't know LATAs,
  so the rate center is sent with ``InRegion`` and re-checked locally.
* reserve: Twilio has no reservations; a no-op (our holds table applies).
* order: one ``POST .../IncomingPhoneNumbers.json`` (``PhoneNumber``) per
  number, synchronous: 201 = active. Our order id goes in ``FriendlyName`` so
  that ``order_status`` can find what an interrupted order bought.
* order_status: ``GET .../IncomingPhoneNumbers.json?FriendlyName=<order id>``,
  following ``next_page_uri``. (A number renamed since on Twilio's console is
  missed: renaming is the operator's to avoid.)
* release: ``GET .../IncomingPhoneNumbers.json?PhoneNumber=`` for the ``PN`` sid,
  then ``DELETE .../IncomingPhoneNumbers/{PNsid}.json``; a number no longer on
  the account counts as released.
* E911: an emergency Address (``POST .../Addresses.json`` with
  ``EmergencyEnabled=true`` and ``AutoCorrectAddress=true``) is put on the
  number with ``POST .../IncomingPhoneNumbers/{PNsid}.json``
  ``EmergencyAddressSid``; removal sets it to the empty string. The number's
  ``emergency_address_status`` says how it went: ``registered`` = done,
  ``pending-registration`` = unknown (the sweep pushes again), ``*-failure`` =
  refused. An Address already on the account with the same fields is reused
  (``GET .../Addresses.json?CustomerName=&EmergencyEnabled=true``).
* validate_e911_address: Twilio has no dry-run check. The emergency Address is
  created with ``AutoCorrectAddress=true``: error 21628 means it can't be
  found; a corrected answer is a suggestion; the Address sid is the reference.
* set_cnam: refused. Twilio lists an outbound caller name only through Trust
  Hub's CNAM registration (a business profile and a CNAM trust product the
  numbers are assigned to, reviewed by Twilio), not by a per-number API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from didhub.carriers.addresses import carrier_suggestion
from didhub.carriers.base import (
    AvailableNumber,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    E911Validation,
    NumberOrderResult,
    SearchQuery,
)
from didhub.carriers.http import (
    DEFAULT_TIMEOUT,
    CarrierClient,
    CarrierHTTPError,
    matches_query,
    national_number,
)
from didhub.numbering import NANP_COUNTRIES, number_type_of, region_of

log = logging.getLogger("didhub.carriers.twilio")

_RESOURCES = {"local": "Local", "toll-free": "TollFree", "mobile": "Mobile"}
# Twilio error 21628: "Address cannot be validated" (not found where it says).
_ADDRESS_NOT_VALIDATED = 21628
CNAM_REFUSAL = (
    "twilio: a caller name (CNAM) is registered through Twilio Trust Hub "
    "(a business profile and a CNAM trust product reviewed by Twilio), which has no "
    "per-number API didhub can call; register it in the Twilio Console"
)


def error_text(response: httpx.Response) -> str:
    """Twilio errors: ``{"code": 21422, "message": "...", "more_info": ..., "status": 400}``."""
    body = response.json()
    message = str(body.get("message") or "")
    code = body.get("code")
    return f"{message} (Twilio error {code})" if code else message


def incoming_numbers(
    client: CarrierClient, account: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """Every IncomingPhoneNumber of ``account`` (``/2010-04-01/Accounts/{Sid}``)
    matching ``params``, across pages."""
    found: list[dict[str, Any]] = []
    path: str | None = f"{account}/IncomingPhoneNumbers.json"
    query: dict[str, str] | None = {**params, "PageSize": "100"}
    while path:
        body = client.request("GET", path, write=False, params=query).json()
        found.extend(body.get("incoming_phone_numbers", []))
        # next_page_uri is absolute-path and carries its own query string.
        path = body.get("next_page_uri") or None
        query = None
    return found


class TwilioCarrier:
    name = "twilio"
    searches_by_postal_code = True
    # Twilio's Port In API (numbers/v1/Porting) takes requests only from
    # accounts Twilio has enabled for it, with LOAs signed through Twilio's own
    # e-signature flow; didhub's adapter doesn't drive that yet.
    porting_refusal = (
        "twilio: porting in through didhub is not supported yet: Twilio's Port In API "
        "needs an account Twilio has enabled for it and its own LOA signature flow; "
        "port the numbers in Twilio's console, then import them (POST /telephony/numbers/import)"
    )

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = "https://api.twilio.com",
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        search_limit: int = 100,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs DIDHUB_TWILIO_ACCOUNT_SID and DIDHUB_TWILIO_AUTH_TOKEN")
        self.client = CarrierClient(
            self.name,
            base_url,
            error_text=error_text,
            auth=(account_sid, auth_token),
            headers={"Accept": "application/json"},
            timeout=timeout,
            max_attempts=max_attempts,
            mask=(account_sid,),
            transport=transport,
            sleep=sleep,
        )
        self.account = f"/2010-04-01/Accounts/{account_sid}"
        self.search_limit = search_limit

    # -- search ----------------------------------------------------------------

    def search_path(self, query: SearchQuery) -> str:
        resource = _RESOURCES[query.phone_number_type]
        return f"{self.account}/AvailablePhoneNumbers/{query.country_code.upper()}/{resource}.json"

    def search_params(self, query: SearchQuery, limit: int | None = None) -> dict[str, str]:
        params: dict[str, str] = {"PageSize": str(limit or self.search_limit)}
        nanp = query.country_code.upper() in NANP_COUNTRIES
        if query.area_code and nanp:
            params["AreaCode"] = query.area_code
        contains = _contains(query)
        if contains:
            params["Contains"] = contains
        if query.administrative_area:
            params["InRegion"] = query.administrative_area
        if query.locality:
            params["InLocality"] = query.locality
        if query.rate_center:
            params["InRateCenter"] = query.rate_center
        if query.postal_code:
            params["InPostalCode"] = query.postal_code
        return params

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        response = self.client.request(
            "GET", self.search_path(query), write=False, params=self.search_params(query)
        )
        for item in response.json().get("available_phone_numbers", []):
            number = _describe(item, query)
            if number is None or not matches_query(number.phone_number, query, exclude):
                continue
            if query.rate_center and (number.rate_center or "").casefold() != (
                query.rate_center.casefold()
            ):
                continue
            yield number

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        country = region_of(phone_number)
        query = SearchQuery(
            country,
            number_type_of(phone_number),  # type: ignore[arg-type]
            pattern=national_number(phone_number),
        )
        for number in self.search(query, frozenset()):
            if number.phone_number == phone_number:
                return number
        return None

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """No-op: Twilio has no number reservations. didhub's own holds keep
        held numbers out of other buyers' searches; a number someone else buys
        at Twilio in the meantime fails at purchase and is refunded."""
        return None

    # -- order -----------------------------------------------------------------

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        """Buy each number in turn. A definite refusal fails that number only; a
        lost answer stops the order (CarrierOutcomeUnknown): ``order_status``
        later finds what was bought by the order id in ``FriendlyName``."""
        results: list[NumberOrderResult] = []
        for e164 in phone_numbers:
            try:
                self.client.request(
                    "POST",
                    f"{self.account}/IncomingPhoneNumbers.json",
                    write=True,
                    data={"PhoneNumber": e164, "FriendlyName": order_id},
                )
            except CarrierHTTPError as exc:
                results.append(NumberOrderResult(e164, "failed", str(exc)))
                continue
            results.append(NumberOrderResult(e164, "active"))
        if not any(r.status == "active" for r in results):
            reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in results)
            raise CarrierFailure(f"twilio: nothing could be ordered ({reasons})")
        return results

    def _incoming(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return incoming_numbers(self.client, self.account, params)

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        return [
            NumberOrderResult(str(item["phone_number"]), "active")
            for item in self._incoming({"FriendlyName": order_id})
            if item.get("phone_number")
        ]

    # -- release ---------------------------------------------------------------

    def _sid(self, phone_number: str) -> str | None:
        for item in self._incoming({"PhoneNumber": phone_number}):
            if item.get("phone_number") == phone_number:
                return str(item["sid"])
        return None

    def owned_numbers(self) -> Iterator[str]:
        """Every IncomingPhoneNumber on the account, across pages."""
        for item in self._incoming({}):
            if item.get("phone_number"):
                yield str(item["phone_number"])

    def holds(self, phone_number: str) -> bool:
        """Whether the number is on this Twilio account."""
        return self._sid(phone_number) is not None

    def release(self, phone_number: str) -> None:
        sid = self._sid(phone_number)
        if sid is None:
            log.warning("twilio: %s is not on the account; counted as released", phone_number)
            return
        self.client.request(
            "DELETE", f"{self.account}/IncomingPhoneNumbers/{sid}.json", write=True, ok=(404,)
        )

    # -- CNAM ------------------------------------------------------------------

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        raise CarrierFailure(CNAM_REFUSAL)

    # -- E911 ------------------------------------------------------------------

    def address_form(self, address: E911AddressData) -> dict[str, str]:
        form = {
            "CustomerName": address.caller_name,
            "Street": address.street,
            "City": address.city,
            "Region": address.state,
            "PostalCode": address.postal_code,
            "IsoCountry": address.country,
            "EmergencyEnabled": "true",
            "AutoCorrectAddress": "true",
            "FriendlyName": f"didhub E911 {address.caller_name}"[:64],
        }
        if address.unit:
            form["StreetSecondary"] = address.unit
        return form

    def _create_address(self, address: E911AddressData) -> dict[str, Any]:
        response = self.client.request(
            "POST", f"{self.account}/Addresses.json", write=True, data=self.address_form(address)
        )
        return dict(response.json())

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        try:
            created = self._create_address(address)
        except CarrierHTTPError as exc:
            if f"Twilio error {_ADDRESS_NOT_VALIDATED}" in str(exc):
                return E911Validation(valid=False, reason=str(exc))
            raise
        suggestion = carrier_suggestion(
            address,
            street=created.get("street"),
            unit=created.get("street_secondary"),
            city=created.get("city"),
            state=created.get("region"),
            postal_code=created.get("postal_code"),
        )
        return E911Validation(valid=True, suggestion=suggestion, reference=created.get("sid"))

    def _emergency_address_sid(self, address: E911AddressData) -> str:
        """An emergency Address on the account with these very fields, else a new one."""
        path: str | None = f"{self.account}/Addresses.json"
        query: dict[str, str] | None = {
            "CustomerName": address.caller_name,
            "EmergencyEnabled": "true",
            "IsoCountry": address.country,
            "PageSize": "100",
        }
        while path:
            body = self.client.request("GET", path, write=False, params=query).json()
            for item in body.get("addresses", []):
                if item.get("emergency_enabled") and _same_address(item, address):
                    return str(item["sid"])
            path = body.get("next_page_uri") or None
            query = None
        sid = self._create_address(address).get("sid")
        if not sid:
            raise CarrierOutcomeUnknown("twilio: the Address answer carried no sid")
        return str(sid)

    def _require_sid(self, phone_number: str) -> str:
        sid = self._sid(phone_number)
        if sid is None:
            raise CarrierFailure(f"twilio: {phone_number} is not on the Twilio account")
        return sid

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        sid = self._require_sid(phone_number)
        address_sid = self._emergency_address_sid(address)
        response = self.client.request(
            "POST",
            f"{self.account}/IncomingPhoneNumbers/{sid}.json",
            write=True,
            data={"EmergencyAddressSid": address_sid, "EmergencyStatus": "Active"},
        )
        status = str(response.json().get("emergency_address_status") or "")
        if status == "registered":
            return
        if status.endswith("failure"):
            raise CarrierFailure(f"twilio: E911 registration of {phone_number} is {status}")
        raise CarrierOutcomeUnknown(
            f"twilio: E911 registration of {phone_number} is {status or 'unanswered'}"
        )

    def remove_e911(self, phone_number: str) -> None:
        sid = self._sid(phone_number)
        if sid is None:
            log.warning("twilio: %s is not on the account; no E911 to remove", phone_number)
            return
        response = self.client.request(
            "POST",
            f"{self.account}/IncomingPhoneNumbers/{sid}.json",
            write=True,
            data={"EmergencyAddressSid": ""},
        )
        status = str(response.json().get("emergency_address_status") or "")
        if status.endswith("failure"):
            raise CarrierFailure(f"twilio: E911 removal of {phone_number} is {status}")


def _same_address(item: dict[str, Any], address: E911AddressData) -> bool:
    def same(value: object, ours: str | None) -> bool:
        return str(value or "").strip().upper() == (ours or "").upper()

    return (
        same(item.get("street"), address.street)
        and same(item.get("street_secondary"), address.unit)
        and same(item.get("city"), address.city)
        and same(item.get("region"), address.state)
        and str(item.get("postal_code") or "")[:5] == address.postal_code[:5]
    )


def _contains(query: SearchQuery) -> str | None:
    """Twilio's ``Contains``: ``*`` matches one digit. A NANP pattern is padded
    to 10 characters so that it is anchored at the start of the number."""
    nanp = query.country_code.upper() in NANP_COUNTRIES
    pattern = (query.pattern or "").upper()
    if nanp:
        chars = list(pattern.ljust(10, "X")) if pattern or query.nxx else []
        if query.nxx and chars:
            chars[3:6] = list(query.nxx)
        if query.area_code and chars:
            chars[0:3] = list(query.area_code)
        text = "".join(chars).replace("X", "*")
        return text if text.strip("*") else None
    pattern = pattern.lstrip("0")
    text = pattern.rstrip("X").replace("X", "*")
    return text or None


def _describe(item: dict[str, Any], query: SearchQuery) -> AvailableNumber | None:
    e164 = item.get("phone_number")
    if not isinstance(e164, str) or not e164.startswith("+"):
        return None
    capabilities = {str(k).lower(): bool(v) for k, v in (item.get("capabilities") or {}).items()}
    features = tuple(f for f in ("voice", "sms") if capabilities.get(f))
    return AvailableNumber(
        phone_number=e164,
        country_code=str(item.get("iso_country") or query.country_code.upper()),
        phone_number_type=query.phone_number_type,
        locality=item.get("locality") or None,
        administrative_area=item.get("region") or None,
        rate_center=item.get("rate_center") or None,
        features=features or ("voice",),
    )
