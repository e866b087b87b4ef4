"""Phone-number parsing, vanity patterns and the geography index."""

from didhub.numbering.geography import (
    CA_PROVINCES,
    US_STATES,
    Exchange,
    GeographyIndex,
    NumberBlock,
    country_index,
    exchanges,
    geography_index,
    localities,
    rate_center_for,
)
from didhub.numbering.parsing import (
    NANP_COUNTRIES,
    SUPPORTED_COUNTRIES,
    TOLL_FREE_NPAS,
    compile_pattern,
    normalize_country,
    number_type_of,
    parse_e164,
    parse_sip_uri,
    region_of,
)

__all__ = [
    "CA_PROVINCES",
    "NANP_COUNTRIES",
    "SUPPORTED_COUNTRIES",
    "TOLL_FREE_NPAS",
    "US_STATES",
    "Exchange",
    "GeographyIndex",
    "NumberBlock",
    "compile_pattern",
    "exchanges",
    "country_index",
    "geography_index",
    "localities",
    "normalize_country",
    "number_type_of",
    "parse_e164",
    "parse_sip_uri",
    "rate_center_for",
    "region_of",
]
