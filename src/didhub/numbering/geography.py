"""A geography index built once from libphonenumber's geocoder data.

``phonenumbers.geodata.GEOCODE_DATA`` maps a prefix of the full international
number (country calling code + national digits, e.g. ``"1501202"``) to
``{"en": "Little Rock, AR"}``; the longest matching prefix describes a number.
From it we derive:

* NANP exchanges (NPA-NXX) in US states + DC and Canadian provinces whose
  description is ``"City, ST"``; shorter prefixes (``"120332"``) are expanded to
  the NXXs they cover, unless a longer prefix says otherwise.
* GB and AU local areas: every prefix whose description is a place (not a
  nation/state), minus the longer prefixes that describe something else.
* Mobile ranges for GB (07…) and AU (04…), and the NANP toll-free NPAs.

Each becomes a :class:`NumberBlock`: an NSN prefix plus the national number
length, so the numbers of a block are ``prefix + line`` for every line.
Which of those numbers phonenumbers deems valid is checked per number by the
callers (the sandbox carrier)."""

from __future__ import annotations

import functools
import gc
import re
import threading
from collections import defaultdict
from dataclasses import dataclass

from didhub.numbering.parsing import TOLL_FREE_NPAS

US_STATES: frozenset[str] = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
    ]
)
CA_PROVINCES: frozenset[str] = frozenset(
    ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
)

_AU_STATE_NAMES = frozenset(
    {
        "Australia",
        "New South Wales",
        "Victoria",
        "Queensland",
        "South Australia",
        "Western Australia",
        "Tasmania",
        "Northern Territory",
        "Australian Capital Territory",
    }
)
_GB_NATION_NAMES = frozenset(
    {"United Kingdom", "UK", "England", "Scotland", "Wales", "Northern Ireland"}
)
# AU states by longest NSN prefix. Approximate: area codes follow states only
# roughly (e.g. 02 6 covers Canberra and southern NSW), good enough for a sandbox.
_AU_STATE_BY_PREFIX: dict[str, str] = {
    "2": "NSW",
    "261": "ACT",
    "262": "ACT",
    "3": "VIC",
    "36": "TAS",
    "7": "QLD",
    "8": "SA",
    "86": "WA",
    "89": "WA",
    "889": "NT",
    "890": "NT",
}
_NANP_NSN_LENGTH = 10
_GB_MOBILE_SECOND_DIGITS = "12345789"

_RATE_CENTER_STRIP = re.compile(r"[^A-Z0-9 ]")
_SPACES = re.compile(r" +")


@functools.cache
def rate_center_for(locality: str) -> str:
    """A rate center's full name, as shown: upper-case letters, digits and
    single spaces (``LITTLE ROCK``)."""
    return _SPACES.sub(" ", _RATE_CENTER_STRIP.sub("", locality.upper())).strip()


def rate_center_abbreviation(name: str) -> str:
    """The LERG's 10-character form of a rate center's name (``LITTLE ROC``),
    as carriers' APIs often spell it."""
    return rate_center_for(name)[:10].rstrip()


def rate_center_key(name: str) -> str:
    """What a rate-center search compares: the name without case or spaces
    (``LITTLEROCK``, ``little rock`` and ``Little  Rock`` are one)."""
    return rate_center_for(name).replace(" ", "")


@functools.cache
def rate_center_keys(name: str) -> frozenset[str]:
    """The keys a rate center is found by: its full name's and its
    abbreviation's (``LITTLEROCK``, ``LITTLEROC``)."""
    return frozenset({rate_center_key(name), rate_center_key(rate_center_abbreviation(name))})


def administrative_areas(country_code: str) -> frozenset[str]:
    """The administrative areas the geography knows numbers in for a country
    (Australia's states; empty where it keeps none)."""
    index = country_index(country_code)
    return frozenset(admin for country, _type, admin in index.by_admin if country == country_code)


@dataclass(frozen=True, slots=True)
class NumberBlock:
    """Numbers ``prefix + line`` (``nsn_length`` national digits in all) that
    share one geography. ``ranges`` are the NSN prefixes that actually belong to
    the block (its prefix minus carved-out longer prefixes); ``exclusions`` are
    those carved-out prefixes."""

    country_code: str
    number_type: str  # "local" | "toll-free" | "mobile"
    calling_code: int
    prefix: str
    nsn_length: int
    area_code: str | None
    locality: str | None
    administrative_area: str | None
    rate_center: str | None
    ranges: tuple[str, ...]
    exclusions: frozenset[str] = frozenset()

    @property
    def nxx(self) -> str | None:
        if self.calling_code == 1 and len(self.prefix) >= 6:
            return self.prefix[3:6]
        return None

    def owns(self, nsn: str) -> bool:
        """Whether ``nsn`` (starting with ``prefix``) belongs to this block."""
        if len(nsn) != self.nsn_length or not nsn.startswith(self.prefix):
            return False
        return not any(nsn[:n] in self.exclusions for n in range(len(self.prefix) + 1, len(nsn)))


