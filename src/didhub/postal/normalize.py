"""E911 address normalization: pure functions, no database, no network.

An address typed by a person becomes the USPS-standard form a 911 database
holds (Publication 28): upper case, street suffixes and directionals
abbreviated (Street -> ST, North -> N), unit designators kept and abbreviated
(Apartment -> APT, Suite -> STE, "#" when none is named), the state as its
two-letter code, the ZIP as 5 digits or ZIP+4. The street line is parsed with
``usaddress``. Every refusal is a :class:`ValidationFailed` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import usaddress  # type: ignore[import-untyped]

from didhub.errors import ValidationFailed
from didhub.postal.zip_prefixes import states_for_zip

FIELDS = ("street", "unit", "city", "state", "postal_code", "country", "caller_name")

MAX_STREET = 100
MAX_CITY = 60
MAX_UNIT = 20
# Carriers' 911 databases hold a short caller name (most take 32 characters).
MAX_CALLER_NAME = 32


@dataclass(frozen=True)
class NormalizedAddress:
    street: str  # "123 N MAIN ST"
    unit: str | None  # "APT 4B", "STE 200", "# 7"
    city: str
    state: str  # two letters
    postal_code: str  # "72201" or "72201-1234"
    country: str  # "US"
    caller_name: str

    @property
    def zip5(self) -> str:
        return self.postal_code[:5]

    @property
    def has_zip4(self) -> bool:
        return len(self.postal_code) == 10

    def as_dict(self) -> dict[str, str | None]:
        return {
            "street": self.street,
            "unit": self.unit,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
            "country": self.country,
            "caller_name": self.caller_name,
        }


STATES: dict[str, str] = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL",
    "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA",
    "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA", "MICHIGAN": "MI",
    "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ",
    "NEW MEXICO": "NM", "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND",
    "OHIO": "OH", "OKLAHOMA": "OK", "OREGON": "OR", "PENNSYLVANIA": "PA",
    "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD", "TENNESSEE": "TN",
    "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA",
    "WEST VIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY", "PUERTO RICO": "PR",
    "GUAM": "GU", "US VIRGIN ISLANDS": "VI", "VIRGIN ISLANDS": "VI", "AMERICAN SAMOA": "AS",
    "NORTHERN MARIANA ISLANDS": "MP",
}  # fmt: skip
STATE_CODES = frozenset(STATES.values())

# USPS Publication 28, appendix C1 (the common ones, with their usual spellings).
SUFFIXES: dict[str, str] = {
    "ALLEY": "ALY", "ALY": "ALY", "AVENUE": "AVE", "AVE": "AVE", "AV": "AVE", "AVN": "AVE",
    "BOULEVARD": "BLVD", "BLVD": "BLVD", "BEND": "BND", "BND": "BND", "BYPASS": "BYP",
    "CENTER": "CTR", "CTR": "CTR", "CIRCLE": "CIR", "CIR": "CIR", "COURT": "CT", "CT": "CT",
    "COVE": "CV", "CV": "CV", "CREEK": "CRK", "CROSSING": "XING", "XING": "XING",
    "DRIVE": "DR", "DR": "DR", "DRV": "DR", "EXPRESSWAY": "EXPY", "EXPY": "EXPY",
    "FREEWAY": "FWY", "FWY": "FWY", "GROVE": "GRV", "HEIGHTS": "HTS", "HTS": "HTS",
    "HIGHWAY": "HWY", "HWY": "HWY", "HILL": "HL", "LANE": "LN", "LN": "LN", "LOOP": "LOOP",
    "PARK": "PARK", "PARKWAY": "PKWY", "PKWY": "PKWY", "PATH": "PATH", "PIKE": "PIKE",
    "PLACE": "PL", "PL": "PL", "PLAZA": "PLZ", "PLZ": "PLZ", "POINT": "PT", "PT": "PT",
    "ROAD": "RD", "RD": "RD", "ROUTE": "RTE", "RTE": "RTE", "ROW": "ROW", "RUN": "RUN",
    "SQUARE": "SQ", "SQ": "SQ", "STREET": "ST", "ST": "ST", "STR": "ST", "STRT": "ST",
    "TERRACE": "TER", "TER": "TER", "TRAIL": "TRL", "TRL": "TRL", "TURNPIKE": "TPKE",
    "TPKE": "TPKE", "WALK": "WALK", "WAY": "WAY", "WY": "WAY",
}  # fmt: skip

DIRECTIONALS: dict[str, str] = {
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE",
    "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW", "N": "N", "S": "S", "E": "E",
    "W": "W", "NE": "NE", "NW": "NW", "SE": "SE", "SW": "SW",
}  # fmt: skip

# Unit designators (Pub. 28 C2). Those in NO_ID_UNITS need no number.
UNITS: dict[str, str] = {
    "APARTMENT": "APT", "APT": "APT", "SUITE": "STE", "STE": "STE", "UNIT": "UNIT",
    "FLOOR": "FL", "FL": "FL", "FLR": "FL", "ROOM": "RM", "RM": "RM", "BUILDING": "BLDG",
    "BLDG": "BLDG", "BLD": "BLDG", "DEPARTMENT": "DEPT", "DEPT": "DEPT", "OFFICE": "OFC",
    "OFC": "OFC", "SPACE": "SPC", "SPC": "SPC", "LOT": "LOT", "TRAILER": "TRLR",
    "TRLR": "TRLR", "HANGAR": "HNGR", "HNGR": "HNGR", "PIER": "PIER", "SLIP": "SLIP",
    "STOP": "STOP", "KEY": "KEY", "BASEMENT": "BSMT", "BSMT": "BSMT", "LOBBY": "LBBY",
    "LBBY": "LBBY", "PENTHOUSE": "PH", "PH": "PH", "REAR": "REAR", "FRONT": "FRNT",
    "FRNT": "FRNT", "SIDE": "SIDE", "UPPER": "UPPR", "UPPR": "UPPR", "LOWER": "LOWR",
    "LOWR": "LOWR", "#": "#",
}  # fmt: skip
NO_ID_UNITS = frozenset({"BSMT", "LBBY", "PH", "REAR", "FRNT", "SIDE", "UPPR", "LOWR"})

# A 911 call is dispatched to where the caller stands; mail boxes are nowhere.
_PO_BOX = re.compile(
    r"\b(P\s*\.?\s*O\s*\.?\s*B(OX)?|POST\s+OFFICE\s+BOX|POST\s+BOX|P\s*\.?\s*O\s*\.?\s*DRAWER"
    r"|POB|LOCK\s*BOX|CALLER\s+BOX)\b",
    re.IGNORECASE,
)
_ZIP = re.compile(r"^(\d{5})(?:[-\s]?(\d{4}))?$")
_UNIT = re.compile(r"^([A-Z]+|#)\.?\s*#?\s*([A-Z0-9-]*)$")
_ORDINAL_FLOOR = re.compile(r"^(\d+)(ST|ND|RD|TH)?\s+(FLOOR|FL|FLR)$")
_UNIT_ID = re.compile(r"^[A-Z0-9-]{1,10}$")
_CITY = re.compile(r"^[A-Z][A-Z .'-]*$")


def _clean(value: object, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field=field)
    return " ".join(value.replace(",", " ").split()).upper()


def normalize_state(value: str) -> str:
    text = _clean(value, "state").replace(".", "")
    if not text:
        raise ValidationFailed("state is required (e.g. AR or Arkansas)", field="state")
    if text in STATE_CODES:
        return text
    if text in STATES:
        return STATES[text]
    raise ValidationFailed(f"{value!r} is not a US state or territory", field="state")


def normalize_postal_code(value: str) -> str:
    text = _clean(value, "postal_code")
    if not text:
        raise ValidationFailed("a ZIP code is required for an E911 address", field="postal_code")
    match = _ZIP.match(text)
    if match is None:
        raise ValidationFailed(
            f"{value!r} is not a ZIP code: give 5 digits or ZIP+4 (72201 or 72201-3456)",
            field="postal_code",
        )
    zip5, plus4 = match.groups()
    return f"{zip5}-{plus4}" if plus4 else zip5


def check_zip_state(postal_code: str, state: str) -> None:
    """The ZIP's 3-digit prefix must belong to the state (USPS prefix table)."""
    states = states_for_zip(postal_code)
    if not states:
        raise ValidationFailed(
            f"ZIP {postal_code[:5]} is not a ZIP code in use for a street address",
            field="postal_code",
        )
    if state not in states:
        raise ValidationFailed(
            f"ZIP {postal_code[:5]} is in {'/'.join(states)}, not {state}: "
            "check the state and the ZIP code",
            field="state",
        )


