from __future__ import annotations

import phonenumbers
import pytest

from didhub.errors import ValidationFailed
from didhub.numbering import (
    SUPPORTED_COUNTRIES,
    compile_pattern,
    country_index,
    exchanges,
    localities,
    normalize_country,
    number_type_of,
    parse_e164,
    rate_center_abbreviation,
    rate_center_for,
    rate_center_keys,
    region_of,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("(415) 555-2671", "+14155552671"),
        ("4155552671", "+14155552671"),
        ("1-415-555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+61 2 9876 5432", "+61298765432"),
    ],
)
def test_parse_e164_accepts(raw: str, expected: str) -> None:
    assert parse_e164(raw) == expected


@pytest.mark.parametrize("raw", ["", "hello", "+1415", "123", "+1 011 555 1234", "+999123456"])
def test_parse_e164_rejects_naming_field(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_e164(raw, field="to")
    assert info.value.field == "to"
    assert info.value.status_code == 422


def test_region_and_type() -> None:
    assert region_of("+14165550123") == "CA"
    assert region_of("+442079460958") == "GB"
    assert number_type_of("+18775551234") == "toll-free"
    assert number_type_of("+447400123456") == "mobile"
    assert number_type_of("+61412345678") == "mobile"
    assert number_type_of("+15012021234") == "local"


def test_normalize_country() -> None:
    assert normalize_country(" us ") == "US"
    assert normalize_country("gb") == "GB"
    for code in SUPPORTED_COUNTRIES:
        assert normalize_country(code.lower()) == code
    with pytest.raises(ValidationFailed, match="not supported yet") as info:
        normalize_country("FR", field="country")
    assert info.value.field == "country"
    with pytest.raises(ValidationFailed, match="not an ISO") as info:
        normalize_country("XQ")
    assert info.value.field == "country_code"
    with pytest.raises(ValidationFailed, match="not an ISO"):
        normalize_country("USA")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("877-555-XXXX", "877555XXXX"),
        ("800-FLOWERS", "8003569377"),
        ("1-800-FLOWERS", "8003569377"),
        ("+1 (800) 356-9377", "8003569377"),
        ("415", "415"),
        ("415.2**.????", "4152XXXXXX"),
        ("xxx555", "XXX555"),
        ("1415", "1415"),
        ("PQRS", "7777"),
    ],
)
def test_compile_pattern(raw: str, expected: str) -> None:
    assert compile_pattern(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "---", "415#", "80O_1", "+44 20", "41555512345"])
def test_compile_pattern_rejects(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        compile_pattern(raw, field="contains")
    assert info.value.field == "contains"


def test_rate_center() -> None:
    # Shown by the full name; the LERG's 10-character form finds it too.
    assert rate_center_for("Little Rock") == "LITTLE ROCK"
    assert rate_center_for("St. Louis") == "ST LOUIS"
    assert rate_center_for("Winston-Salem") == "WINSTONSALEM"
    assert rate_center_abbreviation("Winston-Salem") == "WINSTONSAL"
    assert rate_center_abbreviation("Little Rock") == "LITTLE ROC"
    assert rate_center_keys("Little Rock") == {"LITTLEROCK", "LITTLEROC"}


def test_localities() -> None:
    found = localities("US", "AR", "lit")
    assert ("Little Rock", "AR") in found
    assert found[0] == ("Little Rock", "AR")  # prefix matches first
    assert all(admin == "AR" for _, admin in found)
    assert ("Toronto", "ON") in localities("CA", None, "toron")
    assert ("London", None) in localities("GB", None, "lond")
    assert ("Sydney", "NSW") in localities("AU", None, "sydney")
    assert localities("US", "AR", "zzzzqq") == []
    assert len(localities("US", None, "a", limit=5)) == 5
    # "contains" matches come after "starts with" matches.
    mixed = localities("US", "AR", "rock")
    assert ("Little Rock", "AR") in mixed
    starts = [p for p in mixed if p[0].lower().startswith("rock")]
    assert mixed[: len(starts)] == starts


def test_exchanges_are_real() -> None:
    little_rock = exchanges("US", "AR", "Little Rock")
    assert little_rock
    for ex in little_rock:
        assert ex.npa == "501"
        assert ex.rate_center == "LITTLE ROCK"
        number = phonenumbers.PhoneNumber(
            country_code=1, national_number=int(ex.npa + ex.nxx + "0100")
        )
        assert phonenumbers.region_code_for_number(number) == "US"
    ontario = exchanges("CA", "ON")
    assert ontario and all(ex.country_code == "CA" for ex in ontario)
    assert not any(ex.npa in ("800", "877") for ex in exchanges("US", npa="800"))


def test_index_blocks_consistent() -> None:
    index = country_index("US")
    assert not any(b.country_code not in ("US", "CA") for b in index.blocks)
    gb = country_index("GB")
    london = gb.by_locality[("GB", "local", "london")]
    assert london and london[0].area_code == "20"
