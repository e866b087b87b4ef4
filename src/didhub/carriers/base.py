"""The one Carrier protocol. Adding a carrier is one module implementing it plus
its contract tests; nothing else changes (Kazoo's carrier behaviour)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

NumberType = Literal["local", "toll-free", "mobile"]
OrderStatus = Literal["active", "failed", "unknown"]


@dataclass(frozen=True)
class SearchQuery:
    """A validated search. Every field is optional except the country; the
    numbering module has already normalised them (upper-case state, digits-only
    area code, a compiled vanity pattern as a 10-digit-or-shorter string of
    digits and ``X``)."""

    country_code: str = "US"
    phone_number_type: NumberType = "local"
    area_code: str | None = None
    nxx: str | None = None
    administrative_area: str | None = None
    locality: str | None = None
    rate_center: str | None = None
    # National significant number pattern: digits and 'X' wildcards, matched
    # against the start of the national number (e.g. "877555XXXX", "800356").
    pattern: str | None = None
    # A US ZIP code. Only carriers with ``searches_by_postal_code`` can honour it.
    postal_code: str | None = None
    # How many results the caller will read (its page's end plus one to know
    # there is more): a carrier that pages a database reads that many first.
    wanted: int | None = None


def searches_by_postal_code(carrier: object) -> bool:
    """Whether a carrier can narrow a search to a ZIP code (an adapter says so
    with a ``searches_by_postal_code = True`` attribute)."""
    return bool(getattr(carrier, "searches_by_postal_code", False))


@dataclass(frozen=True)
class AvailableNumber:
    phone_number: str  # E.164
    country_code: str  # ISO alpha-2
    phone_number_type: NumberType
    locality: str | None
    administrative_area: str | None
    rate_center: str | None
    features: tuple[str, ...] = ("voice", "sms")
    # The carrier that offers it, when several are asked (``multi``): the one a
    # purchase orders it from and records as holding it. None: the carrier asked.
    carrier: str | None = None


@dataclass(frozen=True)
class NumberOrderResult:
    phone_number: str
    status: OrderStatus
    reason: str | None = None
    # The carrier that answered for the number, when several were asked
    # (``multi``). None: the carrier asked.
    carrier: str | None = None


class CarrierFailure(Exception):
    """The carrier definitely did not do what was asked (nothing to settle later)."""


class CarrierOutcomeUnknown(Exception):
    """We don't know whether the carrier did it (timeout, dropped connection).
    The reconciler asks the carrier later by our order id."""


@dataclass
class Reservation:
    reference: str
    phone_numbers: list[str] = field(default_factory=list)


class Carrier(Protocol):
    name: str

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> Iterator[AvailableNumber]:
        """Yield available numbers matching *every* filter of ``query`` in a stable
        order, skipping numbers in ``exclude`` (held for other buyers or owned)."""
        ...

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        """Describe one number if the carrier can sell it now, else ``None``."""
        ...

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        """Hold numbers at the carrier where it has reservations (Telnyx, Bandwidth);
        a no-op where it hasn't."""
        ...

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        """Buy numbers, with our ``order_id`` as the carrier's customer reference.
        Returns one result per number (orders can be partly filled). Raises
        CarrierFailure when nothing was bought, CarrierOutcomeUnknown when we can't tell."""
        ...

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        """What the carrier says became of our order; an empty list when it never
        received it."""
        ...

    def owned_numbers(self) -> Iterator[str]:
        """Every number (E.164) the carrier says this platform holds now, for
        reconciliation. Raises CarrierFailure when it can't list them."""
        ...

    def holds(self, phone_number: str) -> bool:
        """Whether the platform's account at the carrier holds the number now.
        ``multi`` asks it for a number recorded before each number kept its own
        carrier (``phone_numbers.carrier`` = ``multi``). Raises CarrierFailure
        when the carrier can't say."""
        ...

    def release(self, phone_number: str) -> None:
        """Give a number back. Raises CarrierFailure / CarrierOutcomeUnknown."""
        ...

    # -- CNAM (caller-name listing) ---------------------------------------

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        """List ``name`` as the caller name of a number we hold (``None`` removes
        the listing). Raises CarrierFailure(reason) when refused,
        CarrierOutcomeUnknown when we can't tell; setting the same name twice is
        harmless, so an unknown outcome is settled by pushing again."""
        ...

    # -- E911 ------------------------------------------------------------------

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        """Check an address against the carrier's 911 database (MSAG). May
        suggest a corrected form. Raises CarrierFailure / CarrierOutcomeUnknown
        when it couldn't ask."""
        ...

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        """Set (or replace) a number's E911 address; pushing the same address
        twice is harmless. Raises CarrierFailure / CarrierOutcomeUnknown."""
        ...

    def remove_e911(self, phone_number: str) -> None:
        """Remove a number's E911 address (a no-op if it has none)."""
        ...


