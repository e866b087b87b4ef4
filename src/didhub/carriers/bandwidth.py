"""Bandwidth, Dashboard (Numbers) API v1: XML, HTTP Basic auth, one account id.

* search: ``GET /api/accounts/{id}/availableNumbers`` with one search kind:
  ``npaNxx`` (area code + NXX), ``areaCode``, ``rateCenter`` + ``state``,
  ``city`` + ``state``, ``state``; toll-free with ``tollFreeWildCardPattern``
  (``8**``, ``87*``) or ``tollFreeVanity``; always ``quantity`` and
  ``enableTNDetail=true`` (city, state, rate center per number). Bandwidth
  sells US numbers only here, so other countries find nothing.
* reserve: a no-op for now (Bandwidth reservations are one TN each, 4 hours,
  and the order must then cite every reservation id).
* order: ``POST /api/accounts/{id}/orders`` (``ExistingTelephoneNumberOrderType``,
  ``PartialAllowed=true``, our order id as ``CustomerOrderId``), then
  ``GET /api/accounts/{id}/orders/{orderId}`` until ``OrderStatus`` is
  ``COMPLETE`` / ``PARTIAL`` / ``FAILED`` (``RECEIVED`` = still working), for up
  to ``order_wait_seconds``; ``CompletedNumbers`` -> active, ``FailedNumbers``
  -> failed with the ``ErrorList`` description.
* order_status: ``GET /api/accounts/{id}/orders?customerOrderId=<order id>``.
* release: ``GET /api/accounts/{id}/inserviceNumbers/{tn}`` (404 = not on the
  account: counted as released), then ``POST /api/accounts/{id}/disconnects``.
* set_cnam: a LIDB order, ``POST /api/accounts/{id}/lidbs`` (``LidbTnGroup``:
  the TN, ``SubscriberInformation`` = the name, ``UseType`` BUSINESS,
  ``Visibility`` PUBLIC), polled on ``GET .../lidbs/{orderId}`` until
  ``ProcessingStatus`` is COMPLETE / FAILED. LIDB has no "remove": a name can
  be replaced, not taken away, so ``None`` is refused with that reason.
* provision_e911: an E911 order, ``POST /api/accounts/{id}/e911s``
  (``TelephoneNumbers``, ``CallerName``, ``Address`` split into HouseNumber /
  PreDirectional / StreetName / StreetSuffix / ..., ``AddressLine2`` for the
  unit, ``Zip`` + ``PlusFour``), polled on ``GET .../e911s/{orderId}``;
  Bandwidth checks the address against the 911 database (MSAG) there.
* remove_e911: an E911 order with ``DeleteTNSpecificE911Address=true``.
* validate_e911_address: accepted in didhub's normalized form. The Dashboard
  has a ``geocodeRequest`` resource, but the references at hand don't give its
  answer's format; the E911 order's own MSAG check refuses a wrong address
  (with Bandwidth's description) when it is put on a number.

XML is parsed with the standard library: expat resolves no external entities
and, since Python 3.7.1 / expat 2.4.1, refuses entity-expansion bombs.
"""

from __future__ import annotations

import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence

import httpx

from didhub.carriers.addresses import street_parts, zip_parts
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
    fixed_prefix,
    matches_query,
    nanp_national,
)
from didhub.numbering import TOLL_FREE_NPAS

log = logging.getLogger("didhub.carriers.bandwidth")

_POLL_SECONDS = 1.0
_FINAL = frozenset({"COMPLETE", "PARTIAL", "FAILED"})
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"}


def parse_xml(text: str | bytes) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise CarrierFailure(f"bandwidth: unreadable XML answer ({exc})") from None


def error_text(response: httpx.Response) -> str:
    """Bandwidth errors: ``<ErrorList><Error><Code/><Description/></Error>`` or
    ``<ResponseStatus><ErrorCode/><Description/></ResponseStatus>``."""
    root = ET.fromstring(response.content)
    parts = []
    for node in root.iter():
        if node.tag in ("Error", "ResponseStatus"):
            code = node.findtext("Code") or node.findtext("ErrorCode")
            text = (node.findtext("Description") or "").strip()
            if text:
                parts.append(f"{text} (Bandwidth error {code})" if code else text)
    return "; ".join(parts)


def _e164(tn: str) -> str:
    digits = "".join(ch for ch in tn if ch.isdigit())
    return f"+1{digits[-10:]}"


