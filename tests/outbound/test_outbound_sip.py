"""Outbound calls end to end (issue 15): an AI agent's SIP client (sipp, with
digest auth) calls out through Kamailio (deploy/kamailio/kamailio.cfg), which
asks a real ``didhub serve`` (POST /routing/outbound) and relays the call to a
carrier trunk (another sipp) with the agent's number in From and
P-Asserted-Identity. Needs kamailio and sipp (``.ci/run`` installs them).

The account's guards are its outbound settings (``PATCH /outbound/settings``):
a daily spend limit, a concurrent-call limit (the edge counts calls in progress
per paying account in a dialog profile), and the calls are rated by the
destination's rate from the outbound rate table."""

from __future__ import annotations

import hashlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Acct, buy, search_numbers
from didhub.billing.service import outbound_rates
from didhub.config import Settings
from didhub.db import Database
from didhub.outbound import service as outbound
from didhub.wallet import ledger
from didhub.webhooks import delivery
from sip_edge import (
    PHONE,
    Edge,
    didhub_server,
    free_port,
    kamailio,
    require_sip_tools,
    sipp_uas,
)
from webhook_receiver import Receiver

DESTINATION = "+15015550123"  # a US number the agent dials
UK = "+442079460123"

ADDRESS: dict[str, Any] = {
    "street": "123 North Main Street",
    "city": "Little Rock",
    "state": "Arkansas",
    "postal_code": "72201-1234",
    "unit": "Suite 200",
    "caller_name": "Acme Dental",
}


@pytest.fixture(autouse=True)
def _sip_tools() -> None:
    require_sip_tools()


# The agent's SIP client: INVITE, the edge's 407, the same INVITE with digest
# credentials (sipp's -au/-ap), then the call or the expected refusal. The From
# is what a SIP client configured with domain = the realm sends: its number
# (or whatever it put there) @ the realm.
_FIRST_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="an agent calls out with digest auth">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:agent@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: sip:agent@[local_ip]:[local_port]
[authentication]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
"""

AGENT_ANSWERED = (
    _FIRST_INVITE
    + """  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <pause/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""
)

AGENT_REFUSED = (
    _FIRST_INVITE
    + """  <recv response="{code}"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "AI Agent" <sip:{caller}@didhub>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
"""
)

# A carrier trunk that is down: every INVITE gets 503.
TRUNK_503 = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a trunk answering 503">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
SIP/2.0 503 Service Unavailable
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def _challenge(code: str, header_name: str) -> str:
    return f"""  <recv request="INVITE"/>
  <send>
    <![CDATA[
SIP/2.0 {code}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
{header_name}: Digest realm="carrier.example", nonce="4f1c0a9e77d2", algorithm=MD5
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
"""


def checking_digest(user: str, password: str) -> str:
    """A carrier trunk that knows the edge by digest credentials (as Twilio's
    and Telnyx's credential-authenticated trunks do): it challenges the INVITE
    with 401, checks the answer and takes the call only if the credentials
    are right (403 otherwise)."""
    return PHONE.replace(
        '  <recv request="INVITE" crlf="true"/>',
        _challenge("401 Unauthorized", "WWW-Authenticate")
        + f"""  <recv request="INVITE" crlf="true">
    <action>
      <verifyauth assign_to="authvalid" username="{user}" password="{password}"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="valid"/>
  <send>
    <![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="done"/>
  <label id="valid"/>
""",
    ).replace("</scenario>", '  <label id="done"/>\n</scenario>')


def _only_challenging(times: int) -> str:
    """A trunk that answers each of ``times`` INVITEs with a 407 challenge."""
    challenge = _challenge("407 Proxy Authentication Required", "Proxy-Authenticate")
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="challenges only">\n'
        + challenge * times
        + "</scenario>\n"
    )


# A trunk that doesn't take the edge's credentials: it challenges (407) again.
TRUNK_REFUSING_DIGEST = _only_challenging(2)
# A trunk that wants credentials the edge wasn't given: it challenges once.
TRUNK_CHALLENGING = _only_challenging(1)

