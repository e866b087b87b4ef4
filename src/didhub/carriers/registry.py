"""Which carrier a deployment talks to (``DIDHUB_CARRIER``): ``sandbox``,
``stock`` (the platform's own numbers), ``telnyx``, ``twilio``, ``bandwidth``,
or ``multi`` for every carrier listed in ``DIDHUB_CARRIERS`` (see
docs/carriers.md)."""

from __future__ import annotations

import httpx

from didhub.carriers.base import Carrier, CarrierFailure
from didhub.carriers.multi import MultiCarrier
from didhub.config import Settings
from didhub.db import Database

KNOWN = ("sandbox", "stock", "telnyx", "twilio", "bandwidth", "multi")


def _secret(value: object) -> str:
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal()) if callable(reveal) else ""


def make_one(name: str, settings: Settings, db: Database) -> Carrier:
    timeout = httpx.Timeout(settings.carrier_timeout_seconds, connect=5.0)
    if name == "sandbox":
        from didhub.carriers.sandbox import SandboxCarrier

        return SandboxCarrier(
            db,
            seed=settings.sandbox_seed,
            port_step_seconds=settings.sandbox_port_step_seconds,
            aging_days=settings.number_aging_days,
        )
    if name == "stock":
        from didhub.carriers.stock import StockCarrier

        return StockCarrier(db, aging_days=settings.number_aging_days)
    if name == "telnyx":
        from didhub.carriers.telnyx import TelnyxCarrier

        return TelnyxCarrier(
            _secret(settings.telnyx_api_key),
            settings.telnyx_base_url,
            connection_id=settings.telnyx_connection_id,
            messaging_profile_id=settings.telnyx_messaging_profile_id,
            timeout=timeout,
            max_attempts=settings.carrier_max_attempts,
            order_wait_seconds=settings.carrier_order_wait_seconds,
            search_limit=settings.carrier_search_limit,
        )
    if name == "twilio":
        from didhub.carriers.twilio import TwilioCarrier

        return TwilioCarrier(
            _secret(settings.twilio_account_sid),
            _secret(settings.twilio_auth_token),
            settings.twilio_base_url,
            timeout=timeout,
            max_attempts=settings.carrier_max_attempts,
            search_limit=settings.carrier_search_limit,
        )
    if name == "bandwidth":
        from didhub.carriers.bandwidth import BandwidthCarrier

        return BandwidthCarrier(
            _secret(settings.bandwidth_account_id),
            _secret(settings.bandwidth_username),
            _secret(settings.bandwidth_password),
            settings.bandwidth_site_id or "",
            settings.bandwidth_base_url,
            peer_id=settings.bandwidth_peer_id,
            timeout=timeout,
            max_attempts=settings.carrier_max_attempts,
            order_wait_seconds=settings.carrier_order_wait_seconds,
            search_limit=settings.carrier_search_limit,
        )
    raise ValueError(f"unknown carrier {name!r}; known: {', '.join(KNOWN)}")


def make_carrier(settings: Settings, db: Database) -> Carrier:
    if settings.carrier == "multi":
        from didhub.carriers.multi import CarrierScope

        names = settings.carriers
        if not names or "multi" in names:
            raise ValueError("DIDHUB_CARRIER=multi needs DIDHUB_CARRIERS (e.g. telnyx,twilio)")
        scopes = {
            name: CarrierScope(
                frozenset(c.upper() for c in scope.countries), frozenset(scope.number_types)
            )
            for name, scope in settings.carrier_scopes.items()
        }
        return MultiCarrier(
            [make_one(name, settings, db) for name in names],
            scopes,
            deadline=settings.carrier_search_deadline_seconds,
        )
    if settings.carrier not in KNOWN:
        raise ValueError(
            f"unknown carrier {settings.carrier!r} (DIDHUB_CARRIER); known: {', '.join(KNOWN)}"
        )
    return make_one(settings.carrier, settings, db)


def carrier_for(configured: Carrier, recorded: str) -> Carrier:
    """The carrier to ask about a number recorded as held by ``recorded``
    (``phone_numbers.carrier``): the configured carrier itself, or the one of
    ``multi``'s carriers with that name. A number recorded as ``multi`` (bought
    before each number kept its own carrier) gets the multi carrier, which asks
    its carriers who holds it. Raises CarrierFailure for a carrier this
    deployment doesn't configure: refused with a reason, never sent to
    another carrier that doesn't hold the number."""
    if recorded == configured.name:
        return configured
    if isinstance(configured, MultiCarrier) and recorded in configured.by_name:
        return configured.by_name[recorded]
    raise CarrierFailure(
        f"{recorded} is not a configured carrier (DIDHUB_CARRIER / DIDHUB_CARRIERS); "
        "numbers it holds can't be changed there from here"
    )


def served_carrier_names(configured: Carrier) -> tuple[str, ...]:
    """The ``phone_numbers.carrier`` / ``number_orders.carrier`` values this
    deployment's carrier answers for (:func:`carrier_for` finds each one)."""
    if isinstance(configured, MultiCarrier):
        return (configured.name, *configured.by_name)
    return (configured.name,)
