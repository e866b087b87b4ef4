"""Telnyx porting, API v2 (the port-in guide and reference: portability checks,
porting orders, documents, allowed FOC windows, port-outs).

* check_portability: ``POST /v2/portability_checks`` -> ``portable``,
  ``fast_portable``, ``not_portable_reason``.
* upload_document: ``POST /v2/documents`` with the file base64-encoded
  (``file``, ``filename``) -> its ``id``.
* submit_port: ``POST /v2/porting_orders`` (``phone_numbers``,
  ``customer_reference`` = our order id). Telnyx splits an order by losing
  carrier (SPID), country, type and FastPort: every returned order is updated
  (``PATCH /v2/porting_orders/{id}``: ``end_user.admin``, ``end_user.location``,
  ``documents.loa`` / ``documents.invoice``, ``activation_settings.
  foc_datetime_requested``) and submitted (``POST .../actions/confirm``).
* allowed_foc_dates: ``GET /v2/porting_orders/{id}/allowed_foc_windows`` of a
  draft order (``started_at`` / ``ended_at``): each window's start date. Telnyx
  gives windows per order, so didhub asks with a draft order it then deletes.
* port_status: ``GET /v2/porting_orders/{id}``: ``status.value`` (draft,
  in-process, submitted, exception, foc-date-confirmed, cancel-pending, ported,
  cancelled) and ``status.details`` (the exception's code and description).
* cancel_port: ``POST /v2/porting_orders/{id}/actions/cancel``.
* port_outs: ``GET /v2/portouts?filter[status]=completed``.
* set_port_out_pin: not in the Telnyx v2 reference at hand (Telnyx keeps the
  port-out PIN on the account, set in its portal): refused with that reason.
* webhooks: ``porting_order.status_changed`` and ``portout.status_changed``
  (:func:`parse_webhook`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from didhub.carriers.base import (
    CarrierFailure,
    Portability,
    PortOrderState,
    PortOut,
    PortRequestData,
    PortStatus,
)
from didhub.carriers.http import CarrierClient

STATUS: dict[str, PortStatus] = {
    "draft": "draft",
    "submitted": "submitted",
    "in-process": "in_progress",
    "foc-date-confirmed": "foc_confirmed",
    "exception": "exception",
    "ported": "ported",
    "cancel-pending": "cancelled",
    "cancelled": "cancelled",
}


def _details(status: dict[str, Any]) -> str | None:
    parts = []
    for item in status.get("details") or []:
        text = item.get("description") or item.get("code")
        if text:
            parts.append(str(text))
    return "; ".join(parts) or None


def order_state(data: dict[str, Any]) -> PortOrderState:
    status = data.get("status") or {}
    value = str(status.get("value", ""))
    if value not in STATUS:
        raise CarrierFailure(f"telnyx: unknown porting order status {value!r}")
    numbers = tuple(
        str(n.get("phone_number") if isinstance(n, dict) else n)
        for n in data.get("phone_numbers") or []
    )
    activation = data.get("activation_settings") or {}
    foc = activation.get("foc_datetime_actual")
    return PortOrderState(
        str(data["id"]),
        STATUS[value],
        numbers,
        str(foc)[:10] if foc else None,
        _details(status) if STATUS[value] == "exception" else None,
        data.get("old_service_provider_ocn"),
    )


class TelnyxPorting:
    name = "telnyx"

    def __init__(self, client: CarrierClient) -> None:
        self.client = client

    def check_portability(self, phone_numbers: Sequence[str]) -> list[Portability]:
        response = self.client.request(
            "POST",
            "/v2/portability_checks",
            write=False,
            json={"phone_numbers": list(phone_numbers)},
        )
        out = []
        for item in response.json().get("data", []):
            reason = item.get("not_portable_reason") or None
            out.append(
                Portability(
                    str(item["phone_number"]),
                    bool(item.get("portable")),
                    bool(item.get("fast_portable")),
                    None if item.get("portable") else (reason or "not portable"),
                    item.get("carrier_name") or None,
                )
            )
        return out

    def _create(self, phone_numbers: Sequence[str], reference: str) -> list[dict[str, Any]]:
        response = self.client.request(
            "POST",
            "/v2/porting_orders",
            write=True,
            json={"phone_numbers": list(phone_numbers), "customer_reference": reference},
        )
        data = response.json().get("data", [])
        return list(data) if isinstance(data, list) else [data]

    def allowed_foc_dates(self, phone_numbers: Sequence[str]) -> list[str]:
        drafts = self._create(phone_numbers, "didhub-foc-dates")
        dates: set[str] = set()
        try:
            for draft in drafts:
                response = self.client.request(
                    "GET", f"/v2/porting_orders/{draft['id']}/allowed_foc_windows", write=False
                )
                dates |= {str(w["started_at"])[:10] for w in response.json().get("data", [])}
        finally:
            for draft in drafts:
                self.client.request(
                    "DELETE", f"/v2/porting_orders/{draft['id']}", write=True, ok=(404,)
                )
        return sorted(dates)

    def upload_document(self, filename: str, content: bytes) -> str:
        response = self.client.request(
            "POST",
            "/v2/documents",
            write=True,
            json={"file": base64.b64encode(content).decode("ascii"), "filename": filename},
        )
        return str(response.json()["data"]["id"])

    def _fill(self, order_id: str, request: PortRequestData) -> None:
        address = request.service_address
        body: dict[str, Any] = {
            "customer_reference": request.reference,
            "end_user": {
                "admin": {
                    "entity_name": request.entity_name,
                    "auth_person_name": request.authorized_person,
                    "billing_phone_number": request.billing_phone_number,
                    "account_number": request.account_number,
                    "pin_passcode": request.pin,
                },
                "location": {
                    "street_address": address.street,
                    "extended_address": address.unit,
                    "locality": address.city,
                    "administrative_area": address.state,
                    "postal_code": address.postal_code,
                    "country_code": address.country,
                },
            },
            "activation_settings": {"foc_datetime_requested": f"{request.foc_date}T16:00:00Z"},
        }
        documents = {
            k: v
            for k, v in (("loa", request.loa_document), ("invoice", request.bill_document))
            if v
        }
        if documents:
            body["documents"] = documents
        self.client.request("PATCH", f"/v2/porting_orders/{order_id}", write=True, json=body)

    def _confirm(self, order_id: str) -> PortOrderState:
        response = self.client.request(
            "POST", f"/v2/porting_orders/{order_id}/actions/confirm", write=True
        )
        return order_state(response.json()["data"])

    def submit_port(self, request: PortRequestData) -> list[PortOrderState]:
        states = []
        for order in self._create(request.phone_numbers, request.reference):
            self._fill(str(order["id"]), request)
            states.append(self._confirm(str(order["id"])))
        return states

    def resubmit_port(self, carrier_order_id: str, request: PortRequestData) -> PortOrderState:
        self._fill(carrier_order_id, request)
        return self._confirm(carrier_order_id)

    def port_status(self, carrier_order_id: str) -> PortOrderState:
        response = self.client.request("GET", f"/v2/porting_orders/{carrier_order_id}", write=False)
        return order_state(response.json()["data"])

    def cancel_port(self, carrier_order_id: str) -> None:
        self.client.request(
            "POST", f"/v2/porting_orders/{carrier_order_id}/actions/cancel", write=True
        )

    def port_outs(self) -> list[PortOut]:
        response = self.client.request(
            "GET", "/v2/portouts", write=False, params={"filter[status]": "completed"}
        )
        out = []
        for item in response.json().get("data", []):
            when = str(item.get("foc_date") or item.get("updated_at") or "")[:10]
            for number in item.get("phone_numbers") or []:
                out.append(
                    PortOut(str(number), when, str(item.get("id")), item.get("carrier_name"))
                )
        return out

    def set_port_out_pin(self, phone_number: str, pin: str) -> None:
        raise CarrierFailure(
            "telnyx: a port-out PIN is set on the Telnyx account in its portal; "
            "the API reference didhub follows has no call for it"
        )


def parse_webhook(body: bytes) -> tuple[str, dict[str, Any]]:
    """``(event_type, payload)`` of a Telnyx porting webhook."""
    try:
        data = json.loads(body)["data"]
        return str(data["event_type"]), dict(data.get("payload") or {})
    except (ValueError, KeyError, TypeError) as exc:
        raise CarrierFailure(f"telnyx: not a porting webhook ({exc})") from exc
