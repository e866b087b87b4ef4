"""Several carriers behind the one ``Carrier`` protocol.

* search: asked of every carrier enabled for the query's country and number
  type, concurrently (one thread each), each given ``deadline`` seconds. The
  answers are merged, de-duplicated by E.164 (the first carrier in preference
  order wins) and sorted, so pages are stable. A carrier that is slow or down
  is left out and named in ``SearchResults.failed`` (the API's
  ``meta.partial``); when every carrier failed the search raises CarrierFailure.
* lookup / reserve / order: a number goes to the carrier that offered it (kept
  from search and lookup in a bounded in-memory map; otherwise the carriers are
  asked in preference order). ``lookup`` names that carrier in
  ``AvailableNumber.carrier``: the purchase records it as the number's carrier
  (``phone_numbers.carrier``) and orders the number from it directly, and
  every later call about the number goes to it (``registry.carrier_for``).
  ``order`` and ``order_status`` name in each result the carrier that answered.
* order_status: every carrier is asked by our order id (each keeps it as its
  customer reference); if any can't answer, the outcome is unknown, since a
  partial answer would fail numbers another carrier did provide. (Reconcile
  asks only the carriers its numbers were ordered from; this is for numbers
  recorded as ``multi``.)
* release / set_cnam / provision_e911 / remove_e911, for a number recorded as
  ``multi`` (bought before each number kept its own carrier): the carrier that
  holds it, asked ``holds`` in preference order. A carrier that can't say
  whether it holds it makes the outcome unknown (the CNAM and E911 sweeps push
  again later).
* validate_e911_address: asked of the first carrier, in preference order, that
  is enabled for US numbers and validates E911 addresses (not one refusing
  CNAM/E911 as a whole; one that only accepts the address as given, like
  Bandwidth, comes after those that check it); if it can't be asked, the next.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from didhub.carriers.base import (
    AvailableNumber,
    Carrier,
    CarrierFailure,
    CarrierOutcomeUnknown,
    E911AddressData,
    E911Validation,
    NumberOrderResult,
    SearchQuery,
    WithoutCnamAndE911,
    searches_by_postal_code,
)

log = logging.getLogger("didhub.carriers.multi")

_REMEMBERED = 10_000


@dataclass(frozen=True)
class CarrierScope:
    countries: frozenset[str] | None = None  # None = everywhere
    number_types: frozenset[str] | None = None

    def covers(self, query: SearchQuery) -> bool:
        country_ok = self.countries is None or query.country_code.upper() in self.countries
        kind_ok = self.number_types is None or query.phone_number_type in self.number_types
        return country_ok and kind_ok


@dataclass
class SearchResults(Iterator[AvailableNumber]):
    """A finished multi-carrier search: the merged numbers, and the carriers
    that did not answer (name -> why)."""

    numbers: list[AvailableNumber]
    failed: dict[str, str] = field(default_factory=dict)
    _position: int = 0

    def __iter__(self) -> SearchResults:
        return self

    def __next__(self) -> AvailableNumber:
        if self._position >= len(self.numbers):
            raise StopIteration
        self._position += 1
        return self.numbers[self._position - 1]


class MultiCarrier:
    name = "multi"

    def __init__(
        self,
        carriers: Sequence[Carrier],
        scopes: dict[str, CarrierScope] | None = None,
        deadline: float = 8.0,
        per_carrier_limit: int = 200,
    ) -> None:
        if not carriers:
            raise ValueError("a multi-carrier setup needs at least one carrier (DIDHUB_CARRIERS)")
        self.carriers = list(carriers)
        self.by_name = {c.name: c for c in self.carriers}
        self.scopes = scopes or {}
        self.deadline = deadline
        self.per_carrier_limit = per_carrier_limit
        self._offered: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    # -- routing memory --------------------------------------------------------

    def _remember(self, e164: str, carrier: str) -> None:
        with self._lock:
            self._offered[e164] = carrier
            self._offered.move_to_end(e164)
            while len(self._offered) > _REMEMBERED:
                self._offered.popitem(last=False)

    def carrier_of(self, e164: str) -> str | None:
        """The carrier that last offered ``e164`` in this process, if any."""
        with self._lock:
            return self._offered.get(e164)

    def _in_preference(self, e164: str) -> list[Carrier]:
        first = self.carrier_of(e164)
        return sorted(self.carriers, key=lambda c: c.name != first)

    # -- search ----------------------------------------------------------------

    @property
    def searches_by_postal_code(self) -> bool:
        return any(searches_by_postal_code(c) for c in self.carriers)

    def enabled_for(self, query: SearchQuery) -> list[Carrier]:
        return [
            c
            for c in self.carriers
            if self.scopes.get(c.name, CarrierScope()).covers(query)
            and (not query.postal_code or searches_by_postal_code(c))
        ]

    def search(self, query: SearchQuery, exclude: frozenset[str]) -> SearchResults:
        carriers = self.enabled_for(query)
        if not carriers:
            return SearchResults([])
        limit = self.per_carrier_limit

        def ask(carrier: Carrier) -> list[AvailableNumber]:
            return list(itertools.islice(carrier.search(query, exclude), limit))

        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(carriers), thread_name_prefix="carrier-search"
        )
        try:
            futures = {pool.submit(ask, c): c for c in carriers}
            done, _ = concurrent.futures.wait(futures, timeout=self.deadline)
        finally:
            # Don't wait for a slow carrier: its thread ends with its HTTP timeout.
            pool.shutdown(wait=False, cancel_futures=True)
        answers: dict[str, list[AvailableNumber]] = {}
        failed: dict[str, str] = {}
        for future, carrier in futures.items():
            if future not in done:
                failed[carrier.name] = f"no answer within {self.deadline:g}s"
                continue
            error = future.exception()
            if error is not None:
                failed[carrier.name] = str(error) or type(error).__name__
                continue
            answers[carrier.name] = future.result()
        for name, reason in failed.items():
            log.warning("multi: search left out %s: %s", name, reason)
        if not answers:
            raise CarrierFailure(
                "no carrier answered the search ("
                + "; ".join(f"{n}: {r}" for n, r in failed.items())
                + ")"
            )
        merged: dict[str, AvailableNumber] = {}
        for carrier in carriers:  # preference order decides duplicates
            for number in answers.get(carrier.name, []):
                if number.phone_number not in merged:
                    merged[number.phone_number] = replace(number, carrier=carrier.name)
                    self._remember(number.phone_number, carrier.name)
        return SearchResults(sorted(merged.values(), key=lambda n: n.phone_number), failed)

    def lookup(self, phone_number: str) -> AvailableNumber | None:
        errors: list[str] = []
        for carrier in self._in_preference(phone_number):
            try:
                found = carrier.lookup(phone_number)
            except CarrierFailure as exc:
                errors.append(str(exc))
                continue
            if found is not None:
                self._remember(phone_number, carrier.name)
                return replace(found, carrier=carrier.name)
        if errors:
            # "Not found" must not be said when a carrier couldn't be asked.
            raise CarrierFailure("; ".join(errors))
        return None

    def _route(self, phone_numbers: Sequence[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for e164 in phone_numbers:
            name = self.carrier_of(e164)
            if name is None and self.lookup(e164) is not None:
                name = self.carrier_of(e164)
            groups.setdefault(name or "", []).append(e164)
        return groups

    def reserve(self, phone_numbers: Sequence[str], reference: str, minutes: int) -> None:
        for name, numbers in self._route(phone_numbers).items():
            if name:
                self.by_name[name].reserve(numbers, reference, minutes)

    def order(self, order_id: str, phone_numbers: Sequence[str]) -> list[NumberOrderResult]:
        results: dict[str, NumberOrderResult] = {}
        unknown: list[str] = []
        for name, numbers in self._route(phone_numbers).items():
            if not name:
                for e164 in numbers:
                    results[e164] = NumberOrderResult(e164, "failed", "no carrier offers it")
                continue
            try:
                for result in self.by_name[name].order(order_id, numbers):
                    results[result.phone_number] = replace(result, carrier=name)
            except CarrierFailure as exc:
                for e164 in numbers:
                    results[e164] = NumberOrderResult(e164, "failed", str(exc))
            except CarrierOutcomeUnknown as exc:
                unknown.append(f"{name}: {exc}")
        if unknown:
            raise CarrierOutcomeUnknown("; ".join(unknown))
        ordered = [results[n] for n in phone_numbers]
        if not any(r.status == "active" for r in ordered):
            reasons = "; ".join(f"{r.phone_number}: {r.reason}" for r in ordered)
            raise CarrierFailure(f"nothing could be ordered ({reasons})")
        return ordered

    def order_status(self, order_id: str) -> list[NumberOrderResult]:
        results: list[NumberOrderResult] = []
        for carrier in self.carriers:
            try:
                answer = carrier.order_status(order_id)
            except (CarrierFailure, CarrierOutcomeUnknown) as exc:
                raise CarrierOutcomeUnknown(f"{carrier.name} could not be asked: {exc}") from None
            results.extend(replace(r, carrier=carrier.name) for r in answer)
        return results

    def owned_numbers(self) -> Iterator[str]:
        """Every carrier's numbers; one carrier failing fails the list (so
        reconcile flags nothing rather than everything that carrier holds)."""
        seen: set[str] = set()
        for carrier in self.carriers:
            for e164 in carrier.owned_numbers():
                if e164 not in seen:
                    seen.add(e164)
                    yield e164

    def holder(self, phone_number: str) -> Carrier | None:
        """The carrier that holds ``phone_number`` (asked in preference order,
        the one that offered it first), or None. Raises CarrierOutcomeUnknown
        when a carrier can't say."""
        for carrier in self._in_preference(phone_number):
            try:
                held = carrier.holds(phone_number)
            except CarrierFailure as exc:
                raise CarrierOutcomeUnknown(
                    f"{carrier.name} could not say whether it holds {phone_number}: {exc}"
                ) from None
            if held:
                return carrier
        return None

    def holds(self, phone_number: str) -> bool:
        return self.holder(phone_number) is not None

    def release(self, phone_number: str) -> None:
        carrier = self.holder(phone_number)
        if carrier is None:
            log.warning("multi: no carrier holds %s; counted as released", phone_number)
            return
        carrier.release(phone_number)

    # -- CNAM and E911 ---------------------------------------------------------

    def _required_holder(self, phone_number: str) -> Carrier:
        carrier = self.holder(phone_number)
        if carrier is None:
            raise CarrierFailure(f"no carrier holds {phone_number}")
        return carrier

    def set_cnam(self, phone_number: str, name: str | None) -> None:
        self._required_holder(phone_number).set_cnam(phone_number, name)

    def provision_e911(self, phone_number: str, address: E911AddressData) -> None:
        self._required_holder(phone_number).provision_e911(phone_number, address)

    def remove_e911(self, phone_number: str) -> None:
        carrier = self.holder(phone_number)
        if carrier is None:
            log.warning("multi: no carrier holds %s; no E911 to remove", phone_number)
            return
        carrier.remove_e911(phone_number)

    def validate_e911_address(self, address: E911AddressData) -> E911Validation:
        us = SearchQuery(address.country or "US", "local")
        able = [
            c
            for c in self.enabled_for(us)
            if not isinstance(c, WithoutCnamAndE911) and c.name != self.name
        ]
        # A carrier that only accepts the address as given (Bandwidth) is asked
        # after those that check it against a 911 database.
        able.sort(key=lambda c: not getattr(c, "checks_e911_addresses", True))
        if not able:
            raise CarrierFailure("no configured carrier validates E911 addresses")
        errors: list[str] = []
        for carrier in able:
            try:
                return carrier.validate_e911_address(address)
            except (CarrierFailure, CarrierOutcomeUnknown) as exc:
                log.warning("multi: %s could not validate an address: %s", carrier.name, exc)
                errors.append(f"{carrier.name}: {exc}")
        raise CarrierFailure("; ".join(errors))