# A trunk behind a proxy that challenges with 407 Proxy-Authenticate, then
# takes the call. (sipp's <verifyauth> reads only Authorization, never
# Proxy-Authorization: the test checks this digest itself.)
TRUNK_PROXY_CHALLENGING = PHONE.replace(
    '  <recv request="INVITE" crlf="true"/>',
    _challenge("407 Proxy Authentication Required", "Proxy-Authenticate")
    + '  <recv request="INVITE" crlf="true"/>',
)


def call_over_trunks(
    database_url: str,
    tmp_path: Path,
    setup: Setup,
    name: str,
    *trunks: subprocess.Popen[bytes],
) -> str:
    """The agent's call through a fresh edge, answered over ``trunks`` (each
    sipp UAS must end cleanly); the edge's log."""
    with (
        didhub_server(database_url, tmp_path) as server,
        kamailio(server.url, tmp_path) as edge,
    ):
        call = agent_call(edge, DESTINATION, setup.number, setup.credential, tmp_path, name)
        assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        assert [t.wait(timeout=20) for t in trunks] == [0] * len(trunks)
        return edge.log.read_text(errors="replace")


def first_line(messages: str, start: str) -> str:
    """The first line of ``messages`` that begins with ``start``, from there on."""
    return messages[messages.index(start) :].split("\n", 1)[0]


