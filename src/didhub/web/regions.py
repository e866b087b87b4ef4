"""States and provinces for the Buy DIDs form, by the codes the geography index uses."""

from __future__ import annotations

US_STATE_NAMES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip

CA_PROVINCE_NAMES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip

# US and Canadian codes don't overlap, so a code alone names its country.
REGIONS = {
    "United States": sorted(US_STATE_NAMES.items(), key=lambda kv: kv[1]),
    "Canada": sorted(CA_PROVINCE_NAMES.items(), key=lambda kv: kv[1]),
}


def country_of(code: str) -> str | None:
    """``"AR"`` → ``"US"``, ``"ON"`` → ``"CA"``; None for a code of neither."""
    code = code.strip().upper()
    if code in US_STATE_NAMES:
        return "US"
    return "CA" if code in CA_PROVINCE_NAMES else None


def region_name(code: str) -> str:
    code = code.upper()
    return US_STATE_NAMES.get(code) or CA_PROVINCE_NAMES.get(code) or code
