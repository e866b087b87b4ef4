"""The public event catalogue: stable names receivers can rely on, and how
didhub's internal history kinds map to them.

Internal kinds (``numbers.lifecycle.record``'s ``status.active``,
``tenant.assigned``…; ``billing.wallet.event``'s ``renewal.charged``…) may be
renamed; these names may not. A kind with no public name here is not
published (it stays in the number's or the account's own history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

EVENT_TYPES: dict[str, str] = {
    "number.ordered": "Bought and paid for; the carrier is providing it (status provisioning)",
    "number.purchased": "The carrier provided the number: it is active and billed monthly",
    "number.purchase_failed": "The carrier could not provide the number; it was refunded",
    "number.imported": "Imported from the account's own provider (no monthly fee): active",
    "number.tenant_assigned": "The number now serves a tenant",
    "number.tenant_unassigned": "The number no longer serves the tenant named",
    "number.assigned": "The number points at an agent for inbound or outbound calls",
    "number.unassigned": "An agent assignment ended (unassigned, reassigned, released)",
    "number.suspended": "Suspended for non-payment: calls hear the suspension announcement",
    "number.reactivated": "Paid up: the suspended number is active again",
    "number.releasing": "Release asked for; waiting for the carrier",
    "number.release_failed": "The carrier refused the release: the number is as it was",
    "number.released": "Given back to the carrier; billing stopped",
    "number.ported_out": "Ported away to another carrier: routing removed, billing stopped",
    "number.ported_in": "Ported in from its losing carrier: active, billed from the port date",
    "port.submitted": "A port-in order was submitted (or resubmitted) to the carrier",
    "port.foc_confirmed": "The losing carrier confirmed the port date (FOC)",
    "port.exception": "The losing carrier rejected the port; its reason is in the event",
    "port.completed": "Every number of the port-in order has ported and is active",
    "port.cancelled": "The port-in order was cancelled; nothing is billed",
    "number.cnam.updated": "The caller-name (CNAM) listing changed status",
    "number.e911.updated": "The emergency (E911) address changed status",
    "billing.renewal_charged": "Monthly fees were charged to the wallet (one event per run)",
    "billing.payment_succeeded": "The card on file was charged and the wallet credited",
    "billing.payment_failed": "A charge to the card on file was declined",
    "billing.past_due": "A monthly fee couldn't be paid; the grace period started",
    "billing.suspended": "The grace period ended unpaid: the account's numbers are suspended",
    "billing.good_standing": "Everything due is paid; service is restored",
    "billing.released_for_nonpayment": "Suspended numbers were released for non-payment",
    "billing.card_added": "A card was put on file",
    "billing.auto_recharge_disabled": "Auto-recharge was turned off (the card was removed)",
    "e911.call_placed": "An agent dialled 911 or 933: the calling number, agent and address",
}

GROUPS = ("number", "billing", "port", "e911")

# billing.wallet.event kinds -> public names.
ACCOUNT_KINDS: dict[str, str] = {
    "renewal.charged": "billing.renewal_charged",
    "payment.succeeded": "billing.payment_succeeded",
    "payment.failed": "billing.payment_failed",
    "account.past_due": "billing.past_due",
    "account.suspended": "billing.suspended",
    "account.good_standing": "billing.good_standing",
    "numbers.released_for_nonpayment": "billing.released_for_nonpayment",
    "card.added": "billing.card_added",
    "auto_recharge.disabled": "billing.auto_recharge_disabled",
    "port.submitted": "port.submitted",
    "port.foc_confirmed": "port.foc_confirmed",
    "port.exception": "port.exception",
    "port.completed": "port.completed",
    "port.cancelled": "port.cancelled",
}


@dataclass(frozen=True)
class Published:
    """One public event made from an internal number event: its type, the
    tenant it concerns, and the details it carries."""

    type: str
    tenant_id: str | None
    details: dict[str, object] = field(default_factory=dict)


def _status_event(to: str, previous: object) -> str | None:
    if to == "provisioning":
        return "number.ordered"
    if to == "failed":
        return "number.purchase_failed"
    if to == "releasing":
        return "number.releasing"
    if to == "released":
        return "number.released"
    if to == "ported_out":
        return "number.ported_out"
    if previous == "releasing":  # back to active or suspended: the carrier refused
        return "number.release_failed"
    if to == "active":
        return "number.reactivated" if previous == "suspended" else "number.purchased"
    if to == "suspended":
        return "number.suspended"
    return None


def number_events(kind: str, tenant_id: str | None, data: Mapping[str, object]) -> list[Published]:
    """The public events for one internal number event. ``tenant_id`` is the
    tenant the number serves now. Moving a number from one tenant to another
    is two events, so each tenant hears about its own number."""
    details = dict(data)
    group, _, rest = kind.partition(".")
    if group == "status":
        name = _status_event(rest, data.get("previous"))
        return [Published(name, tenant_id, details)] if name else []
    previous = data.get("previous_tenant_id")
    previous_tenant = previous if isinstance(previous, str) else None
    if kind == "tenant.assigned":
        out = []
        if previous_tenant is not None:
            out.append(
                Published("number.tenant_unassigned", previous_tenant, {"tenant_id": previous})
            )
        assigned: dict[str, object] = {
            "tenant_id": tenant_id,
            "previous_tenant_id": previous_tenant,
        }
        out.append(Published("number.tenant_assigned", tenant_id, assigned))
        return out
    if kind == "tenant.unassigned":
        gone: dict[str, object] = {"tenant_id": previous_tenant}
        return [Published("number.tenant_unassigned", previous_tenant, gone)]
    if kind == "imported":
        # Only the provider: the routing ids recorded to restore it stay in the history.
        return [Published("number.imported", tenant_id, {"provider": data.get("provider")})]
    if kind == "ported_in":
        return [Published("number.ported_in", tenant_id, details)]
    if kind == "agent.assigned":
        return [Published("number.assigned", tenant_id, details)]
    if kind == "agent.unassigned":
        return [Published("number.unassigned", tenant_id, details)]
    # CNAM and E911 kinds are "<feature>.<status>" (cnam.pending, e911.provisioned…).
    if group in ("cnam", "e911") and rest:
        return [Published(f"number.{group}.updated", tenant_id, {"status": rest, **details})]
    return []


def account_event(kind: str) -> str | None:
    return ACCOUNT_KINDS.get(kind)


def check_patterns(patterns: Sequence[str]) -> str | None:
    """None when every pattern names a catalogue type or a group (``number.*``);
    otherwise the first one that doesn't."""
    for pattern in patterns:
        if pattern in EVENT_TYPES:
            continue
        if pattern.endswith(".*") and pattern[:-2] in GROUPS:
            continue
        return pattern
    return None


def matches(patterns: Sequence[str] | None, event_type: str) -> bool:
    """Does a subscription (None = everything) include this event type?"""
    if patterns is None:
        return True
    return any(
        p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])) for p in patterns
    )