class BandwidthCarrier:
    name = "bandwidth"
    searches_by_postal_code = True
    porting_refusal = (
        "bandwidth: porting in through didhub is not supported yet: Bandwidth's LNP "
        "(portins) orders are not in didhub's adapter; port the numbers in Bandwidth's "
        "dashboard, then import them (POST /telephony/numbers/import)"
    )
    # validate_e911_address accepts the address as given (see the module notes).
    checks_e911_addresses = False

    def __init__(
        self,
        account_id: str,
        username: str,
        password: str,
        site_id: str,
        base_url: str = "https://dashboard.bandwidth.com",
        *,
        peer_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        order_wait_seconds: float = 10.0,
        search_limit: int = 100,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (account_id and username and password and site_id):
            raise ValueError(
                "Bandwidth needs DIDHUB_BANDWIDTH_ACCOUNT_ID, _USERNAME, _PASSWORD and _SITE_ID"
            )
        self.client = CarrierClient(
            self.name,
            base_url,
            error_text=error_text,
            auth=(username, password),
            headers={"Accept": "application/xml"},
            timeout=timeout,
            max_attempts=max_attempts,
            mask=(account_id,),
            transport=transport,
            sleep=sleep,
        )
        self.account = f"/api/accounts/{account_id}"
        self.site_id = site_id
        self.peer_id = peer_id
        self.order_wait_seconds = order_wait_seconds
        self.search_limit = search_limit
        self._sleep = sleep

    # -- search ----------------------------------------------------------------

    def search_params(self, query: SearchQuery, limit: int | None = None) -> dict[str, str] | None:
        """The availableNumbers query, or None when Bandwidth can't have such numbers."""
        if query.country_code.upper() != "US" or query.phone_number_type == "mobile":
            return None
        params: dict[str, str] = {
            "quantity": str(limit or self.search_limit),
            "enableTNDetail": "true",
        }
        pattern = (query.pattern or "").upper()
        prefix = fixed_prefix(pattern)
        if query.phone_number_type == "toll-free":
            npa = query.area_code or (prefix[:3] if len(prefix) >= 3 else "")
            if npa and npa not in TOLL_FREE_NPAS:
                return None
            # A vanity string: the fixed run after the toll-free code, when it is
            # as long as Bandwidth's tollFreeVanity takes (4 to 7 characters);
            # results are re-checked against the whole pattern locally.
            vanity = pattern[3:].split("X", 1)[0] if len(pattern) > 3 else ""
            if 4 <= len(vanity) <= 7:
                params["tollFreeVanity"] = vanity
                return params
            # A 3-character wildcard pattern: 8 then digits or stars ("8**", "87*", "877").
            head = (npa or pattern[:3]).ljust(3, "X").replace("X", "*")
            params["tollFreeWildCardPattern"] = head if head.startswith("8") else "8**"
            return params
        area = query.area_code or (prefix[:3] if len(prefix) >= 3 else None)
        nxx = query.nxx or (prefix[3:6] if len(prefix) >= 6 else None)
        if query.postal_code:
            params["zip"] = query.postal_code
        elif area and nxx:
            params["npaNxx"] = area + nxx
        elif area:
            params["areaCode"] = area
        elif query.rate_center and query.administrative_area:
            params["rateCenter"] = query.rate_center
            params["state"] = query.administrative_area
        elif query.locality and query.administrative_area:
            params["city"] = query.locality
            params["state"] = query.administrative_area
        elif query.administrative_area:
            params["state"] = query.administrative_area
        else:
            # Bandwidth requires a search kind; a bare "any US number" search
            # has none, and a pattern without an area code can't be searched.
            return None
        return params

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        params = self.search_params(query)
        if params is None:
            return
        response = self.client.request(
            "GET", f"{self.account}/availableNumbers", write=False, params=params
        )
        root = parse_xml(response.content)
        for detail in root.iter("TelephoneNumberDetail"):
            tn = detail.findtext("FullNumber") or ""
            if not tn:
                continue
            number = AvailableNumber(
                phone_number=_e164(tn),
                country_code="US",
                phone_number_type=query.phone_number_type,
                locality=_title(detail.findtext("City")),
                administrative_area=detail.findtext("State") or None,
                rate_center=detail.findtext("RateCenter") or None,
                features=("voice",) if query.phone_number_type == "toll-free" else ("voice", "sms"),
            )
            if not matches_query(number.phone_number, query, exclude):
                continue
            if query.administrative_area and (number.administrative_area or "").upper() != (
                query.administrative_area.upper()
            ):
                continue
            if query.rate_center and (number.rate_center or "").casefold() != (
                query.rate_center.casefold()
            ):
                continue
            if query.locality and (number.locality or "").casefold() != query.locality.casefold():
                continue
            yield number
        for node in root.iter("TelephoneNumber"):  # enableTNDetail ignored: numbers only
            if node.text and node.text.strip().isdigit():
                e164 = _e164(node.text)
                if matches_query(e164, query, exclude):
                    yield AvailableNumber(
                        e164, "US", query.phone_number_type, None, None, None, ("voice",)
                    )

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        tn = nanp_national(phone_number)
        if tn is None:
            return None
        kind = "toll-free" if tn[:3] in TOLL_FREE_NPAS else "local"
        query = SearchQuery("US", kind, area_code=tn[:3], nxx=tn[3:6], pattern=tn)  # type: ignore[arg-type]
        for number in self.search(query, frozenset()):
            if number.phone_number == phone_number:
                return number
        return None

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """No-op for now (see the module notes); our holds table applies."""
        return None

    # -- order -----------------------------------------------------------------

    def order_xml(self, order_id: str, phone_numbers: Sequence[str]) -> str:
        order = ET.Element("Order")
        ET.SubElement(order, "CustomerOrderId").text = order_id
        ET.SubElement(order, "Name").text = f"didhub {order_id}"[:50]
        existing = ET.SubElement(order, "ExistingTelephoneNumberOrderType")
        tns = ET.SubElement(existing, "TelephoneNumberList")
        for e164 in phone_numbers:
            ET.SubElement(tns, "TelephoneNumber").text = nanp_national(e164) or e164
        ET.SubElement(order, "SiteId").text = self.site_id
        if self.peer_id:
            ET.SubElement(order, "PeerId").text = self.peer_id
        ET.SubElement(order, "PartialAllowed").text = "true"
        return ET.tostring(order, encoding="unicode", xml_declaration=True)

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        response = self.client.request(
            "POST",
            f"{self.account}/orders",
            write=True,
            content=self.order_xml(order_id, phone_numbers),
            headers=XML_HEADERS,
        )
        root = parse_xml(response.content)
        bandwidth_id = root.findtext("Order/id") or root.findtext(".//id")
        status = (root.findtext("OrderStatus") or "").upper()
        if not bandwidth_id:
            raise CarrierOutcomeUnknown("bandwidth: the order answer carried no order id")
        polls = math.ceil(self.order_wait_seconds / _POLL_SECONDS)
        while status not in _FINAL and polls > 0:
            polls -= 1
            self._sleep(_POLL_SECONDS)
            try:
                root = self._order(bandwidth_id)
            except CarrierFailure as exc:
                raise CarrierOutcomeUnknown(
                    f"bandwidth: order {bandwidth_id} placed, {exc}"
                ) from None
            status = (root.findtext("OrderStatus") or "").upper()
        if status not in _FINAL:
            raise CarrierOutcomeUnknown(
                f"bandwidth: order {bandwidth_id} is {status or 'unanswered'} "
                f"after {self.order_wait_seconds:g}s"
            )
        by_number = {r.phone_number: r for r in _results(root, final=True)}
        results = [
            by_number.get(n, NumberOrderResult(n, "failed", "not in the Bandwidth order"))
            for n in phone_numbers
        ]
        if not any(r.status == "active" for r in results):
            reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in results)
            raise CarrierFailure(f"bandwidth: nothing could be ordered ({reasons})")
        return results

    def _order(self, bandwidth_id: str) -> ET.Element:
        response = self.client.request("GET", f"{self.account}/orders/{bandwidth_id}", write=False)
        return parse_xml(response.content)

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        response = self.client.request(
            "GET", f"{self.account}/orders", write=False, params={"customerOrderId": order_id}
        )
        root = parse_xml(response.content)
        results: list[NumberOrderResult] = []
        for summary in root.iter("OrderIdUserIdDate"):
            if (summary.findtext("CustomerOrderId") or order_id) != order_id:
                continue
            bandwidth_id = summary.findtext("orderId") or summary.findtext("OrderId")
            if bandwidth_id:
                detail = self._order(bandwidth_id)
                final = (detail.findtext("OrderStatus") or "").upper() in _FINAL
                results.extend(_results(detail, final=final))
        return results

    # -- release ---------------------------------------------------------------

    def owned_numbers(self) -> Iterator[str]:
        """``GET /inserviceNumbers``, following the ``<Links><next>`` page link."""
        params: dict[str, str] | None = {"page": "1", "size": "500"}
        while params is not None:
            response = self.client.request(
                "GET", f"{self.account}/inserviceNumbers", write=False, params=params
            )
            root = parse_xml(response.content)
            for tn in root.iter("TelephoneNumber"):
                if tn.text and tn.text.strip().isdigit():
                    yield "+1" + tn.text.strip()[-10:]
            following = root.findtext("Links/next") or ""
            page = re.search(r"[?&]page=([^&;>]+)", following)
            params = {"page": page.group(1), "size": "500"} if page else None

    def holds(self, phone_number: str) -> bool:
        """Whether the number is in service on this Bandwidth account."""
        tn = nanp_national(phone_number)
        if tn is None:
            return False
        response = self.client.request(
            "GET", f"{self.account}/inserviceNumbers/{tn}", write=False, ok=(404,)
        )
        return response.status_code != 404

    def release(self, phone_number: str) -> None:
        if not self.holds(phone_number):
            log.warning(
                "bandwidth: %s is not in service on the account; counted as released", phone_number
            )
            return
        disconnect = ET.Element("DisconnectTelephoneNumberOrder")
        ET.SubElement(disconnect, "name").text = f"didhub release {phone_number}"
        kind = ET.SubElement(disconnect, "DisconnectTelephoneNumberOrderType")
        tns = ET.SubElement(kind, "TelephoneNumberList")
        ET.SubElement(tns, "TelephoneNumber").text = nanp_national(phone_number)
        response = self.client.request(
            "POST",
            f"{self.account}/disconnects",
            write=True,
            content=ET.tostring(disconnect, encoding="unicode", xml_declaration=True),
            headers=XML_HEADERS,
        )
        root = parse_xml(response.content)
        if (root.findtext("OrderStatus") or "").upper() == "FAILED":
            raise CarrierFailure(f"bandwidth: disconnect refused: {_descriptions(root)}")

    # -- LIDB / E911 orders ----------------------------------------------------

    def _feature_order(self, kind: str, what: str, body: ET.Element) -> None:
        """Send a LIDB (``lidbs``) or E911 (``e911s``) order and wait for its
        ``ProcessingStatus``: COMPLETE = done, FAILED / PARTIAL = refused with
        Bandwidth's descriptions, still RECEIVED / PROCESSING after
        ``order_wait_seconds`` = unknown (pushing again is harmless)."""
        response = self.client.request(
            "POST",
            f"{self.account}/{kind}",
            write=True,
            content=ET.tostring(body, encoding="unicode", xml_declaration=True),
            headers=XML_HEADERS,
        )
        root = parse_xml(response.content)
        order_id = _order_id(root)
        status = (root.findtext(".//ProcessingStatus") or "").strip().upper()
        polls = math.ceil(self.order_wait_seconds / _POLL_SECONDS)
        while order_id and status not in _FINAL and polls > 0:
            polls -= 1
            self._sleep(_POLL_SECONDS)
            try:
                again = self.client.request("GET", f"{self.account}/{kind}/{order_id}", write=False)
            except CarrierFailure as exc:
                raise CarrierOutcomeUnknown(f"bandwidth: {what} order placed, {exc}") from None
            root = parse_xml(again.content)
            status = (root.findtext(".//ProcessingStatus") or "").strip().upper()
        if status == "COMPLETE":
            return
        if status in _FINAL:
            raise CarrierFailure(f"bandwidth: {what} refused: {_descriptions(root)}")
        raise CarrierOutcomeUnknown(
            f"bandwidth: {what} order {order_id or '(no id)'} is {status or 'unanswered'} "
            f"after {self.order_wait_seconds:g}s"
        )

    def lidb_xml(self, phone_number: str, name: str) -> ET.Element:
        order = ET.Element("LidbOrder")
        ET.SubElement(order, "CustomerOrderId").text = f"didhub-cnam-{nanp_national(phone_number)}"
        group = ET.SubElement(ET.SubElement(order, "LidbTnGroups"), "LidbTnGroup")
        tns = ET.SubElement(group, "TelephoneNumbers")
        ET.SubElement(tns, "TelephoneNumber").text = nanp_national(phone_number)
        ET.SubElement(group, "SubscriberInformation").text = name
        ET.SubElement(group, "UseType").text = "BUSINESS"
        ET.SubElement(group, "Visibility").text = "PUBLIC"
        return order

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        if nanp_national(phone_number) is None:
            raise CarrierFailure(f"bandwidth: {phone_number} is not a US number")
        if name is None:
            raise CarrierFailure(
                "bandwidth: a LIDB caller name can be replaced but not removed through "
                "the Dashboard API; set another name, or ask Bandwidth support to remove it"
            )
        self._feature_order("lidbs", "caller name (LIDB)", self.lidb_xml(phone_number, name))

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        return E911Validation(valid=True)

    def e911_xml(self, phone_number: str, address: E911AddressData | None) -> ET.Element:
        order = ET.Element("E911Order")
        tn = nanp_national(phone_number)
        ET.SubElement(order, "CustomerOrderId").text = f"didhub-e911-{tn}"
        tns = ET.SubElement(order, "TelephoneNumbers")
        ET.SubElement(tns, "TelephoneNumber").text = tn
        if address is None:
            ET.SubElement(order, "DeleteTNSpecificE911Address").text = "true"
            return order
        ET.SubElement(order, "CallerName").text = address.caller_name
        node = ET.SubElement(order, "Address")
        for tag, value in street_parts(address.street).items():
            ET.SubElement(node, tag).text = value
        if address.unit:
            ET.SubElement(node, "AddressLine2").text = address.unit
        ET.SubElement(node, "City").text = address.city
        ET.SubElement(node, "StateCode").text = address.state
        zip5, plus4 = zip_parts(address.postal_code)
        ET.SubElement(node, "Zip").text = zip5
        if plus4:
            ET.SubElement(node, "PlusFour").text = plus4
        ET.SubElement(node, "Country").text = "United States"
        return order

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        if nanp_national(phone_number) is None:
            raise CarrierFailure(f"bandwidth: {phone_number} is not a US number")
        self._feature_order("e911s", "E911 address", self.e911_xml(phone_number, address))

    def remove_e911(self, phone_number: str) -> None:
        if nanp_national(phone_number) is None:
            return
        self._feature_order("e911s", "E911 removal", self.e911_xml(phone_number, None))


