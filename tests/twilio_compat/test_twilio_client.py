"""The Twilio-compatible API driven by the official ``twilio`` library against a
real uvicorn serving didhub, checked against didhub's own API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client
from twilio_compat_server import didhub_get, served  # noqa: F401 (the base_url fixture)

from conftest import Acct
from didhub.twilio_compat.schemas import account_sid, sid

ADDRESS = {
    "customer_name": "Acme Dental",
    "street": "123 North Main Street",
    "city": "Little Rock",
    "region": "AR",
    "postal_code": "72201",
    "iso_country": "US",
}


def twilio(url: str, sid: str, token: str) -> Client:
    client = Client(sid, token)
    # The library builds every URL from its Api domain's base_url.
    client.api.base_url = url
    return client


def mine_in_didhub(base_url: str, acct: Acct, e164: str) -> dict:  # type: ignore[type-arg]
    rows = didhub_get(base_url, acct, "/telephony/numbers")["data"]
    return next(n for n in rows if n["phone_number"] == e164)  # type: ignore[no-any-return]


def test_the_twilio_library_searches_buys_configures_and_releases(
    base_url: str, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Voice Agents", balance="50.00")
    client = twilio(base_url, account_sid(tenant.id), tenant.key)
    api = client.api.v2010.accounts(account_sid(tenant.id))

    by_area = api.available_phone_numbers("US").local.list(area_code="501", limit=5)
    assert 1 <= len(by_area) <= 5
    assert all(n.phone_number.startswith("+1501") for n in by_area)
    first = by_area[0]
    assert first.iso_country == "US" and first.region and first.capabilities["voice"] is True
    assert (
        first.friendly_name
        == f"({first.phone_number[2:5]}) {first.phone_number[5:8]}-" + (first.phone_number[8:])
    )

    tail = first.phone_number[-4:]
    contains = api.available_phone_numbers("US").local.list(
        area_code="501", contains=f"*{tail}", limit=10
    )
    assert contains and all(tail in n.phone_number[-5:] for n in contains)
    assert all(n.phone_number.startswith("+1501") for n in contains)

    before = Decimal(didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"])
    bought = api.incoming_phone_numbers.create(phone_number=first.phone_number)
    assert bought.sid.startswith("PN") and len(bought.sid) == 34
    assert bought.phone_number == first.phone_number
    assert bought.account_sid == account_sid(tenant.id)
    second = api.incoming_phone_numbers.create(area_code="501")
    assert second.phone_number.startswith("+1501") and second.sid != bought.sid

    # The wallet paid what didhub's own API says the numbers cost.
    ours = didhub_get(base_url, tenant, "/telephony/numbers")["data"]
    assert sorted(n["phone_number"] for n in ours) == sorted(
        [first.phone_number, second.phone_number]
    )
    paid = sum(
        Decimal(n["cost_information"]["monthly_cost"])
        + Decimal(n["cost_information"]["upfront_cost"])
        for n in ours
    )
    after = Decimal(didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"])
    assert before - after == paid > 0

    # Paging: one per page, the library follows next_page_uri.
    page = api.incoming_phone_numbers.page(page_size=1)
    page_one = list(page)
    assert len(page_one) == 1
    following = page.next_page()
    assert following is not None
    page_two = list(following)
    assert len(page_two) == 1
    assert {page_one[0].sid, page_two[0].sid} == {bought.sid, second.sid}
    assert following.next_page() is None
    assert len(api.incoming_phone_numbers.list(page_size=1)) == 2
    only = api.incoming_phone_numbers.list(phone_number=first.phone_number)
    assert [n.sid for n in only] == [bought.sid]

    # Friendly name and voice target.
    updated = api.incoming_phone_numbers(bought.sid).update(
        friendly_name="Front desk", voice_url="sip:frontdesk@pbx.example.com:5060"
    )
    assert updated.friendly_name == "Front desk"
    assert updated.voice_url == "sip:frontdesk@pbx.example.com:5060"
    assert mine_in_didhub(base_url, tenant, first.phone_number)["friendly_name"] == "Front desk"
    by_name = api.incoming_phone_numbers.list(friendly_name="Front desk")
    assert [n.sid for n in by_name] == [bought.sid]
    # A number without a name of its own goes by its default, "(NPA) NXX-XXXX".
    default = api.incoming_phone_numbers(second.sid).fetch().friendly_name
    assert default.startswith("(") and default.count("-") == 1
    assert [n.sid for n in api.incoming_phone_numbers.list(friendly_name=default)] == [second.sid]
    assert api.incoming_phone_numbers.list(friendly_name="Nobody") == []
    fetched = api.incoming_phone_numbers(bought.sid).fetch()
    assert fetched.friendly_name == "Front desk"
    mine = next(
        n
        for n in didhub_get(base_url, tenant, "/telephony/numbers")["data"]
        if n["phone_number"] == first.phone_number
    )
    inbound = mine["assignments"]["inbound"]
    assert inbound is not None
    agents = didhub_get(base_url, tenant, "/agents")["data"]
    agent = next(a for a in agents if a["id"] == inbound["agent_id"])
    assert agent["sip_uri"] == "sip:frontdesk@pbx.example.com:5060"
    route = httpx.get(f"{base_url}/routing/inbound/{first.phone_number}", timeout=10).json()
    assert route["data"]["sip_uri"] == "sip:frontdesk@pbx.example.com:5060"

    # An emergency address, attached.
    address = api.addresses.create(**ADDRESS)
    assert address.sid.startswith("AD") and address.validated is True
    assert [a.sid for a in api.addresses.list()] == [address.sid]
    assert api.addresses(address.sid).fetch().city == address.city
    attached = api.incoming_phone_numbers(bought.sid).update(emergency_address_sid=address.sid)
    assert attached.emergency_address_sid == address.sid
    e911 = didhub_get(base_url, tenant, f"/telephony/numbers/{mine['id']}/e911")["data"]
    assert sid("AD", e911["address_id"]) == address.sid
    assert e911["address"]["city"] == address.city

    # Release: 204, gone from both APIs.
    assert api.incoming_phone_numbers(bought.sid).delete() is True
    left = didhub_get(base_url, tenant, "/telephony/numbers")["data"]
    assert [n["phone_number"] for n in left] == [second.phone_number]
    assert [n.sid for n in api.incoming_phone_numbers.list()] == [second.sid]
    with pytest.raises(TwilioRestException) as gone:
        api.incoming_phone_numbers(bought.sid).fetch()
    assert gone.value.code == 20404 and gone.value.status == 404


def test_twilio_errors_come_in_twilio_shape(
    base_url: str, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Voice Agents", balance="50.00")
    other = make_tenant("Someone Else", balance="50.00")
    sid = account_sid(tenant.id)

    bad = twilio(base_url, sid, "not-a-key").api.v2010.accounts(sid)
    with pytest.raises(TwilioRestException) as refused:
        bad.incoming_phone_numbers.create(area_code="501")
    assert refused.value.code == 20003 and refused.value.status == 401
    # A list's error is the library's plain TwilioException, carrying the answer.
    with pytest.raises(TwilioException) as listed:
        bad.incoming_phone_numbers.list()
    assert json.loads(listed.value.args[1].text)["code"] == 20003

    # Another account's SID with this key: refused as well.
    crossed = twilio(base_url, account_sid(other.id), tenant.key).api.v2010.accounts(sid)
    with pytest.raises(TwilioRestException) as wrong:
        crossed.incoming_phone_numbers.create(area_code="501")
    assert wrong.value.code == 20003

    api = twilio(base_url, sid, tenant.key).api.v2010.accounts(sid)
    with pytest.raises(TwilioRestException) as none:
        api.incoming_phone_numbers.create(area_code="999")
    assert none.value.code == 21452 and none.value.status == 400
    assert api.available_phone_numbers("US").local.list(area_code="999") == []

    with pytest.raises(TwilioRestException) as unsupported:
        api.incoming_phone_numbers.create(area_code="501", sms_url="https://example.com/sms")
    assert unsupported.value.code == 20001 and unsupported.value.status == 400
    assert "SmsUrl" in unsupported.value.msg
    assert api.incoming_phone_numbers.list() == []  # refused before anything was bought
    with pytest.raises(TwilioException) as near:
        api.available_phone_numbers("US").local.list(near_lat_long="37.84,-122.28")
    answer = near.value.args[1]
    assert answer.status_code == 400 and json.loads(answer.text)["code"] == 20001
    assert "NearLatLong" in json.loads(answer.text)["message"]

    with pytest.raises(TwilioRestException) as http_voice:
        number = api.incoming_phone_numbers.create(area_code="501")
        api.incoming_phone_numbers(number.sid).update(voice_url="https://example.com/twiml")
    assert http_voice.value.code == 21502

    # A number someone else holds is not available.
    taken = api.incoming_phone_numbers.list()[0].phone_number
    other_api = twilio(base_url, account_sid(other.id), other.key).api.v2010.accounts(
        account_sid(other.id)
    )
    with pytest.raises(TwilioRestException) as unavailable:
        other_api.incoming_phone_numbers.create(phone_number=taken)
    assert unavailable.value.code == 21422

    raw = httpx.get(f"{base_url}/2010-04-01/Accounts/{sid}/Calls.json", auth=(sid, tenant.key))
    assert raw.status_code == 404 and raw.json()["code"] == 20404


def test_a_number_is_bought_configured_or_not_at_all(
    base_url: str, make_tenant: Callable[..., Acct]
) -> None:
    tenant = make_tenant("Voice Agents", balance="50.00")
    other = make_tenant("Someone Else", balance="50.00")
    sid = account_sid(tenant.id)
    api = twilio(base_url, sid, tenant.key).api.v2010.accounts(sid)
    address = api.addresses.create(**ADDRESS)
    before = didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"]
    # A bad setting is refused before the purchase: nothing bought, nothing paid.
    for bad in (
        {"voice_url": "sip:"},
        {"emergency_address_sid": "AD" + "0" * 32},
        {"friendly_name": "x" * 65},
    ):
        with pytest.raises(TwilioRestException):
            api.incoming_phone_numbers.create(area_code="501", **bad)
    assert didhub_get(base_url, tenant, "/telephony/numbers")["data"] == []
    assert didhub_get(base_url, tenant, "/billing/wallet")["data"]["balance"] == before

    number = api.incoming_phone_numbers.create(
        area_code="501",
        friendly_name="Sales line",
        voice_url="sip:sales@pbx.example.com",
        emergency_address_sid=address.sid,
    )
    assert number.friendly_name == "Sales line"
    assert number.voice_url == "sip:sales@pbx.example.com"
    assert number.emergency_address_sid == address.sid
    ours = mine_in_didhub(base_url, tenant, number.phone_number)
    assert ours["friendly_name"] == "Sales line" and ours["e911"] is not None

    # Clearing: an empty VoiceUrl takes the inbound agent away.
    cleared = api.incoming_phone_numbers(number.sid).update(voice_url="")
    assert cleared.voice_url is None
    assert mine_in_didhub(base_url, tenant, number.phone_number)["assignments"]["inbound"] is None

    # Another account sees none of it.
    other_api = twilio(base_url, account_sid(other.id), other.key).api.v2010.accounts(
        account_sid(other.id)
    )
    with pytest.raises(TwilioRestException) as hidden:
        other_api.incoming_phone_numbers(number.sid).fetch()
    assert hidden.value.code == 20404
    with pytest.raises(TwilioRestException) as hidden_address:
        other_api.addresses(address.sid).fetch()
    assert hidden_address.value.code == 20404
    assert other_api.addresses.list() == []


def test_two_buyers_racing_for_one_number_pay_once(
    base_url: str, make_tenant: Callable[..., Acct], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the race between two servers' transactions is PostgreSQL's")
    buyers = [make_tenant(f"Racer {i}", balance="50.00") for i in range(2)]
    sid0 = account_sid(buyers[0].id)
    api0 = twilio(base_url, sid0, buyers[0].key).api.v2010.accounts(sid0)
    wanted = api0.available_phone_numbers("US").local.list(area_code="501", limit=1)[0]
    results: list[object] = [None, None]
    start = threading.Barrier(2)

    def race(i: int) -> None:
        acct = buyers[i]
        sid = account_sid(acct.id)
        api = twilio(base_url, sid, acct.key).api.v2010.accounts(sid)
        start.wait()
        try:
            results[i] = api.incoming_phone_numbers.create(phone_number=wanted.phone_number)
        except TwilioRestException as exc:
            results[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    refused = [r for r in results if isinstance(r, TwilioRestException)]
    assert len(refused) == 1 and refused[0].code == 21422
    paid = [Decimal(didhub_get(base_url, b, "/billing/wallet")["data"]["balance"]) for b in buyers]
    owners = [didhub_get(base_url, b, "/telephony/numbers")["data"] for b in buyers]
    assert sorted(len(o) for o in owners) == [0, 1]
    assert sorted(paid)[1] == Decimal("50.00") > sorted(paid)[0]
