"""Telnyx, API v2 (JSON, ``Authorization: Bearer <API key>``).

* search: ``GET /v2/available_phone_numbers`` with ``filter[...]`` parameters.
  Telnyx has no NXX filter: an NXX (or a pattern's fixed digits) becomes
  ``filter[phone_number][starts_with]`` after the area code
  (``filter[national_destination_code]``); a pattern starting with a wildcard
  uses ``filter[phone_number][contains]`` with its longest digit run. Every
  result is re-checked locally (Telnyx adds "best effort" near misses).
* reserve: ``POST /v2/number_reservations`` (Telnyx holds them 30 minutes),
  best effort: our own holds table is what keeps other buyers away.
* order: ``POST /v2/number_orders`` with our order id as ``customer_reference``;
  orders complete asynchronously, so the order is polled
  (``GET /v2/number_orders/{id}``) for up to ``order_wait_seconds``; each number
  is ``pending`` / ``success`` / ``failure`` -> unknown / active / failed.
* order_status: ``GET /v2/number_orders?filter[customer_reference]=<order id>``.
* release: ``GET /v2/phone_numbers?filter[phone_number]=`` for its id, then
  ``DELETE /v2/phone_numbers/{id}``; a number no longer on the account counts as
  released (a retried release whose first DELETE did go through).
* set_cnam: ``PATCH /v2/phone_numbers/{id}/voice`` with ``cnam_listing``
  (``cnam_listing_enabled``, ``cnam_listing_details``); ``None`` disables the
  listing.
* validate_e911_address: ``POST /v2/addresses/actions/validate``: ``result``
  valid/invalid, ``suggested`` (the normalized form) and ``errors``.
* provision_e911: ``POST /v2/addresses`` (an address record; Telnyx records are
  immutable, so a new one per push), then
  ``POST /v2/phone_numbers/{id}/actions/enable_emergency`` with
  ``emergency_enabled`` and ``emergency_address_id``. ``emergency_status``
  ``active`` = done, ``provisioning`` is polled on ``GET
  /v2/phone_numbers/{id}/voice`` for up to ``order_wait_seconds`` (then unknown),
  ``provisioning-failed`` = refused.
* remove_e911: ``enable_emergency`` with ``emergency_enabled: false`` (the
  Telnyx v2 reference at hand shows no separate disable action); a number no longer on
  the account has nothing to remove.
"""

from __future__ import annotations

import logging
import math
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
    NumberType,
    OrderStatus,
    SearchQuery,
)
from didhub.carriers.http import (
    DEFAULT_TIMEOUT,
    CarrierClient,
    fixed_prefix,
    longest_fixed_run,
    matches_query,
    national_number,
)
from didhub.carriers.telnyx_porting import TelnyxPorting
from didhub.numbering import NANP_COUNTRIES, number_type_of, region_of

log = logging.getLogger("didhub.carriers.telnyx")

_TYPES: dict[str, str] = {"local": "local", "toll-free": "toll_free", "mobile": "mobile"}
_STATUS: dict[str, OrderStatus] = {"success": "active", "failure": "failed", "pending": "unknown"}
_POLL_SECONDS = 1.0


def find_number(client: CarrierClient, phone_number: str) -> dict[str, Any] | None:
    """The account's ``phone_numbers`` record for an E.164 number, or None."""
    response = client.request(
        "GET", "/v2/phone_numbers", write=False, params={"filter[phone_number]": phone_number}
    )
    for item in response.json().get("data", []):
        if item.get("phone_number") == phone_number:
            return dict(item)
    return None


def error_text(response: httpx.Response) -> str:
    """Telnyx errors: ``{"errors": [{"code", "title", "detail"}]}``."""
    body = response.json()
    parts = []
    for error in body.get("errors", []):
        text = error.get("detail") or error.get("title") or ""
        code = error.get("code")
        parts.append(f"{text} (Telnyx error {code})" if code else text)
    return "; ".join(p for p in parts if p)