@dataclass(frozen=True, slots=True)
class Exchange:
    country_code: str
    npa: str
    nxx: str
    locality: str
    administrative_area: str
    rate_center: str


Key = tuple[str, str]  # (country_code, number_type)


class GeographyIndex:
    """All blocks, indexed for the searches the sandbox carrier runs."""

    def __init__(self, blocks: list[NumberBlock]) -> None:
        blocks.sort(key=lambda b: (b.country_code, b.number_type, b.prefix))
        self.blocks: tuple[NumberBlock, ...] = tuple(blocks)
        self.by_type: dict[Key, list[NumberBlock]] = defaultdict(list)
        self.by_admin: dict[tuple[str, str, str], list[NumberBlock]] = defaultdict(list)
        self.by_locality: dict[tuple[str, str, str], list[NumberBlock]] = defaultdict(list)
        self.by_rate_center: dict[tuple[str, str, str], list[NumberBlock]] = defaultdict(list)
        self.by_area: dict[tuple[str, str, str], list[NumberBlock]] = defaultdict(list)
        self.by_prefix3: dict[tuple[str, str, str], list[NumberBlock]] = defaultdict(list)
        self.by_prefix: dict[Key, dict[str, NumberBlock]] = defaultdict(dict)
        self.prefix_lengths: dict[Key, tuple[int, ...]] = {}
        lengths: dict[Key, set[int]] = defaultdict(set)
        places: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
        for block in self.blocks:
            key = (block.country_code, block.number_type)
            self.by_type[key].append(block)
            if block.administrative_area:
                self.by_admin[(*key, block.administrative_area.upper())].append(block)
            if block.locality:
                self.by_locality[(*key, block.locality.casefold())].append(block)
                if block.number_type == "local":
                    places[block.country_code].add((block.locality, block.administrative_area))
            if block.rate_center:
                for rc_key in rate_center_keys(block.rate_center):
                    self.by_rate_center[(*key, rc_key)].append(block)
            if block.area_code:
                self.by_area[(*key, block.area_code)].append(block)
            if len(block.prefix) >= 3:
                self.by_prefix3[(*key, block.prefix[:3])].append(block)
            else:
                for tail in range(10 ** (3 - len(block.prefix))):
                    head = block.prefix + str(tail).zfill(3 - len(block.prefix))
                    self.by_prefix3[(*key, head)].append(block)
            self.by_prefix[key][block.prefix] = block
            lengths[key].add(len(block.prefix))
        self.prefix_lengths = {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}
        self.places: dict[str, list[tuple[str, str | None]]] = {
            country: sorted(values, key=lambda p: (p[0].casefold(), p[1] or ""))
            for country, values in places.items()
        }

    def block_for(self, country_code: str, number_type: str, nsn: str) -> NumberBlock | None:
        """The block a national significant number belongs to, if any."""
        key = (country_code, number_type)
        table = self.by_prefix.get(key)
        if not table:
            return None
        for length in self.prefix_lengths[key]:
            block = table.get(nsn[:length])
            if block is not None:
                return block if block.owns(nsn) else None
        return None


def _own_ranges(prefix: str, children: set[str]) -> tuple[str, ...]:
    """The NSN prefixes under ``prefix`` not covered by any of ``children``."""
    if not children:
        return (prefix,)
    out: list[str] = []
    for digit in "0123456789":
        sub = prefix + digit
        if sub in children:
            continue
        nested = {c for c in children if c.startswith(sub)}
        if nested:
            out.extend(_own_ranges(sub, nested))
        else:
            out.append(sub)
    return tuple(out)


def _parent(key: str, data: dict[str, str], floor: int) -> str | None:
    for n in range(len(key) - 1, floor, -1):
        if key[:n] in data:
            return key[:n]
    return None


