"""Bring-your-own numbers: talking to an account's *own* provider account with
credentials it hands us for one request (never stored, never logged: they sit
in the client's auth/headers only, and account ids are masked in messages).

One class per provider, three verbs:

* ``find(e164)``: the number as the account holds it (its provider id and its
  current voice routing), or ``None`` when the account doesn't hold it.
* ``point(numbers, voice)``: route the numbers' voice to didhub's SIP edge,
  through the object the account set up towards our edge (a Telnyx
  connection, a Twilio Elastic SIP trunk, a Bandwidth site + SIP peer).
* ``restore(number)``: put back the routing ``find`` saw before the import.

* Telnyx: ``GET /v2/phone_numbers?filter[phone_number]=``; routing is the
  number's ``connection_id``, set with ``PATCH /v2/phone_numbers/{id}``.
* Twilio: ``GET .../IncomingPhoneNumbers.json?PhoneNumber=``; routing is the
  number's ``TrunkSid`` (Elastic SIP Trunking), set with
  ``POST .../IncomingPhoneNumbers/{sid}.json``.
* Bandwidth: ``GET .../inserviceNumbers/{tn}`` (404: not held), then
  ``GET /api/tns/{tn}/tndetails`` for its site and SIP peer; routing moves with
  ``POST .../sites/{site}/sippeers/{peer}/movetns``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape

import httpx

from didhub.carriers import bandwidth, telnyx, twilio
from didhub.carriers.base import CarrierFailure
from didhub.carriers.http import DEFAULT_TIMEOUT, CarrierClient, nanp_national

PROVIDERS = ("telnyx", "twilio", "bandwidth")
# Credential keys per provider, and the voice fields naming the account's
# route towards our edge.
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "telnyx": ("api_key",),
    "twilio": ("account_sid", "auth_token"),
    "bandwidth": ("account_id", "username", "password"),
}
VOICE_KEYS: dict[str, tuple[str, ...]] = {
    "telnyx": ("connection_id",),
    "twilio": ("trunk_sid",),
    "bandwidth": ("site_id", "sip_peer_id"),
}


@dataclass(frozen=True)
class HeldNumber:
    """A number an account holds at its provider: the provider's id for it and
    its voice routing (what ``restore`` puts back; ids only, no secrets)."""

    phone_number: str
    provider_id: str
    routing: dict[str, str | None] = field(default_factory=dict)


class ByoProvider(Protocol):
    name: str

    def find(self, phone_number: str) -> HeldNumber | None: ...

    def point(self, numbers: Sequence[HeldNumber], voice: Mapping[str, str]) -> None: ...

    def restore(self, number: HeldNumber) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClientOptions:
    base_url: str
    timeout: httpx.Timeout | float = field(default_factory=lambda: DEFAULT_TIMEOUT)
    max_attempts: int = 4
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] | None = None


def _client(
    name: str,
    options: ClientOptions,
    error_text: Callable[[httpx.Response], str],
    *,
    auth: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    mask: Sequence[str] = (),
) -> CarrierClient:
    extra = {"sleep": options.sleep} if options.sleep is not None else {}
    return CarrierClient(
        name,
        options.base_url,
        error_text=error_text,
        auth=auth,
        headers=headers,
        timeout=options.timeout,
        max_attempts=options.max_attempts,
        mask=mask,
        transport=options.transport,
        **extra,  # type: ignore[arg-type]
    )


class TelnyxByo:
    name = "telnyx"

    def __init__(self, credentials: Mapping[str, str], options: ClientOptions) -> None:
        self.client = _client(
            self.name,
            options,
            telnyx.error_text,
            headers={
                "Authorization": f"Bearer {credentials['api_key']}",
                "Accept": "application/json",
            },
        )

    def close(self) -> None:
        self.client.close()

    def find(self, phone_number: str) -> HeldNumber | None:
        item = telnyx.find_number(self.client, phone_number)
        if item is None:
            return None
        return HeldNumber(
            phone_number, str(item["id"]), {"connection_id": item.get("connection_id")}
        )

    def _set(self, number: HeldNumber, connection_id: str | None) -> None:
        self.client.request(
            "PATCH",
            f"/v2/phone_numbers/{number.provider_id}",
            write=True,
            json={"connection_id": connection_id},
        )

    def point(self, numbers: Sequence[HeldNumber], voice: Mapping[str, str]) -> None:
        for number in numbers:
            self._set(number, voice["connection_id"])

    def restore(self, number: HeldNumber) -> None:
        self._set(number, number.routing.get("connection_id"))


class TwilioByo:
    name = "twilio"

    def __init__(self, credentials: Mapping[str, str], options: ClientOptions) -> None:
        sid = credentials["account_sid"]
        self.client = _client(
            self.name,
            options,
            twilio.error_text,
            auth=(sid, credentials["auth_token"]),
            mask=[sid],
        )
        self.account = f"/2010-04-01/Accounts/{sid}"
        self.numbers = f"{self.account}/IncomingPhoneNumbers"

    def close(self) -> None:
        self.client.close()

    def find(self, phone_number: str) -> HeldNumber | None:
        params = {"PhoneNumber": phone_number}
        for item in twilio.incoming_numbers(self.client, self.account, params):
            if item.get("phone_number") == phone_number:
                return HeldNumber(
                    phone_number, str(item["sid"]), {"trunk_sid": item.get("trunk_sid")}
                )
        return None

    def _set(self, number: HeldNumber, trunk_sid: str | None) -> None:
        # An empty TrunkSid takes the number off any trunk: its own voice URL
        # (left untouched by the import) answers again.
        self.client.request(
            "POST",
            f"{self.numbers}/{number.provider_id}.json",
            write=True,
            data={"TrunkSid": trunk_sid or ""},
        )

    def point(self, numbers: Sequence[HeldNumber], voice: Mapping[str, str]) -> None:
        for number in numbers:
            self._set(number, voice["trunk_sid"])

    def restore(self, number: HeldNumber) -> None:
        self._set(number, number.routing.get("trunk_sid"))


class BandwidthByo:
    name = "bandwidth"

    def __init__(self, credentials: Mapping[str, str], options: ClientOptions) -> None:
        account_id = credentials["account_id"]
        self.client = _client(
            self.name,
            options,
            bandwidth.error_text,
            auth=(credentials["username"], credentials["password"]),
            headers={"Accept": "application/xml"},
            mask=[account_id],
        )
        self.account = f"/api/accounts/{account_id}"

    def close(self) -> None:
        self.client.close()

    def find(self, phone_number: str) -> HeldNumber | None:
        tn = nanp_national(phone_number)
        if tn is None:
            return None  # Bandwidth holds US numbers only
        held = self.client.request(
            "GET", f"{self.account}/inserviceNumbers/{tn}", write=False, ok=(404,)
        )
        if held.status_code == 404:
            return None
        details = self.client.request("GET", f"/api/tns/{tn}/tndetails", write=False)
        root = bandwidth.parse_xml(details.content)
        site = root.findtext(".//Site/Id")
        peer = root.findtext(".//SipPeer/PeerId")
        return HeldNumber(phone_number, tn, {"site_id": site, "sip_peer_id": peer})

    def _move(self, tns: Sequence[str], site_id: str, peer_id: str) -> None:
        body = "".join(f"<FullNumber>{escape(tn)}</FullNumber>" for tn in tns)
        self.client.request(
            "POST",
            f"{self.account}/sites/{site_id}/sippeers/{peer_id}/movetns",
            write=True,
            content=f"<SipPeerTelephoneNumbers>{body}</SipPeerTelephoneNumbers>",
            headers=bandwidth.XML_HEADERS,
        )

    def point(self, numbers: Sequence[HeldNumber], voice: Mapping[str, str]) -> None:
        self._move([n.provider_id for n in numbers], voice["site_id"], voice["sip_peer_id"])

    def restore(self, number: HeldNumber) -> None:
        site, peer = number.routing.get("site_id"), number.routing.get("sip_peer_id")
        if not site or not peer:
            raise CarrierFailure(
                f"bandwidth: no previous SIP peer recorded for {number.phone_number}"
            )
        self._move([number.provider_id], site, peer)


def make(provider: str, credentials: Mapping[str, str], options: ClientOptions) -> ByoProvider:
    if provider == "telnyx":
        return TelnyxByo(credentials, options)
    if provider == "twilio":
        return TwilioByo(credentials, options)
    if provider == "bandwidth":
        return BandwidthByo(credentials, options)
    raise ValueError(f"unknown provider {provider}")