def normalize_unit(value: str) -> str | None:
    """ "Apartment 4b" -> "APT 4B", "Suite #200" -> "STE 200", "#7" -> "# 7",
    "3rd floor" -> "FL 3", "12" -> "# 12"."""
    text = _clean(value, "unit")
    if not text:
        return None
    if len(text) > MAX_UNIT:
        raise ValidationFailed(f"unit is at most {MAX_UNIT} characters", field="unit")
    floor = _ORDINAL_FLOOR.match(text)
    if floor:
        return f"FL {floor.group(1)}"
    if _UNIT_ID.match(text) and any(ch.isdigit() for ch in text):
        return f"# {text}"
    match = _UNIT.match(text.replace("# ", "#"))
    if match is None or match.group(1) not in UNITS:
        raise ValidationFailed(
            f"{value!r} is not a unit: use a designator and a number (APT 4B, STE 200, FL 3, # 7)",
            field="unit",
        )
    designator, ident = UNITS[match.group(1)], match.group(2)
    if not ident and designator not in NO_ID_UNITS:
        raise ValidationFailed(f"unit {value!r} needs a number (e.g. {designator} 2)", field="unit")
    return f"{designator} {ident}" if ident else designator


def _word(value: str) -> str:
    return value.replace(".", "").upper()