def _order_id(root: ET.Element) -> str | None:
    for tag in ("OrderId", "orderId", "id"):
        value = root.findtext(f".//{tag}")
        if value and value.strip():
            return value.strip()
    return None


def _descriptions(root: ET.Element) -> str:
    texts = []
    for node in root.iter("Error"):
        text = (node.findtext("Description") or "").strip()
        code = (node.findtext("Code") or node.findtext("ErrorCode") or "").strip()
        if text:
            texts.append(f"{text} (Bandwidth error {code})" if code else text)
    return "; ".join(t for t in texts if t) or "no reason given"


def _results(root: ET.Element, final: bool) -> list[NumberOrderResult]:
    """Per-number outcome of an order answer. In a final order, a number
    neither completed nor failed was not provided."""
    reasons: dict[str, str] = {}
    for error in root.iter("Error"):
        tn = error.findtext("TelephoneNumber")
        if tn:
            reasons[_e164(tn)] = (error.findtext("Description") or "").strip()
    results: dict[str, NumberOrderResult] = {}
    completed = root.find("CompletedNumbers")
    if completed is not None:
        for node in completed.iter("FullNumber"):
            if node.text:
                results[_e164(node.text)] = NumberOrderResult(_e164(node.text), "active")
    failed = root.find("FailedNumbers")
    if failed is not None:
        for node in failed.iter("FullNumber"):
            if node.text:
                e164 = _e164(node.text)
                results[e164] = NumberOrderResult(
                    e164, "failed", reasons.get(e164) or "Bandwidth could not provide it"
                )
    for node in root.iter("TelephoneNumber"):  # the numbers asked for, in the Order echo
        if node.text and node.text.strip().isdigit():
            e164 = _e164(node.text)
            if e164 not in results:
                results[e164] = (
                    NumberOrderResult(e164, "failed", reasons.get(e164) or "not provided")
                    if final
                    else NumberOrderResult(e164, "unknown")
                )
    return list(results.values())


def _title(city: str | None) -> str | None:
    # Bandwidth spells cities in capitals ("RALEIGH"); the rest of didhub doesn't.
    return city.title() if city else None
