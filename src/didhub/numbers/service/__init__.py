"""The number lifecycle's rules, one module per concern:

- ``pricing``: prices and the monthly anniversary;
- ``search``: search, quote and holds;
- ``orders``: the purchase saga and its settlement;
- ``inventory``: a number, a page of numbers, counts;
- ``assignments``: tenants and agents, per direction;
- ``release``: giving numbers back, and the one refund policy;
- ``reconcile``: what a carrier call left open, and the inventory against the carriers'.

Services take a Session (or the Database where a carrier call sits between two
transactions) and know nothing of HTTP; the API, the dashboard and the CLI all
call these functions, through this package (``from didhub.numbers import service``).
"""

from __future__ import annotations

from didhub.numbers.service.assignments import (
    ASSIGNMENT_TYPES,
    assign_agent,
    end_assignments,
    set_tenant,
    unassign_agent,
)
from didhub.numbers.service.inventory import (
    FRIENDLY_NAME_MAX,
    InventoryFilter,
    InventoryPage,
    count_by_tenant,
    decode_cursor,
    encode_cursor,
    get_number,
    list_numbers,
    live_assignments,
    live_page,
    lock_number,
    resolve_number_id,
    set_friendly_name,
)
from didhub.numbers.service.orders import (
    PurchaseResult,
    order_outcome,
    purchase,
    refuse_if_none_provided,
    settle_order,
)
from didhub.numbers.service.portout import mark_ported_out, reconcile_port_outs
from didhub.numbers.service.pricing import (
    add_months,
    price_for,
)
from didhub.numbers.service.reconcile import (
    ReconcileReport,
    compare_inventory,
    reconcile,
)
from didhub.numbers.service.release import (
    NONPAYMENT_RELEASE,
    begin_release,
    release,
    release_for_nonpayment,
    release_refund_policy,
)
from didhub.numbers.service.search import (
    MAX_NUMBERS_PER_ORDER,
    Quote,
    QuoteLine,
    SearchPage,
    expire_holds,
    quote,
    search,
    validate_numbers,
)

__all__ = [
    "FRIENDLY_NAME_MAX",
    "price_for",
    "add_months",
    "MAX_NUMBERS_PER_ORDER",
    "SearchPage",
    "search",
    "QuoteLine",
    "Quote",
    "validate_numbers",
    "quote",
    "expire_holds",
    "PurchaseResult",
    "purchase",
    "refuse_if_none_provided",
    "order_outcome",
    "settle_order",
    "get_number",
    "lock_number",
    "resolve_number_id",
    "set_friendly_name",
    "InventoryFilter",
    "InventoryPage",
    "encode_cursor",
    "decode_cursor",
    "list_numbers",
    "live_page",
    "count_by_tenant",
    "live_assignments",
    "ASSIGNMENT_TYPES",
    "end_assignments",
    "begin_release",
    "mark_ported_out",
    "reconcile_port_outs",
    "set_tenant",
    "assign_agent",
    "unassign_agent",
    "release",
    "NONPAYMENT_RELEASE",
    "release_for_nonpayment",
    "release_refund_policy",
    "ReconcileReport",
    "reconcile",
    "compare_inventory",
]