def digest_ok(authorization: str, method: str, password: str) -> bool:
    """Whether an RFC 2617 digest answer (no qop, MD5) was made with ``password``."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', authorization))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{fields['username']}:{fields['realm']}:{password}")
    ha2 = md5(f"{method}:{fields['uri']}")
    return fields["response"] == md5(f"{ha1}:{fields['nonce']}:{ha2}")


def agent_call(
    edge: Edge,
    destination: str,
    caller: str,
    credential: tuple[str, str],
    workdir: Path,
    name: str,
    expect: int | None = None,
    seconds: float = 1,
    timeout: float = 30,
) -> subprocess.CompletedProcess[bytes]:
    """The agent dials ``destination`` presenting ``caller``. With ``expect``,
    the call must end with that final answer; without, it must be answered,
    last ``seconds`` and be hung up by the agent."""
    username, password = credential
    args = ["sipp", edge.address, "-s", destination, "-i", "127.0.0.1", "-p", str(free_port())]
    args += ["-au", username, "-ap", password, "-m", "1", "-nostdin"]
    args += ["-timeout", f"{int(timeout)}s", "-timeout_error"]
    args += ["-trace_msg", "-message_file", str(workdir / f"{name}-messages.log")]
    scenario = workdir / f"{name}.xml"
    if expect is None:
        scenario.write_text(AGENT_ANSWERED.replace("{caller}", caller))
        args += ["-d", str(int(seconds * 1000))]
    else:
        text = AGENT_REFUSED.replace("{caller}", caller).replace("{code}", str(expect))
        scenario.write_text(text)
    args += ["-sf", str(scenario)]
    return subprocess.run(args, cwd=workdir, capture_output=True, timeout=timeout + 30)


def last_reply(workdir: Path, name: str) -> str:
    """The last SIP message the agent received (the edge's final answer)."""
    log = (workdir / f"{name}-messages.log").read_text(errors="replace")
    received = re.split(r"-{10,} [^\n]*\n(?=UDP message received)", log)
    return received[-1]


def received_invite(workdir: Path, name: str) -> str:
    """The INVITE a trunk (a sipp UAS) received."""
    log = (workdir / f"{name}-messages.log").read_text(errors="replace")
    start = log.index("INVITE sip:")
    return log[start : log.index("\n\n", start)]


def header(message: str, name: str) -> str:
    found = re.search(rf"^{name}:\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    assert found, f"no {name} in {message}"
    return found.group(1).strip()


class Setup:
    """A partner's tenant with an agent that has a 501 number assigned outbound
    and a SIP credential."""

    def __init__(self, client: TestClient, partner: Acct, tenant: Acct) -> None:
        self.client, self.partner, self.tenant = client, partner, tenant
        agent = client.post(
            "/agents", json={"tenant_id": tenant.id, "name": "Dialer"}, headers=partner.headers
        )
        assert agent.status_code == 201, agent.text
        self.agent_id: str = agent.json()["data"]["id"]
        found = search_numbers(client, partner, area_code="501", page_size=2)
        bought = buy(client, partner, *[f["phone_number"] for f in found])["data"]
        (self.number, self.number_id), (self.other, _) = [
            (n["phone_number"], n["id"]) for n in bought
        ]
        assigned = client.post(
            "/telephony/numbers/assign",
            json={
                "number_id": self.number_id,
                "agent_id": self.agent_id,
                "assignment_type": "outbound",
            },
            headers=partner.headers,
        )
        assert assigned.status_code == 200, assigned.text
        made = client.post(f"/agents/{self.agent_id}/sip-credential", headers=tenant.headers)
        assert made.status_code == 201, made.text
        self.credential = (made.json()["data"]["username"], made.json()["data"]["password"])


@pytest.fixture
def setup(
    client: TestClient, make_partner: Callable[..., Acct], make_tenant: Callable[..., Acct]
) -> Setup:
    partner = make_partner("Dial Co", balance="100.00")
    tenant = make_tenant("Dental", partner_id=partner.id)
    return Setup(client, partner, tenant)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()


def trunk(
    db: Database,
    workdir: Path,
    name: str,
    processes: list[subprocess.Popen[bytes]],
    cost: str,
    scenario: str | None = None,
    emergency: bool = False,
    calls: int = 1,
    username: str | None = None,
    password: str | None = None,
) -> subprocess.Popen[bytes]:
    """A carrier trunk: a sipp UAS on loopback (``calls`` calls, then it exits),
    added as an outbound trunk (with digest credentials if given)."""
    if scenario is None:
        process, port = sipp_uas(workdir, name, calls=calls)
    else:
        process, port = sipp_uas(workdir, name, scenario, calls=calls)
    processes.append(process)
    with db.session() as session:
        outbound.add_trunk(
            session,
            name,
            f"127.0.0.1:{port}",
            prefix="" if emergency else "1",
            cost=Decimal(cost),
            emergency=emergency,
            username=username,
            password=password,
        )
    return process


def test_an_agents_call_reaches_the_trunk_with_its_number_and_refusals_say_why(
    client: TestClient,
    setup: Setup,
    database_url: str,
    db: Database,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    carrier = trunk(db, tmp_path, "carrier", processes, cost="0.004", calls=2)
    # The operator's rate deck: Arkansas (+1 501) dearer than the rest of +1.
    with db.session() as session:
        outbound_rates.replace_rates(
            session, outbound_rates.read_csv("prefix,rate\n1,0.0100\n1501,0.0600\n")
        )
    with (
        didhub_server(database_url, tmp_path) as server,
        kamailio(server.url, tmp_path) as edge,
    ):
        # Answered: the trunk got the call with the agent's number in From and
        # P-Asserted-Identity (the agent's display name dropped).
        call = agent_call(
            edge, DESTINATION, setup.number, setup.credential, tmp_path, "call", seconds=2
        )
        assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        invite = received_invite(tmp_path, "carrier")
        assert invite.startswith(f"INVITE sip:{DESTINATION.lstrip('+')}@127.0.0.1:")
        number = re.escape(setup.number)
        assert re.fullmatch(rf"<sip:{number}@didhub>;tag=\S+", header(invite, "From"))
        assert header(invite, "P-Asserted-Identity") == f"<sip:{setup.number}@didhub>"
        # The agent's credentials stay at the edge.
        assert "Proxy-Authorization" not in invite

        # A wrong password: 403, and nothing reaches a trunk.
        wrong = (setup.credential[0], "not-the-password")
        call = agent_call(edge, DESTINATION, setup.number, wrong, tmp_path, "wrong", expect=403)
        assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        assert "wrong password" in header(last_reply(tmp_path, "wrong"), "Warning")
        # A username didhub doesn't know: 403.
        nobody = ("nobody", "whatever")
        call = agent_call(edge, DESTINATION, setup.number, nobody, tmp_path, "nobody", expect=403)
        assert call.returncode == 0, call.stdout[-2000:]

        # Presenting a number not assigned to it: 403 with the reason.
        call = agent_call(
            edge, DESTINATION, setup.other, setup.credential, tmp_path, "other", expect=403
        )
        assert call.returncode == 0, call.stdout[-2000:]
        warning = header(last_reply(tmp_path, "other"), "Warning")
        assert warning.startswith('399 didhub "') and "not a number assigned outbound" in warning

        # International is off for a US account.
        call = agent_call(edge, UK, setup.number, setup.credential, tmp_path, "uk", expect=403)
        assert call.returncode == 0, call.stdout[-2000:]
        assert "calls outside US" in header(last_reply(tmp_path, "uk"), "Warning")

        # The answered call is billed to the caller's number, outbound, at the
        # destination's rate: 2-3 s is one 6-second increment at 0.0600/min.
        calls = wait_for_calls(client, setup.partner, "outbound")
        log = edge.log.read_text(errors="replace")
        assert "usage report" not in log, log[-3000:]
        assert len(calls) == 1, calls
        record = calls[0]
        assert record["phone_number"] == setup.number and record["direction"] == "outbound"
        assert record["destination"] == DESTINATION
        assert 2 <= record["duration_seconds"] <= 3 and record["billable_seconds"] == 6
        assert Decimal(record["charge"]) == Decimal("0.0060")

        # A daily spend limit the day's calls have reached: refused, with why.
        limited = client.patch(
            "/outbound/settings", json={"daily_spend_limit": "0.01"}, headers=setup.tenant.headers
        )
        assert limited.status_code == 200, limited.text
        call = agent_call(
            edge, DESTINATION, setup.number, setup.credential, tmp_path, "second", seconds=3
        )
        assert call.returncode == 0, call.stdout[-2000:]
        assert carrier.wait(timeout=20) == 0  # its two calls done
        assert len(wait_for_calls(client, setup.partner, "outbound", count=2)) == 2
        call = agent_call(
            edge, DESTINATION, setup.number, setup.credential, tmp_path, "spent", expect=403
        )
        assert call.returncode == 0, call.stdout[-2000:]
        assert "daily outbound limit" in header(last_reply(tmp_path, "spent"), "Warning")


def wait_for_calls(
    client: TestClient, acct: Acct, direction: str, wait: float = 10, count: int = 1
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    while True:
        answer = client.get("/billing/calls", params={"direction": direction}, headers=acct.headers)
        assert answer.status_code == 200, answer.text
        calls: list[dict[str, Any]] = answer.json()["data"]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.2)


def test_a_silent_or_503_trunk_fails_over_and_911_goes_out_without_funds(
    client: TestClient,
    setup: Setup,
    settings: Settings,
    database_url: str,
    db: Database,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    # The cheapest trunk doesn't answer at all (nothing listens there), the next
    # one is down (503), the third answers.
    with db.session() as session:
        outbound.add_trunk(session, "silent", f"127.0.0.1:{free_port()}", prefix="1")
    down = trunk(db, tmp_path, "down", processes, cost="0.001", scenario=TRUNK_503)
    backup = trunk(db, tmp_path, "backup", processes, cost="0.009")
    emergency = trunk(db, tmp_path, "e911", processes, cost="0", emergency=True)
    # The agent's number has the tenant's E911 address: a 911 call presents it
    # (the number a dispatcher can locate), whatever the agent put in From.
    address = setup.client.post(
        "/e911/addresses",
        json={**ADDRESS, "tenant_id": setup.tenant.id},
        headers=setup.partner.headers,
    )
    assert address.status_code == 201, address.text
    e911_number = setup.number
    attached = client.put(
        f"/telephony/numbers/{setup.number_id}/e911",
        json={"address_id": address.json()["data"]["id"]},
        headers=setup.tenant.headers,
    )
    assert attached.status_code == 200, attached.text
    receiver = Receiver()
    hook = client.post(
        "/webhooks",
        json={"url": receiver.url, "events": ["e911.call_placed"]},
        headers=setup.partner.headers,
    )
    assert hook.status_code == 201, hook.text
    try:
        with (
            didhub_server(database_url, tmp_path) as server,
            kamailio(server.url, tmp_path) as edge,
        ):
            call = agent_call(
                edge, DESTINATION, setup.number, setup.credential, tmp_path, "failover"
            )
            assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
            assert down.wait(timeout=20) == 0 and backup.wait(timeout=20) == 0
            tried = edge.log.read_text(errors="replace")
            assert "trunk failed (408)" in tried and "trunk failed (503)" in tried, tried[-3000:]
            assert received_invite(tmp_path, "down").startswith("INVITE sip:15015550123@")
            assert header(received_invite(tmp_path, "backup"), "P-Asserted-Identity") == (
                f"<sip:{setup.number}@didhub>"
            )

            # The account's wallet emptied: a call is 402, with the reason.
            with db.session() as session:
                payer = setup.partner.id
                balance = ledger.wallet_balance(session, payer, settings.currency)
                ledger.transfer(
                    session,
                    kind="test",
                    description="spent elsewhere",
                    debit=ledger.wallet_id(payer, settings.currency),
                    credit=ledger.ensure_platform_book(session, "revenue", settings.currency),
                    amount=balance,
                )
            call = agent_call(
                edge, DESTINATION, setup.number, setup.credential, tmp_path, "broke", expect=402
            )
            assert call.returncode == 0, call.stdout[-2000:]
            assert "no funds" in header(last_reply(tmp_path, "broke"), "Warning")

            # 911 with a wrong password: refused, and no one is alarmed (the
            # front desk is told only of calls whose caller checked out).
            wrong = (setup.credential[0], "not-the-password")
            call = agent_call(edge, "911", setup.number, wrong, tmp_path, "911-wrong", expect=403)
            assert call.returncode == 0, call.stdout[-2000:]

            # 911 still goes out, to the emergency trunk, as the E911 number,
            # even presenting a number that isn't the agent's.
            call = agent_call(edge, "911", setup.other, setup.credential, tmp_path, "911")
            assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
            assert emergency.wait(timeout=20) == 0
            invite = received_invite(tmp_path, "e911")
            assert invite.startswith("INVITE sip:911@127.0.0.1:")
            assert header(invite, "P-Asserted-Identity") == f"<sip:{e911_number}@didhub>"
            assert f"<sip:{e911_number}@didhub>" in header(invite, "From")

        # The front desk hears of it: the e911.call_placed webhook.
        delivery.deliver_due(db, allow_private=True)
        placed = [r.event for r in receiver.received if r.type == "e911.call_placed"]
        assert len(placed) == 1, [r.type for r in receiver.received]
        assert placed[0]["data"]["calling_number"] == e911_number
        assert placed[0]["data"]["agent_id"] == setup.agent_id
        # The address as provisioned (validated: "123 N MAIN ST").
        street = address.json()["data"]["street"]
        assert placed[0]["data"]["dispatchable_address"]["street"] == street
    finally:
        receiver.close()


def test_a_call_over_the_accounts_concurrent_limit_is_busy_until_one_ends(
    client: TestClient,
    setup: Setup,
    database_url: str,
    db: Database,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    carrier = trunk(db, tmp_path, "carrier", processes, cost="0.004", calls=2)
    limited = client.patch(
        "/outbound/settings", json={"max_concurrent_calls": 1}, headers=setup.tenant.headers
    )
    assert limited.status_code == 200, limited.text
    with (
        didhub_server(database_url, tmp_path) as server,
        kamailio(server.url, tmp_path) as edge,
    ):
        first: list[subprocess.CompletedProcess[bytes]] = []
        talking = threading.Thread(
            target=lambda: first.append(
                agent_call(
                    edge, DESTINATION, setup.number, setup.credential, tmp_path,
                    "first", seconds=6,
                )
            )
        )  # fmt: skip
        talking.start()
        messages = tmp_path / "carrier-messages.log"
        deadline = time.monotonic() + 15
        while not (messages.exists() and "ACK sip:" in messages.read_text()):
            assert time.monotonic() < deadline, "the first call was not answered"
            time.sleep(0.1)
        # The account's one call is in progress: the second is busy.
        call = agent_call(
            edge, DESTINATION, setup.number, setup.credential, tmp_path, "second", expect=486
        )
        assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        warning = header(last_reply(tmp_path, "second"), "Warning")
        assert "1 calls in progress" in warning, warning
        talking.join(timeout=40)
        assert first and first[0].returncode == 0, first and first[0].stdout[-2000:]
        # The first call ended: its place is free again.
        call = agent_call(edge, DESTINATION, setup.number, setup.credential, tmp_path, "third")
        assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        assert carrier.wait(timeout=20) == 0


def test_a_trunk_that_challenges_gets_its_credentials_and_one_refusing_them_fails_over(
    client: TestClient,
    setup: Setup,
    database_url: str,
    db: Database,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    # The cheapest trunk refuses the credentials it was given (it challenges
    # again); the next checks its own and takes the call.
    refusing = trunk(
        db, tmp_path, "refusing", processes, cost="0.001", scenario=TRUNK_REFUSING_DIGEST,
        username="edge-old", password="rotated-away",
    )  # fmt: skip
    checking = trunk(
        db, tmp_path, "checking", processes, cost="0.002",
        scenario=checking_digest("didhub-edge", "s3cret:Pa55"),
        username="didhub-edge", password="s3cret:Pa55",
    )  # fmt: skip
    log = call_over_trunks(database_url, tmp_path, setup, "authed", refusing, checking)
    assert "answered as edge-old" in log and "trunk failed (407)" in log, log[-3000:]
    assert "answered as didhub-edge" in log, log[-3000:]
    messages = (tmp_path / "checking-messages.log").read_text(errors="replace")
    answered = first_line(messages, "Authorization: Digest")
    assert 'username="didhub-edge"' in answered and 'realm="carrier.example"' in answered
    assert "s3cret" not in messages  # a digest, not the password
    # The caller ID still rode along on the authenticated INVITE.
    second = messages[messages.rindex("INVITE sip:") :]
    assert header(second, "P-Asserted-Identity") == f"<sip:{setup.number}@didhub>"


def test_a_proxy_challenge_is_answered_and_a_trunk_without_credentials_fails_over(
    client: TestClient,
    setup: Setup,
    database_url: str,
    db: Database,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    # The cheapest trunk challenges, but didhub has no credentials for it (IP
    # auth configured, the carrier wants digest): the next trunk. That one
    # challenges with 407 Proxy-Authenticate and takes the answered INVITE.
    challenging = trunk(
        db, tmp_path, "challenging", processes, cost="0.001", scenario=TRUNK_CHALLENGING
    )
    checking = trunk(
        db, tmp_path, "proxy", processes, cost="0.002",
        scenario=TRUNK_PROXY_CHALLENGING,
        username="edge-7", password="pr0xy-Pass",
    )  # fmt: skip
    log = call_over_trunks(database_url, tmp_path, setup, "proxied", challenging, checking)
    assert "trunk failed (407)" in log and log.count("answered as") == 1, log[-3000:]
    assert "answered as edge-7" in log, log[-3000:]
    messages = (tmp_path / "proxy-messages.log").read_text(errors="replace")
    answered = first_line(messages, "Proxy-Authorization: Digest")
    assert 'username="edge-7"' in answered and 'realm="carrier.example"' in answered
    assert digest_ok(answered, "INVITE", "pr0xy-Pass")
    assert not digest_ok(answered, "INVITE", "another-Pass")
    assert "pr0xy-Pass" not in messages
