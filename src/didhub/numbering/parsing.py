"""Country codes, E.164 parsing and vanity patterns (all via ``phonenumbers``)."""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneNumberType

from didhub.errors import ValidationFailed

SUPPORTED_COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "AU")
TOLL_FREE_NPAS: tuple[str, ...] = ("800", "833", "844", "855", "866", "877", "888")
NANP_COUNTRIES: frozenset[str] = frozenset({"US", "CA"})

_KEYPAD: dict[str, str] = {
    letter: digit
    for digit, letters in {
        "2": "ABC",
        "3": "DEF",
        "4": "GHI",
        "5": "JKL",
        "6": "MNO",
        "7": "PQRS",
        "8": "TUV",
        "9": "WXYZ",
    }.items()
    for letter in letters
}
_PATTERN_STRIP = str.maketrans("", "", " -.()")
_MAX_PATTERN_LENGTH = 10


def normalize_country(value: str, field: str = "country_code") -> str:
    """Upper-case ISO 3166 alpha-2 code of a supported country."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 2 or not code.isalpha() or code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(f"{value!r} is not an ISO 3166 alpha-2 country code", field=field)
    if code not in SUPPORTED_COUNTRIES:
        raise ValidationFailed(
            f"country {value!r} is not supported yet (supported: {', '.join(SUPPORTED_COUNTRIES)})",
            field=field,
        )
    return code


_NUMBER_CHARS = re.compile(r"[0-9 +\-.()]+")


def parse_e164(value: str, field: str = "phone_number") -> str:
    """A valid phone number in E.164. Accepts E.164 and national US formats
    (``(415) 555-1234``, ``4155551234``); anything else raises ValidationFailed."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("a phone number is required", field=field)
    if not _NUMBER_CHARS.fullmatch(value.strip()):
        raise ValidationFailed(
            f"{value!r} is not a phone number: use digits, spaces, + - . ( ) only", field=field
        )
    try:
        number = phonenumbers.parse(value.strip(), "US")
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"{value!r} is not a phone number", field=field) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"{value!r} is not a valid phone number", field=field)
    if number.extension:
        raise ValidationFailed(f"{value!r} has an extension; give the number alone", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_known(e164: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"{e164!r} is not an E.164 number", field="phone_number") from exc


def region_of(e164: str) -> str:
    """ISO alpha-2 country of an E.164 number ("ZZ" when unknown)."""
    return phonenumbers.region_code_for_number(_parse_known(e164)) or "ZZ"


def number_type_of(e164: str) -> str:
    """``"toll-free"``, ``"mobile"`` or ``"local"``."""
    number = _parse_known(e164)
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.TOLL_FREE:
        return "toll-free"
    if number.country_code == 1 and str(number.national_number)[:3] in TOLL_FREE_NPAS:
        return "toll-free"
    if kind == PhoneNumberType.MOBILE:
        return "mobile"
    return "local"


CALL_TYPES = (
    "local",
    "mobile",
    "toll-free",
    "premium",
    "shared-cost",
    "voip",
    "personal",
    "pager",
    "uan",
    "voicemail",
    "unknown",
)
_CALL_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.FIXED_LINE: "local",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "local",
}


def call_type_of(e164: str) -> str:
    """What a dialled number is, for outbound guards: one of ``CALL_TYPES``
    (``premium`` for 1-900 and other premium-rate ranges)."""
    return describe_dialled(e164)[1]


@functools.lru_cache(maxsize=65_536)
def describe_dialled(e164: str) -> tuple[str | None, str]:
    """``(country, call type)`` of a valid E.164 number from one parse (None:
    a number no country has). Kept: parsing and classifying costs more than
    the rest of an outbound lookup, and agents dial the same numbers again."""
    number = _parse_known(e164)
    region = phonenumbers.region_code_for_number(number)
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.TOLL_FREE or (
        number.country_code == 1 and str(number.national_number)[:3] in TOLL_FREE_NPAS
    ):
        return region, "toll-free"
    return region, _CALL_TYPES.get(kind, "unknown")


def compile_pattern(value: str, field: str = "pattern") -> str:
    """A vanity pattern as digits and ``X`` wildcards, e.g. ``"877-555-XXXX"`` →
    ``"877555XXXX"`` and ``"1-800-FLOWERS"`` → ``"8003569377"``. ``X``, ``*`` and
    ``?`` are wildcards; other letters map to keypad digits. A leading ``+1`` (or a
    ``1`` before 10+ more characters) is the NANP country code and is dropped."""
    if not isinstance(value, str):
        raise ValidationFailed("pattern must be a string", field=field)
    text = value.translate(_PATTERN_STRIP)
    if text.startswith("+1"):
        text = text[2:]
    elif text.startswith("1") and len(text) - 1 >= 10:
        text = text[1:]
    if not text:
        raise ValidationFailed("pattern is empty", field=field)
    out: list[str] = []
    for char in text:
        if char.isascii() and char.isdigit():
            out.append(char)
        elif char in "Xx*?":
            out.append("X")
        elif char.isascii() and char.isalpha():
            out.append(_KEYPAD[char.upper()])
        else:
            raise ValidationFailed(
                f"pattern {value!r} may contain only digits, letters and X/*/? wildcards",
                field=field,
            )
    if len(out) > _MAX_PATTERN_LENGTH:
        raise ValidationFailed(
            f"pattern {value!r} is longer than a 10-digit national number", field=field
        )
    return "".join(out)


# sip:[user@]host[:port][;params], host a name, an IPv4 address or [IPv6].
_SIP_URI = re.compile(
    r"^sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+@)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?(?:;[A-Za-z0-9\-_.!~*'()%=]+)*$"
)


def parse_sip_uri(value: str, field: str = "sip_uri") -> str:
    """A SIP or SIPS URI a call can be relayed to (RFC 3261 ``sip:user@host:port``),
    trimmed; the scheme is lower-cased."""
    text = value.strip()
    scheme, _, rest = text.partition(":")
    text = f"{scheme.lower()}:{rest}" if rest else text
    if len(text) > 255 or not _SIP_URI.match(text):
        raise ValidationFailed(
            "must be a SIP URI such as sip:agent@pbx.example.com:5060", field=field
        )
    port = re.search(r":([0-9]{1,5})(?:;|$)", text.split("@")[-1])
    if port is not None and not 0 < int(port.group(1)) < 65536:
        raise ValidationFailed("the port must be 1 to 65535", field=field)
    return text
