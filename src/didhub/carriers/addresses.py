"""E911 addresses as the carriers read and write them.

didhub stores addresses in the USPS form (``123 N MAIN ST``, ``STE 200``,
``72201-3456``); carriers answer in their own spelling (``600 Congress
Avenue``). A carrier's corrected form is put through didhub's own
normalization before it is compared, so that a difference of spelling alone
is not shown to the user as a "suggestion" to confirm.
"""

from __future__ import annotations

from dataclasses import replace

import usaddress  # type: ignore[import-untyped]

from didhub.carriers.base import E911AddressData
from didhub.errors import ValidationFailed
from didhub.postal.normalize import normalize


def carrier_suggestion(
    sent: E911AddressData,
    *,
    street: str | None,
    unit: str | None,
    city: str | None,
    state: str | None,
    postal_code: str | None,
) -> E911AddressData | None:
    """The carrier's corrected form of ``sent`` in didhub's form, or None when
    it is the same address (or says nothing). Fields the carrier left out keep
    what was sent; the caller name is never the carrier's to change."""
    fields = {
        "street": street or sent.street,
        "unit": unit if unit is not None else sent.unit,
        "city": city or sent.city,
        "state": state or sent.state,
        "postal_code": postal_code or sent.postal_code,
        "country": sent.country,
        "caller_name": sent.caller_name,
    }
    try:
        normalized = normalize(fields)
        suggestion = E911AddressData(**normalized.as_dict())  # type: ignore[arg-type]
    except ValidationFailed:
        # A form didhub can't standardize is still the carrier's word: show it as is.
        suggestion = replace(
            sent,
            street=str(fields["street"]).upper(),
            unit=str(fields["unit"]).upper() if fields["unit"] else None,
            city=str(fields["city"]).upper(),
            state=str(fields["state"]).upper(),
            postal_code=str(fields["postal_code"]),
        )
    if suggestion.unit == "":
        suggestion = replace(suggestion, unit=None)
    return None if suggestion == sent else suggestion


def zip_parts(postal_code: str) -> tuple[str, str | None]:
    """``72201-3456`` -> (``72201``, ``3456``)."""
    digits = postal_code.replace("-", "").replace(" ", "")
    return digits[:5], (digits[5:9] or None)


def street_parts(street: str) -> dict[str, str]:
    """A normalized street line split the way 911 databases (MSAG) hold it:
    HouseNumber, HouseSuffix, PreDirectional, StreetName, StreetSuffix,
    PostDirectional (Bandwidth's E911 fields). Anything the parser can't place
    stays in StreetName."""
    try:
        parsed, _ = usaddress.tag(street)
    except usaddress.RepeatedLabelError:
        parsed = {}
    if "AddressNumber" not in parsed or "StreetName" not in parsed:
        number, _, rest = street.partition(" ")
        return {"HouseNumber": number, "StreetName": rest}
    name = " ".join(
        parsed[label]
        for label in ("StreetNamePreModifier", "StreetNamePreType", "StreetName")
        if label in parsed
    )
    parts = {
        "HouseNumber": parsed["AddressNumber"],
        "HouseSuffix": parsed.get("AddressNumberSuffix", ""),
        "PreDirectional": parsed.get("StreetNamePreDirectional", ""),
        "StreetName": name,
        "StreetSuffix": parsed.get("StreetNamePostType", ""),
        "PostDirectional": parsed.get("StreetNamePostDirectional", ""),
    }
    return {k: v for k, v in parts.items() if v}
