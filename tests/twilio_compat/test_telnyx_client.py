"""The Telnyx-compatible API driven by the official ``telnyx`` library against a
real uvicorn serving didhub, checked against didhub's own API."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import telnyx
from twilio_compat_server import didhub_get, served  # noqa: F401 (the base_url fixture)

from conftest import Acct


def test_the_telnyx_library_searches_orders_lists_and_deletes(
    base_url: str,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Voice Agents", balance="50.00")
    client = telnyx.Telnyx(api_key=tenant.key, base_url=f"{base_url}/v2", max_retries=0)

    found = client.available_phone_numbers.list(
        filter={"country_code": "US", "national_destination_code": "501", "limit": 3}
    )
    assert found.data and len(found.data) <= 3
    assert all(n.phone_number.startswith("+1501") for n in found.data)
    tail = found.data[0].phone_number[-3:]
    ending = client.available_phone_numbers.list(
        filter={"national_destination_code": "501", "phone_number": {"ends_with": tail}}
    )
    assert ending.data and all(n.phone_number.endswith(tail) for n in ending.data)

    before = Decimal(didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"])
    wanted = [n.phone_number for n in found.data[:2]]
    order = client.number_orders.create(phone_numbers=[{"phone_number": p} for p in wanted])
    assert order.data.status == "success"
    assert sorted(n.phone_number for n in order.data.phone_numbers) == sorted(wanted)

    ours = didhub_get(base_url, tenant, "/telephony/numbers")["data"]
    assert sorted(n["phone_number"] for n in ours) == sorted(wanted)
    after = Decimal(didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"])
    paid = sum(
        Decimal(n["cost_information"]["monthly_cost"])
        + Decimal(n["cost_information"]["upfront_cost"])
        for n in ours
    )
    assert before - after == paid > 0

    # Paging: the library follows page[number] to the last page.
    listed = [n.phone_number for n in client.phone_numbers.list(page_size=1)]
    assert sorted(listed) == sorted(wanted)
    first_page = client.phone_numbers.list(page_size=1)
    assert (first_page.meta.total_results, first_page.meta.total_pages) == (2, 2)
    last_digits = ours[1]["phone_number"][-7:]
    found = client.phone_numbers.list(filter={"phone_number": last_digits})
    assert [n.phone_number for n in found] == [ours[1]["phone_number"]]
    one = client.phone_numbers.retrieve(ours[0]["id"])
    assert one.data.phone_number == ours[0]["phone_number"]

    gone = client.phone_numbers.delete(ours[0]["id"])
    assert gone.data.status == "deleted"
    left = didhub_get(base_url, tenant, "/telephony/numbers")["data"]
    assert [n["phone_number"] for n in left] == [ours[1]["phone_number"]]

    with pytest.raises(telnyx.NotFoundError):
        client.phone_numbers.retrieve("num_00000000000000000000000000")
    bad = telnyx.Telnyx(api_key="not-a-key", base_url=f"{base_url}/v2", max_retries=0)
    with pytest.raises(telnyx.AuthenticationError):
        bad.phone_numbers.list()
    with pytest.raises(telnyx.BadRequestError) as unsupported:
        client.available_phone_numbers.list(filter={"quickship": True})
    assert "filter[quickship]" in str(unsupported.value)