@dataclass(frozen=True)
class E911AddressData:
    """A normalized US address as the carrier receives it."""

    street: str
    unit: str | None
    city: str
    state: str
    postal_code: str  # 5 digits or ZIP+4
    country: str
    caller_name: str


@dataclass(frozen=True)
class E911Validation:
    valid: bool
    suggestion: E911AddressData | None = None  # the carrier's corrected form
    reason: str | None = None  # why it's not valid
    reference: str | None = None  # the carrier's id for the validated address


class WithoutCnamAndE911:
    """For a carrier adapter that does not (yet) carry caller names or E911:
    each call is refused with a reason the user sees (a CNAM or E911 status of
    ``failed``), never silently accepted."""

    name: str

    def _unsupported(self, what: str) -> CarrierFailure:
        return CarrierFailure(f"{self.name}: {what} is not supported by didhub's adapter yet")

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        raise self._unsupported("setting the caller name (CNAM)")

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        raise self._unsupported("E911 address validation")

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        raise self._unsupported("E911 provisioning")

    def remove_e911(self, phone_number: str) -> None:
        raise self._unsupported("E911 removal")


# -- Porting (issue 16) ---------------------------------------------------------
#
# Porting is a separate protocol: not every adapter has it. ``porting_of``
# gives a carrier's porting operations, or a CarrierFailure naming why this
# carrier can't port (Twilio and Bandwidth through didhub's adapter).

PortStatus = Literal[
    "draft", "submitted", "in_progress", "foc_confirmed", "exception", "ported", "cancelled"
]


@dataclass(frozen=True)
class Portability:
    phone_number: str
    portable: bool
    fast_portable: bool = False
    reason: str | None = None  # why not portable, in the carrier's words
    losing_carrier: str | None = None


@dataclass(frozen=True)
class PortRequestData:
    """What the carrier needs to port numbers in: the order's fields."""

    reference: str  # our order id (the carrier's customer reference)
    phone_numbers: tuple[str, ...]
    entity_name: str
    authorized_person: str
    account_number: str
    pin: str | None
    billing_phone_number: str
    service_address: E911AddressData
    foc_date: str  # YYYY-MM-DD
    loa_document: str | None = None  # the carrier's document id
    bill_document: str | None = None


@dataclass(frozen=True)
class PortOrderState:
    """One carrier porting order: the carrier splits ours by losing carrier,
    so a submission may answer several."""

    carrier_order_id: str
    status: PortStatus
    phone_numbers: tuple[str, ...]
    foc_date: str | None = None  # confirmed (YYYY-MM-DD)
    reason: str | None = None  # an exception's reason, the losing carrier's words
    losing_carrier: str | None = None


@dataclass(frozen=True)
class PortOut:
    """A number the carrier says was ported away from us."""

    phone_number: str
    ported_on: str  # YYYY-MM-DD
    reference: str | None = None
    winning_carrier: str | None = None


class Porting(Protocol):
    name: str

    def check_portability(self, phone_numbers: Sequence[str]) -> list[Portability]: ...

    def allowed_foc_dates(self, phone_numbers: Sequence[str]) -> list[str]:
        """The dates (YYYY-MM-DD) the carrier accepts as the requested FOC date."""
        ...

    def upload_document(self, filename: str, content: bytes) -> str:
        """Store an LOA or a bill at the carrier; its document id."""
        ...

    def submit_port(self, request: PortRequestData) -> list[PortOrderState]:
        """Create and submit porting orders (one per losing carrier)."""
        ...

    def resubmit_port(self, carrier_order_id: str, request: PortRequestData) -> PortOrderState:
        """Correct an order in exception and submit it again."""
        ...

    def port_status(self, carrier_order_id: str) -> PortOrderState: ...

    def cancel_port(self, carrier_order_id: str) -> None: ...

    def port_outs(self) -> list[PortOut]:
        """Numbers ported away from the platform's account."""
        ...

    def set_port_out_pin(self, phone_number: str, pin: str) -> None:
        """Require ``pin`` from any carrier that asks to port the number away."""
        ...


def porting_of(carrier: object) -> Porting:
    """The carrier's porting operations, or CarrierFailure with the reason."""
    porting = getattr(carrier, "porting", None)
    if porting is None:
        name = getattr(carrier, "name", "this carrier")
        why = getattr(carrier, "porting_refusal", None) or (
            f"{name}: porting numbers in is not supported by didhub's adapter"
        )
        raise CarrierFailure(str(why))
    return porting  # type: ignore[no-any-return]