def normalize_street(value: str) -> tuple[str, str | None]:
    """The street line as (street, unit found in it). PO boxes are refused: a
    911 dispatcher needs a place, not a mailbox."""
    text = _clean(value, "street")
    if not text:
        raise ValidationFailed("street is required (house number and street)", field="street")
    if len(text) > MAX_STREET:
        raise ValidationFailed(f"street is at most {MAX_STREET} characters", field="street")
    if _PO_BOX.search(text):
        raise ValidationFailed(
            "a PO box can't be an E911 address: give the street address where the phone is used",
            field="street",
        )
    try:
        parsed, kind = usaddress.tag(text)
    except usaddress.RepeatedLabelError:
        raise ValidationFailed(
            f"{value!r} can't be read as one street address", field="street"
        ) from None
    if kind == "PO Box" or any(label.startswith("USPSBox") for label in parsed):
        raise ValidationFailed(
            "a PO box can't be an E911 address: give the street address where the phone is used",
            field="street",
        )
    if kind == "Intersection" or "AddressNumber" not in parsed or "StreetName" not in parsed:
        raise ValidationFailed(
            "street needs a house number and a street name (e.g. 123 Main Street)",
            field="street",
        )
    if any(label in parsed for label in ("PlaceName", "StateName", "ZipCode")):
        raise ValidationFailed(
            "street holds only the street line: city, state and ZIP code have their own fields",
            field="street",
        )
    parts: list[str] = [_word(parsed["AddressNumber"])]
    for label in ("AddressNumberSuffix", "StreetNamePreModifier"):
        if label in parsed:
            parts.append(_word(parsed[label]))
    if "StreetNamePreDirectional" in parsed:
        word = _word(parsed["StreetNamePreDirectional"])
        parts.append(DIRECTIONALS.get(word, word))
    if "StreetNamePreType" in parsed:
        parts.append(_word(parsed["StreetNamePreType"]))
    parts.append(_word(parsed["StreetName"]))
    if "StreetNamePostType" in parsed:
        word = _word(parsed["StreetNamePostType"])
        parts.append(SUFFIXES.get(word, word))
    if "StreetNamePostDirectional" in parsed:
        word = _word(parsed["StreetNamePostDirectional"])
        parts.append(DIRECTIONALS.get(word, word))
    unit_parts = [
        parsed[label]
        for label in (
            "SubaddressType",
            "SubaddressIdentifier",
            "OccupancyType",
            "OccupancyIdentifier",
        )
        if label in parsed
    ]
    unit = normalize_unit(" ".join(unit_parts)) if unit_parts else None
    return " ".join(parts), unit


def house_number(street: str) -> int | None:
    """The leading digits of a normalized street's house number, if any."""
    match = re.match(r"^\D*?(\d+)", street.split(" ", 1)[0])
    return int(match.group(1)) if match else None


def normalize_country(value: object) -> str:
    text = _clean(value, "country").replace(".", "") or "US"
    if text in ("US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"):
        return "US"
    raise ValidationFailed("E911 addresses are US addresses for now (country US)", field="country")


def normalize(fields: Mapping[str, object]) -> NormalizedAddress:
    """Standardize an address as typed. Raises ValidationFailed naming the first
    bad field: a missing ZIP, a state the ZIP isn't in, a PO box, …"""
    country = normalize_country(fields.get("country"))
    street, unit_in_street = normalize_street(str(fields.get("street") or ""))
    unit = normalize_unit(str(fields.get("unit") or ""))
    if unit is not None and unit_in_street is not None and unit != unit_in_street:
        raise ValidationFailed(
            f"the street line names unit {unit_in_street!r} and unit says {unit!r}: give it once",
            field="unit",
        )
    city = _clean(fields.get("city"), "city").replace(".", "")
    if not city:
        raise ValidationFailed("city is required", field="city")
    if len(city) > MAX_CITY or not _CITY.match(city):
        raise ValidationFailed(f"{fields.get('city')!r} is not a city name", field="city")
    state = normalize_state(str(fields.get("state") or ""))
    postal_code = normalize_postal_code(str(fields.get("postal_code") or ""))
    check_zip_state(postal_code, state)
    caller_name = " ".join(str(fields.get("caller_name") or "").split())
    if not caller_name:
        raise ValidationFailed(
            "caller_name is required: the name a 911 dispatcher sees", field="caller_name"
        )
    if len(caller_name) > MAX_CALLER_NAME:
        raise ValidationFailed(
            f"caller_name is at most {MAX_CALLER_NAME} characters", field="caller_name"
        )
    return NormalizedAddress(
        street=street,
        unit=unit or unit_in_street,
        city=city,
        state=state,
        postal_code=postal_code,
        country=country,
        caller_name=caller_name,
    )