def _nanp_blocks(data: dict[str, str]) -> list[NumberBlock]:
    blocks: list[NumberBlock] = []
    for key, text in data.items():
        if len(key) > 7 or len(key) < 4 or ", " not in text:
            continue
        locality, _, state = text.rpartition(", ")
        if state in US_STATES:
            country = "US"
        elif state in CA_PROVINCES:
            country = "CA"
        else:
            continue
        locality = locality.strip()
        npa = key[1:4]
        if not locality or npa in TOLL_FREE_NPAS:
            continue
        width = 7 - len(key)
        for tail in range(10**width):
            full = key + (str(tail).zfill(width) if width else "")
            # The longest prefix in the data must be this key.
            if width and any(full[:n] in data for n in range(len(key) + 1, 8)):
                continue
            nxx = full[4:7]
            if nxx[0] in "01" or nxx[1:] == "11" or nxx == "555":
                continue
            blocks.append(
                NumberBlock(
                    country_code=country,
                    number_type="local",
                    calling_code=1,
                    prefix=npa + nxx,
                    nsn_length=_NANP_NSN_LENGTH,
                    area_code=npa,
                    locality=locality,
                    administrative_area=state,
                    rate_center=rate_center_for(locality),
                    ranges=(npa + nxx,),
                )
            )
    return blocks


def _toll_free_blocks() -> list[NumberBlock]:
    blocks: list[NumberBlock] = []
    for npa in TOLL_FREE_NPAS:
        for n in range(200, 1000):
            nxx = str(n)
            # 555 is reserved in geographic NPAs, not in toll-free ones: the
            # partner guide's own example is 877-555-XXXX.
            if nxx[1:] == "11":
                continue
            blocks.append(
                NumberBlock(
                    country_code="US",
                    number_type="toll-free",
                    calling_code=1,
                    prefix=npa + nxx,
                    nsn_length=_NANP_NSN_LENGTH,
                    area_code=npa,
                    locality=None,
                    administrative_area=None,
                    rate_center=None,
                    ranges=(npa + nxx,),
                )
            )
    return blocks


def _gb_sample(prefix: str) -> tuple[int, str | None] | None:
    """(national number length, area code) of a GB geographic prefix, from a
    sample number phonenumbers deems a valid fixed line; None if none is."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    fixed = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
    for length in (10, 9):
        if len(prefix) >= length:
            continue
        for filler in ("2345678901", "3456789012", "7777777777", "8888888888", "0000000000"):
            nsn = (prefix + filler)[:length]
            number = phonenumbers.PhoneNumber(country_code=44, national_number=int(nsn))
            if phonenumbers.number_type(number) in fixed:
                size = phonenumbers.length_of_geographical_area_code(number)
                return length, (nsn[:size] if size else None)
    return None


@functools.cache
def _au_state(nsn_prefix: str) -> str | None:
    for n in range(len(nsn_prefix), 0, -1):
        state = _AU_STATE_BY_PREFIX.get(nsn_prefix[:n])
        if state is not None:
            return state
    return None


def _international_blocks(
    country: str, calling_code: str, data: dict[str, str], skip: frozenset[str]
) -> list[NumberBlock]:
    floor = len(calling_code)
    children: dict[str, set[str]] = defaultdict(set)
    for key in data:
        parent = _parent(key, data, floor)
        if parent is not None:
            children[parent].add(key[floor:])
    blocks: list[NumberBlock] = []
    for key, text in data.items():
        nsn_prefix = key[floor:]
        if text in skip or len(nsn_prefix) < 2:
            continue
        locality = text.split("/")[0].strip()
        if not locality:
            continue
        if country == "GB":
            sample = _gb_sample(nsn_prefix)
            if sample is None:
                continue
            length, area_code = sample
            admin = None
        else:
            length = 9
            area_code = nsn_prefix[0]
            admin = _au_state(nsn_prefix[:3])
        if len(nsn_prefix) >= length:
            continue
        kids = children.get(key, set())
        blocks.append(
            NumberBlock(
                country_code=country,
                number_type="local",
                calling_code=int(calling_code),
                prefix=nsn_prefix,
                nsn_length=length,
                area_code=area_code,
                locality=locality,
                administrative_area=admin,
                rate_center=None,
                ranges=_own_ranges(nsn_prefix, kids),
                exclusions=frozenset(kids),
            )
        )
    return blocks


def _mobile_blocks() -> list[NumberBlock]:
    blocks: list[NumberBlock] = []
    for second in _GB_MOBILE_SECOND_DIGITS:
        for n in range(100):
            prefix = "7" + second + str(n).zfill(2)
            blocks.append(
                NumberBlock("GB", "mobile", 44, prefix, 10, prefix, None, None, None, (prefix,))
            )
    for n in range(100):
        prefix = "4" + str(n).zfill(2)
        blocks.append(
            NumberBlock("AU", "mobile", 61, prefix, 9, prefix, None, None, None, (prefix,))
        )
    return blocks


_GROUPS: dict[str, str] = {"US": "1", "CA": "1", "GB": "44", "AU": "61"}


@functools.cache
def _geodata(calling_code: str) -> dict[str, str]:
    """English descriptions of the geocoder prefixes of one calling code."""
    from phonenumbers.geodata import GEOCODE_DATA

    out: dict[str, str] = {}
    for key, names in GEOCODE_DATA.items():
        if key.startswith(calling_code):
            text = names.get("en")
            if text:
                out[key] = text
    return out


# One build per calling code however many threads ask at once after a start-up:
# functools.cache alone lets every waiting thread build its own copy.
_BUILD_LOCK = threading.Lock()
_BUILT: dict[str, GeographyIndex] = {}
BUILDS: dict[str, int] = {}  # how many times each index was built (tests read it)


def _group_index(calling_code: str) -> GeographyIndex:
    index = _BUILT.get(calling_code)
    if index is not None:
        return index
    with _BUILD_LOCK:
        index = _BUILT.get(calling_code)
        if index is None:
            index = _build_group_index(calling_code)
            BUILDS[calling_code] = BUILDS.get(calling_code, 0) + 1
            _BUILT[calling_code] = index
    return index


def _build_group_index(calling_code: str) -> GeographyIndex:
    data = _geodata(calling_code)
    if calling_code == "1":
        blocks = _nanp_blocks(data) + _toll_free_blocks()
    elif calling_code == "44":
        blocks = _international_blocks("GB", "44", data, _GB_NATION_NAMES)
    else:
        blocks = _international_blocks("AU", "61", data, _AU_STATE_NAMES)
    blocks += [b for b in _mobile_blocks() if str(b.calling_code) == calling_code]
    index = GeographyIndex(blocks)
    # Built once and kept for the process's life: out of the garbage collector's
    # sight, so full collections don't walk its objects during requests.
    gc.collect()
    gc.freeze()
    return index


def country_index(country_code: str) -> GeographyIndex:
    """The index holding ``country_code`` (US and CA share the NANP one). Built
    lazily, once per calling code, from phonenumbers' geocoder tables."""
    code = _GROUPS.get(country_code.upper())
    if code is None:
        return GeographyIndex([])
    return _group_index(code)