class TelnyxCarrier:
    name = "telnyx"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.telnyx.com",
        *,
        connection_id: str | None = None,
        messaging_profile_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        order_wait_seconds: float = 10.0,
        search_limit: int = 100,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("Telnyx needs an API key (DIDHUB_TELNYX_API_KEY)")
        self.client = CarrierClient(
            self.name,
            base_url,
            error_text=error_text,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            max_attempts=max_attempts,
            transport=transport,
            sleep=sleep,
        )
        self.connection_id = connection_id
        self.messaging_profile_id = messaging_profile_id
        self.order_wait_seconds = order_wait_seconds
        self.search_limit = search_limit
        self._sleep = sleep
        self.porting = TelnyxPorting(self.client)

    # -- search ----------------------------------------------------------------

    def search_params(self, query: SearchQuery, limit: int | None = None) -> dict[str, str]:
        country = query.country_code.upper()
        params: dict[str, str] = {
            "filter[country_code]": country,
            "filter[phone_number_type]": _TYPES[query.phone_number_type],
            "filter[limit]": str(limit or self.search_limit),
        }
        pattern = (query.pattern or "").upper()
        starts = contains = ""
        if country in NANP_COUNTRIES:
            area = query.area_code or (pattern[:3] if len(fixed_prefix(pattern)) >= 3 else None)
            tail = pattern[3:]
            if area:
                # With the NDC filter set, starts_with matches what follows it.
                params["filter[national_destination_code]"] = area
                starts = fixed_prefix(tail)
                if query.nxx and len(starts) < 3:
                    starts = query.nxx
            contains = query.nxx or longest_fixed_run(pattern) if not starts else ""
        else:
            pattern = pattern.lstrip("0")
            area = (query.area_code or "").lstrip("0")
            starts = max(fixed_prefix(pattern), area, key=len)
            contains = longest_fixed_run(pattern) if not starts else ""
        if starts:
            params["filter[phone_number][starts_with]"] = starts
        elif contains:
            params["filter[phone_number][contains]"] = contains
        if query.administrative_area:
            params["filter[administrative_area]"] = query.administrative_area
        if query.locality:
            params["filter[locality]"] = query.locality
        if query.rate_center:
            params["filter[rate_center]"] = query.rate_center
        return params

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        response = self.client.request(
            "GET", "/v2/available_phone_numbers", write=False, params=self.search_params(query)
        )
        for item in response.json().get("data", []):
            number = self._describe(item, query)
            if number is not None and matches_query(number.phone_number, query, exclude):
                yield number

    @staticmethod
    def _describe(item: dict[str, Any], query: SearchQuery) -> AvailableNumber | None:
        e164 = item.get("phone_number")
        if not isinstance(e164, str) or not e164.startswith("+"):
            return None
        regions = {
            r.get("region_type"): r.get("region_name") for r in item.get("region_information", [])
        }
        features = tuple(
            sorted(f["name"] for f in item.get("features", []) if f.get("name") in ("voice", "sms"))
        )
        kind: NumberType = query.phone_number_type
        return AvailableNumber(
            phone_number=e164,
            country_code=regions.get("country_code") or query.country_code.upper(),
            phone_number_type=kind,
            locality=regions.get("location") or regions.get("locality"),
            administrative_area=regions.get("state"),
            rate_center=regions.get("rate_center"),
            features=features or ("voice",),
        )

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        country = region_of(phone_number)
        kind = number_type_of(phone_number)
        nsn = national_number(phone_number)
        if country in NANP_COUNTRIES:
            query = SearchQuery(country, kind, area_code=nsn[:3], pattern=nsn)  # type: ignore[arg-type]
        else:
            query = SearchQuery(country, kind, pattern=nsn)  # type: ignore[arg-type]
        for number in self.search(query, frozenset()):
            if number.phone_number == phone_number:
                return number
        return None

    # -- reserve ---------------------------------------------------------------

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """Telnyx reservations last 30 minutes whatever ``minutes`` says; a
        refusal is logged, not raised (the quote's own hold still applies, and
        the order itself is what decides)."""
        body = {
            "phone_numbers": [{"phone_number": n} for n in phone_numbers],
            "customer_reference": reference,
        }
        try:
            self.client.request("POST", "/v2/number_reservations", write=True, json=body)
        except (CarrierFailure, CarrierOutcomeUnknown) as exc:
            log.warning("telnyx: reservation %s not placed: %s", reference, exc)

    # -- order -----------------------------------------------------------------

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        body: dict[str, Any] = {
            "phone_numbers": [{"phone_number": n} for n in phone_numbers],
            "customer_reference": order_id,
        }
        if self.connection_id:
            body["connection_id"] = self.connection_id
        if self.messaging_profile_id:
            body["messaging_profile_id"] = self.messaging_profile_id
        response = self.client.request("POST", "/v2/number_orders", write=True, json=body)
        data = response.json().get("data", {})
        telnyx_id = data.get("id")
        results = self._results(data, phone_numbers)
        polls = math.ceil(self.order_wait_seconds / _POLL_SECONDS)
        while telnyx_id and any(r.status == "unknown" for r in results) and polls > 0:
            polls -= 1
            self._sleep(_POLL_SECONDS)
            try:
                again = self.client.request("GET", f"/v2/number_orders/{telnyx_id}", write=False)
            except CarrierFailure as exc:
                raise CarrierOutcomeUnknown(f"telnyx: order {telnyx_id} placed, {exc}") from None
            results = self._results(again.json().get("data", {}), phone_numbers)
        if any(r.status == "unknown" for r in results):
            raise CarrierOutcomeUnknown(
                f"telnyx: order {telnyx_id} still pending after {self.order_wait_seconds:g}s"
            )
        if not any(r.status == "active" for r in results):
            reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in results)
            raise CarrierFailure(f"telnyx: nothing could be ordered ({reasons})")
        return results

    @staticmethod
    def _results(data: dict[str, Any], asked: Sequence[str] | None) -> list[NumberOrderResult]:
        by_number: dict[str, NumberOrderResult] = {}
        for item in data.get("phone_numbers", []):
            e164 = item.get("phone_number")
            status = _STATUS.get(str(item.get("status")), "unknown")
            reason = None
            if status == "failed":
                reason = item.get("errors") or item.get("status_reason") or "Telnyx: failure"
                reason = str(reason)
            if isinstance(e164, str):
                by_number[e164] = NumberOrderResult(e164, status, reason)
        if asked is None:
            return list(by_number.values())
        # A number the order doesn't mention was not taken by Telnyx.
        return [
            by_number.get(n, NumberOrderResult(n, "failed", "not in the Telnyx order"))
            for n in asked
        ]

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        results: list[NumberOrderResult] = []
        page = 1
        while True:
            response = self.client.request(
                "GET",
                "/v2/number_orders",
                write=False,
                params={
                    "filter[customer_reference]": order_id,
                    "page[number]": str(page),
                    "page[size]": "50",
                },
            )
            body = response.json()
            for data in body.get("data", []):
                results.extend(self._results(data, None))
            total_pages = int((body.get("meta") or {}).get("total_pages") or 1)
            if page >= total_pages:
                return results
            page += 1

    # -- release ---------------------------------------------------------------

    def _number_id(self, phone_number: str) -> str | None:
        record = find_number(self.client, phone_number)
        return str(record["id"]) if record is not None else None

    def owned_numbers(self) -> Iterator[str]:
        """``GET /v2/phone_numbers``, every page: the numbers on the account."""
        page = 1
        while True:
            response = self.client.request(
                "GET",
                "/v2/phone_numbers",
                write=False,
                params={"page[number]": str(page), "page[size]": "250"},
            )
            body = response.json()
            for item in body.get("data", []):
                if item.get("phone_number"):
                    yield str(item["phone_number"])
            total_pages = int((body.get("meta") or {}).get("total_pages") or 1)
            if page >= total_pages:
                return
            page += 1

    def holds(self, phone_number: str) -> bool:
        """Whether the number is on this Telnyx account."""
        return self._number_id(phone_number) is not None

    def release(self, phone_number: str) -> None:
        number_id = self._number_id(phone_number)
        if number_id is None:
            log.warning("telnyx: %s is not on the account; counted as released", phone_number)
            return
        self.client.request("DELETE", f"/v2/phone_numbers/{number_id}", write=True, ok=(404,))

    def _require_id(self, phone_number: str) -> str:
        number_id = self._number_id(phone_number)
        if number_id is None:
            raise CarrierFailure(f"telnyx: {phone_number} is not on the Telnyx account")
        return number_id

    # -- CNAM ------------------------------------------------------------------

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        number_id = self._require_id(phone_number)
        listing: dict[str, Any] = {"cnam_listing_enabled": name is not None}
        if name is not None:
            listing["cnam_listing_details"] = name
        self.client.request(
            "PATCH",
            f"/v2/phone_numbers/{number_id}/voice",
            write=True,
            json={"cnam_listing": listing},
        )

    # -- E911 ------------------------------------------------------------------

    @staticmethod
    def address_fields(address: E911AddressData) -> dict[str, str]:
        fields = {
            "street_address": address.street,
            "locality": address.city,
            "administrative_area": address.state,
            "postal_code": address.postal_code,
            "country_code": address.country,
        }
        if address.unit:
            fields["extended_address"] = address.unit
        return fields

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        # Validation changes nothing at Telnyx: a read, retried like one.
        response = self.client.request(
            "POST",
            "/v2/addresses/actions/validate",
            write=False,
            json=self.address_fields(address),
        )
        data = response.json().get("data") or {}
        if data.get("result") != "valid":
            reasons = [
                str(e.get("description") or e.get("detail") or e.get("title") or "")
                for e in data.get("errors") or []
            ]
            reason = "; ".join(r for r in reasons if r) or "Telnyx can't find this address"
            return E911Validation(valid=False, reason=f"telnyx: {reason}")
        suggested = data.get("suggested") or {}
        return E911Validation(
            valid=True,
            suggestion=carrier_suggestion(
                address,
                street=suggested.get("street_address"),
                unit=suggested.get("extended_address"),
                city=suggested.get("locality"),
                state=suggested.get("administrative_area"),
                postal_code=suggested.get("postal_code"),
            ),
        )

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        number_id = self._require_id(phone_number)
        body: dict[str, Any] = {
            **self.address_fields(address),
            # Telnyx wants a person's or a business's name on the record: the
            # caller name the dispatcher sees is both.
            "business_name": address.caller_name,
            "first_name": address.caller_name,
            "last_name": address.caller_name,
            "customer_reference": phone_number,
        }
        created = self.client.request("POST", "/v2/addresses", write=True, json=body)
        address_id = (created.json().get("data") or {}).get("id")
        if not address_id:
            raise CarrierOutcomeUnknown("telnyx: the address answer carried no id")
        response = self.client.request(
            "POST",
            f"/v2/phone_numbers/{number_id}/actions/enable_emergency",
            write=True,
            json={"emergency_enabled": True, "emergency_address_id": str(address_id)},
        )
        status = _emergency_status(response)
        polls = math.ceil(self.order_wait_seconds / _POLL_SECONDS)
        while status == "provisioning" and polls > 0:
            polls -= 1
            self._sleep(_POLL_SECONDS)
            try:
                again = self.client.request(
                    "GET", f"/v2/phone_numbers/{number_id}/voice", write=False
                )
            except CarrierFailure as exc:
                raise CarrierOutcomeUnknown(f"telnyx: emergency update sent, {exc}") from None
            status = _emergency_status(again)
        if status == "active":
            return
        if status == "provisioning-failed":
            raise CarrierFailure(
                f"telnyx: the E911 address of {phone_number} was refused (provisioning-failed)"
            )
        raise CarrierOutcomeUnknown(
            f"telnyx: E911 on {phone_number} is {status or 'unanswered'} "
            f"after {self.order_wait_seconds:g}s"
        )

    def remove_e911(self, phone_number: str) -> None:
        number_id = self._number_id(phone_number)
        if number_id is None:
            log.warning("telnyx: %s is not on the account; no E911 to remove", phone_number)
            return
        self.client.request(
            "POST",
            f"/v2/phone_numbers/{number_id}/actions/enable_emergency",
            write=True,
            json={"emergency_enabled": False},
        )


def _emergency_status(response: httpx.Response) -> str:
    emergency = (response.json().get("data") or {}).get("emergency") or {}
    return str(emergency.get("emergency_status") or "")
