"""The porting rules (docs/porting.md); every edge calls these.

- ``orders``: create (with the portability check), change and correct,
  documents and the LOA, FOC dates, submit, resubmit, cancel;
- ``progress``: the carrier's reports applied, completion into the inventory;
- ``pins``: an account's port-out PIN.
"""

from __future__ import annotations

from didhub.porting.service.files import add_document, order_documents, read_document
from didhub.porting.service.orders import (
    cancel,
    carrier_orders,
    check,
    create,
    finish_cancel,
    foc_dates,
    loa_pdf,
    port_numbers,
    porting_for,
    resubmit,
    submit,
    update,
)
from didhub.porting.service.pins import has_pin, set_pin
from didhub.porting.service.progress import (
    SyncReport,
    apply_state,
    complete,
    on_carrier_event,
    sync_open,
    sync_order,
)

__all__ = [
    "SyncReport",
    "add_document",
    "apply_state",
    "cancel",
    "carrier_orders",
    "check",
    "complete",
    "create",
    "finish_cancel",
    "foc_dates",
    "has_pin",
    "loa_pdf",
    "on_carrier_event",
    "order_documents",
    "port_numbers",
    "porting_for",
    "read_document",
    "resubmit",
    "set_pin",
    "submit",
    "sync_open",
    "sync_order",
    "update",
]