def geography_index() -> tuple[GeographyIndex, ...]:
    """Build every country's index now (e.g. at application start-up)."""
    return tuple(_group_index(code) for code in ("1", "44", "61"))


def exchanges(
    country_code: str,
    administrative_area: str | None = None,
    locality: str | None = None,
    npa: str | None = None,
) -> list[Exchange]:
    """NANP exchanges (NPA-NXX) of a country, optionally narrowed."""
    index = country_index(country_code)
    key = (country_code.upper(), "local")
    if locality is not None:
        candidates = index.by_locality.get((*key, locality.casefold()), [])
    elif administrative_area is not None:
        candidates = index.by_admin.get((*key, administrative_area.upper()), [])
    elif npa is not None:
        candidates = index.by_area.get((*key, npa), [])
    else:
        candidates = index.by_type.get(key, [])
    out: list[Exchange] = []
    for block in candidates:
        if block.calling_code != 1 or block.locality is None or block.administrative_area is None:
            continue
        if administrative_area is not None and block.administrative_area != (
            administrative_area.upper()
        ):
            continue
        if npa is not None and block.area_code != npa:
            continue
        out.append(
            Exchange(
                country_code=block.country_code,
                npa=block.prefix[:3],
                nxx=block.prefix[3:6],
                locality=block.locality,
                administrative_area=block.administrative_area,
                rate_center=block.rate_center or rate_center_for(block.locality),
            )
        )
    return out


def localities(
    country_code: str, administrative_area: str | None, q: str, limit: int = 20
) -> list[tuple[str, str | None]]:
    """Distinct ``(locality, administrative_area)`` whose locality starts with ``q``
    (case-insensitive), then those merely containing it; each group sorted."""
    places = country_index(country_code).places.get(country_code.upper(), [])
    needle = q.strip().casefold()
    admin = administrative_area.upper() if administrative_area else None
    starts: list[tuple[str, str | None]] = []
    contains: list[tuple[str, str | None]] = []
    for place in places:
        if admin is not None and place[1] != admin:
            continue
        name = place[0].casefold()
        if name.startswith(needle):
            starts.append(place)
            if len(starts) >= limit:
                break
        elif needle in name and len(contains) < limit:
            contains.append(place)
    return (starts + contains)[: max(limit, 0)]
