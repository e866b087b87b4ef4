"""What every HTTP carrier adapter shares: one ``httpx.Client`` with timeouts,
bounded retries with exponential backoff and jitter, and the rule that decides
whether a failed call means "definitely not done" (``CarrierFailure``) or "we
can't tell" (``CarrierOutcomeUnknown``).

The rule, by kind of call:

* a *read* (search, lookup, order status): timeouts, connection errors, 429 and
  5xx are retried; when the attempts run out, ``CarrierFailure``.
* a *write* (order, release): 429 and 503 mean the carrier refused the request
  before doing anything, so they are retried; a timeout, a dropped connection or
  another 5xx may hide a request the carrier carried out, so it is never retried
  blindly: ``CarrierOutcomeUnknown``, and the saga's reconcile asks
  ``order_status`` later.
* any other 4xx: ``CarrierFailure`` with the carrier's own error text.

Credentials live in the client's auth/headers only; log lines and exception
messages carry the carrier name, method, path (account ids masked) and status.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import phonenumbers

from didhub.carriers.base import CarrierFailure, CarrierOutcomeUnknown, SearchQuery
from didhub.numbering import NANP_COUNTRIES

log = logging.getLogger("didhub.carriers")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Status codes a write may retry: the carrier answered without acting on it.
_WRITE_RETRYABLE = frozenset({429, 503})


class CarrierHTTPError(CarrierFailure):
    """A carrier answered with an error status (after any retries)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class CarrierClient:
    """A thin wrapper over ``httpx.Client`` for one carrier account.

    ``error_text`` pulls the carrier's own message out of an error response
    (Telnyx ``errors[].detail``, Twilio ``message`` + ``code``, Bandwidth
    ``<Description>``). ``mask`` lists strings (account ids) replaced by ``***``
    in logs and messages. ``sleep`` is injectable so tests don't wait."""

    def __init__(
        self,
        carrier: str,
        base_url: str,
        *,
        error_text: Callable[[httpx.Response], str],
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 30.0,
        mask: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.carrier = carrier
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._error_text = error_text
        # The credentials themselves are masked too: a carrier's error text may
        # echo the key it was sent (Telnyx does, for a malformed one).
        secrets = [*mask]
        if isinstance(auth, tuple):
            secrets.extend(auth)
        for name, value in (headers or {}).items():
            if name.lower() in ("authorization", "x-api-key"):
                secrets.append(value.split(" ", 1)[-1])
        self._mask = tuple(sorted({m for m in secrets if len(m) >= 4}, key=len, reverse=True))
        self._sleep = sleep
        self.http = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def masked(self, text: str) -> str:
        for secret in self._mask:
            text = text.replace(secret, "***")
        return text

    def backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the carrier's
        ``Retry-After`` when it gives one (capped), else full-jitter exponential."""
        if response is not None:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.max_retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)

    def request(
        self,
        method: str,
        path: str,
        *,
        write: bool,
        ok: Iterable[int] = (),
        params: Any = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request with the retry rule above. Returns a 2xx response,
        or one whose status is in ``ok`` (e.g. 404 for "not on this account")."""
        accepted = frozenset(ok)
        where = self.masked(f"{method} {path}")
        response: httpx.Response | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    data=data,
                    content=content,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                if write:
                    log.warning("%s: %s failed (%s); outcome unknown", self.carrier, where, kind)
                    raise CarrierOutcomeUnknown(
                        f"{self.carrier}: {where} got no answer ({kind}); the outcome is unknown"
                    ) from None
                log.warning("%s: %s failed (%s), attempt %d", self.carrier, where, kind, attempt)
                if attempt == self.max_attempts:
                    raise CarrierFailure(
                        f"{self.carrier}: {where} got no answer after {attempt} attempts ({kind})"
                    ) from None
                self._sleep(self.backoff(attempt, None))
                continue
            status = response.status_code
            log.info("%s: %s -> %d", self.carrier, where, status)
            if 200 <= status < 300 or status in accepted:
                return response
            retryable = status in _WRITE_RETRYABLE if write else status == 429 or status >= 500
            if retryable and attempt < self.max_attempts:
                self._sleep(self.backoff(attempt, response))
                continue
            detail = self.masked(self._safe_error_text(response))
            if write and status >= 500 and status not in _WRITE_RETRYABLE:
                raise CarrierOutcomeUnknown(
                    f"{self.carrier}: {where} answered {status}; the outcome is unknown ({detail})"
                )
            raise CarrierHTTPError(f"{self.carrier}: {where} answered {status}: {detail}", status)
        raise AssertionError("unreachable")  # pragma: no cover

    def _safe_error_text(self, response: httpx.Response) -> str:
        try:
            text = self._error_text(response).strip()
        except Exception:  # a malformed error body must not hide the status
            text = ""
        return text or response.reason_phrase or "no error text"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def nanp_national(e164: str) -> str | None:
    """The 10-digit national number of a +1 number, else None."""
    if e164.startswith("+1") and len(e164) == 12 and e164[2:].isdigit():
        return e164[2:]
    return None


def matches_pattern(nsn: str, pattern: str | None) -> bool:
    """Whether a national significant number starts with ``pattern`` (digits
    and ``X`` wildcards), the ``SearchQuery.pattern`` rule."""
    if not pattern:
        return True
    if len(pattern) > len(nsn):
        return False
    return all(p in ("X", "x") or p == d for p, d in zip(pattern, nsn, strict=False))


def fixed_prefix(pattern: str | None) -> str:
    """The digits of ``pattern`` before its first wildcard."""
    if not pattern:
        return ""
    for i, ch in enumerate(pattern):
        if ch in ("X", "x"):
            return pattern[:i]
    return pattern


def longest_fixed_run(pattern: str) -> str:
    """The longest run of digits in a pattern (for 'contains' filters)."""
    runs = pattern.upper().split("X")
    return max(runs, key=len) if runs else ""


def national_number(e164: str) -> str:
    """The national significant number of an E.164 number (no trunk prefix)."""
    try:
        return str(phonenumbers.parse(e164, None).national_number)
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")


def matches_query(e164: str, query: SearchQuery, exclude: frozenset[str]) -> bool:
    """Re-check what a carrier returned against the filters we can check
    locally (carriers pad results with "best effort" near misses)."""
    if e164 in exclude:
        return False
    nsn = national_number(e164)
    nanp = query.country_code.upper() in NANP_COUNTRIES
    if query.area_code:
        area = query.area_code if nanp else query.area_code.lstrip("0")
        if not nsn.startswith(area):
            return False
    if query.nxx and (not nanp or nsn[3:6] != query.nxx):
        return False
    pattern = query.pattern
    if pattern and not nanp:
        pattern = pattern.lstrip("0") or None
    return matches_pattern(nsn, pattern)
