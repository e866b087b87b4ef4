"""Twilio's names for didhub's things: SIDs, resource shapes and error bodies
(docs/twilio-compat.md). Answers use Twilio's snake_case fields."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from didhub.carriers.base import AvailableNumber
from didhub.e911.models import E911Address
from didhub.numbers.models import PhoneNumber

API = "/2010-04-01"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_VALUE = {c: i for i, c in enumerate(_CROCKFORD)}


def sid(kind: str, didhub_id: str) -> str:
    """A didhub id (``prefix_`` + 26 Crockford characters, 128 bits) as a
    Twilio SID: ``kind`` + 32 hex digits of the same bits. Reversible."""
    _, _, body = didhub_id.partition("_")
    value = 0
    for char in body:
        value = value * 32 + _VALUE[char]
    return f"{kind}{value:032x}"


def didhub_id(prefix: str, kind: str, twilio_sid: str) -> str | None:
    """The didhub id a SID stands for (None: not a SID of this kind); a didhub
    id itself is accepted as it is."""
    if twilio_sid.startswith(f"{prefix}_"):
        return twilio_sid
    hexpart = twilio_sid[len(kind) :]
    if not twilio_sid.startswith(kind) or len(hexpart) != 32:
        return None
    try:
        value = int(hexpart, 16)
    except ValueError:
        return None
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def account_sid(account_id: str) -> str:
    return sid("AC", account_id)


def _date(value: datetime | None) -> str | None:
    # Twilio's dates are RFC 2822 (e.g. "Mon, 16 Aug 2010 03:45:01 +0000").
    return format_datetime(value) if value is not None else None


def capabilities(features: list[str] | tuple[str, ...]) -> dict[str, bool]:
    have = {f.lower() for f in features}
    return {
        "voice": "voice" in have,
        "SMS": "sms" in have,
        "MMS": "mms" in have,
        "fax": "fax" in have,
    }


def friendly(e164: str) -> str:
    """``+14155550123`` → ``(415) 555-0123`` for NANP numbers, else the E.164."""
    if e164.startswith("+1") and len(e164) == 12:
        return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"
    return e164


def e164_of_friendly(name: str) -> str | None:
    """The number whose default friendly name (:func:`friendly`) is ``name``."""
    found = re.fullmatch(r"\((\d{3})\) (\d{3})-(\d{4})", name)
    if found:
        return "+1" + "".join(found.groups())
    if re.fullmatch(r"\+\d{8,15}", name) and not (name.startswith("+1") and len(name) == 12):
        return name
    return None


def available(item: AvailableNumber) -> dict[str, Any]:
    return {
        "friendly_name": friendly(item.phone_number),
        "phone_number": item.phone_number,
        "lata": None,
        "locality": item.locality,
        "rate_center": item.rate_center,
        "latitude": None,
        "longitude": None,
        "region": item.administrative_area,
        "postal_code": None,
        "iso_country": item.country_code,
        "address_requirements": "none",
        "beta": False,
        "capabilities": capabilities(item.features),
    }


def incoming(
    row: PhoneNumber,
    friendly_name: str | None,
    voice_url: str | None,
    address_id: str | None,
    e911_status: str | None,
) -> dict[str, Any]:
    account = account_sid(row.owner_id)
    number_sid = sid("PN", row.id)
    return {
        "account_sid": account,
        "address_sid": None,
        "address_requirements": "none",
        "api_version": "2010-04-01",
        "beta": False,
        "capabilities": capabilities(row.features or []),
        "date_created": _date(row.created_at),
        "date_updated": _date(row.purchased_at or row.created_at),
        "emergency_status": "Active" if address_id else "Inactive",
        "emergency_address_sid": sid("AD", address_id) if address_id else None,
        "emergency_address_status": _emergency_status(e911_status),
        "friendly_name": friendly_name or friendly(row.e164),
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": row.e164,
        "sid": number_sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": "",
        "status_callback": "",
        "status_callback_method": "POST",
        "trunk_sid": None,
        "uri": f"{API}/Accounts/{account}/IncomingPhoneNumbers/{number_sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_url": voice_url,
        "bundle_sid": None,
        "voice_receive_mode": "voice",
        "status": "in-use",
        "subresource_uris": {},
    }


def _emergency_status(status: str | None) -> str:
    return {
        None: "unregistered",
        "provisioned": "registered",
        "pending": "pending-registration",
        "failed": "registration-failure",
    }.get(status, "unregistered")


def address(item: E911Address) -> dict[str, Any]:
    account = account_sid(item.account_id)
    address_sid = sid("AD", item.id)
    street = item.street if not item.unit else f"{item.street} {item.unit}"
    return {
        "account_sid": account,
        "city": item.city,
        "customer_name": item.caller_name,
        "date_created": _date(item.created_at),
        "date_updated": _date(item.validated_at or item.created_at),
        "emergency_enabled": True,
        "friendly_name": item.caller_name,
        "iso_country": item.country,
        "postal_code": item.postal_code,
        "region": item.state,
        "sid": address_sid,
        "street": street,
        "street_secondary": item.unit,
        "validated": item.status == "validated",
        "verified": item.status == "validated",
        "uri": f"{API}/Accounts/{account}/Addresses/{address_sid}.json",
    }


def error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def page(
    key: str,
    items: list[dict[str, Any]],
    base_uri: str,
    query: str,
    page_no: int,
    size: int,
    has_more: bool,
) -> dict[str, Any]:
    """Twilio's list envelope: one resource key and the paging fields."""
    sep = "&" if query else ""

    def uri(n: int) -> str:
        return f"{base_uri}?{query}{sep}PageSize={size}&Page={n}"

    start = page_no * size
    return {
        key: items,
        "page": page_no,
        "page_size": size,
        "start": start,
        "end": start + max(len(items) - 1, 0),
        "uri": uri(page_no),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page_no + 1) if has_more else None,
        "previous_page_uri": uri(page_no - 1) if page_no > 0 else None,
    }
