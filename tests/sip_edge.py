"""Running the real SIP edge for tests: ``didhub serve``, Kamailio with
``deploy/kamailio/kamailio.cfg``, and sipp as the carrier (UAC) and the agents
(UAS), all on loopback ports chosen at run time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from didhub.edge import options

ROOT = Path(__file__).resolve().parent.parent
KAMAILIO_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
DIDHUB = str(Path(sys.executable).parent / "didhub")


def require_sip_tools() -> None:
    """Skip without Kamailio and sipp, unless CI said they must be there."""
    missing = [tool for tool in ("kamailio", "sipp") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("DIDHUB_REQUIRE_SIP_EDGE") == "1":
            pytest.fail(f"{', '.join(missing)} not installed (apt-get install kamailio sip-tester)")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install kamailio sip-tester)")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Didhub:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@contextmanager
def didhub_server(
    database_url: str, workdir: Path, serve_args: tuple[str, ...] = (), **env: str
) -> Iterator[Didhub]:
    port = free_port(socket.SOCK_STREAM)
    log = open(workdir / "didhub.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [DIDHUB, "serve", "--port", str(port), *serve_args],
        env={
            **os.environ,
            "DIDHUB_DATABASE_URL": database_url,
            "DIDHUB_SWEEP_SECONDS": "0",
            "DIDHUB_WEBHOOK_SECONDS": "0",
            **env,
        },
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Didhub(f"http://127.0.0.1:{port}", process)
    try:
        wait_for(
            lambda: httpx.get(f"{server.url}/health", timeout=1).status_code == 200,
            30,
            "didhub serve",
        )
        yield server
    finally:
        server.stop()
        log.close()


@dataclass
class Edge:
    address: str  # host:port of Kamailio's UDP listener
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def kamailio(didhub_url: str, workdir: Path, *defines: str) -> Iterator[Edge]:
    port = free_port()
    log = workdir / "kamailio.log"
    out = open(log, "wb")  # noqa: SIM115
    args = [
        "kamailio",
        "-f",
        str(KAMAILIO_CFG),
        "-DD",
        "-E",
        "-l",
        f"udp:127.0.0.1:{port}",
        "-P",
        str(workdir / "kamailio.pid"),
        "-w",
        str(workdir),
        "-A",
        f'DIDHUB_URL="{didhub_url}"',
    ]
    for define in defines:
        args += ["-A", define]
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    edge = Edge(f"127.0.0.1:{port}", process, log)
    try:
        wait_for(lambda: b"INFO" in log.read_bytes() or process.poll() is not None, 10, "kamailio")
        assert process.poll() is None, log.read_text(errors="replace")
        _wait_options(edge)
        yield edge
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        out.close()


def _wait_options(edge: Edge) -> None:
    """Kamailio answers SIP OPTIONS once its workers are up."""

    def answered() -> bool:
        answer = options(edge.address, None, timeout=0.5)
        return answer is not None and answer.code == 200

    wait_for(answered, 15, "kamailio to answer OPTIONS")


PHONE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="an agent's phone: rings, answers, keeps the edge's Record-Route">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
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
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
"""


# The phone answers, then vanishes (power cut, network gone): no BYE, and
# nothing answers at its address any more.
PHONE_THEN_GONE = PHONE[: PHONE.index('  <recv request="BYE"/>')] + "</scenario>\n"

# Answering the edge's keepalive (an in-dialog OPTIONS): still in the call.
ANSWER_KEEPALIVE = """  <recv request="OPTIONS"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
"""

# The phone answers one keepalive during the call, then gets the carrier's BYE.
PHONE_ANSWERING_KEEPALIVE = PHONE.replace(
    '  <recv request="BYE"/>', ANSWER_KEEPALIVE + '  <recv request="BYE"/>'
)


def sipp_uas(
    workdir: Path, name: str, scenario_text: str = PHONE
) -> tuple[subprocess.Popen[bytes], int]:
    """An agent's phone: answers one call, waits for the BYE, exits 0."""
    port = free_port()
    scenario = workdir / f"{name}.xml"
    scenario.write_text(scenario_text)
    process = subprocess.Popen(
        [
            "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1",
            "-nostdin", "-trace_msg", "-message_file", str(workdir / f"{name}-messages.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )  # fmt: skip
    return process, port


EXPECT_FINAL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="INVITE expecting {code}">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: carrier <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:carrier@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="{code}"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: carrier <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
"""


ANSWERED_CALL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answered call, following the Record-Route set like a carrier">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: carrier <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:carrier@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=carrier 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: carrier <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
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
From: carrier <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


# The carrier's side of a call that is answered and then lost: no BYE ever.
ANSWERED_THEN_GONE = ANSWERED_CALL[: ANSWERED_CALL.index("  <pause/>")] + "</scenario>\n"

# The carrier answers the edge's first keepalive, then hangs up 2 s later (the
# phone gets its keepalive at the same moment).
ANSWERED_UNTIL_A_KEEPALIVE = ANSWERED_CALL.replace(
    "  <pause/>", ANSWER_KEEPALIVE + '  <pause milliseconds="2000"/>'
)


def sipp_call(
    edge: Edge,
    number: str,
    workdir: Path,
    name: str,
    expect: int | None = None,
    seconds: float = 0,
    timeout: float = 30,
    scenario_text: str = ANSWERED_CALL,
) -> subprocess.CompletedProcess[bytes]:
    """The carrier calls ``number`` through the edge. With ``expect``, the call
    must end with that final response; without, it must be answered, last
    ``seconds`` and be hung up with a BYE (or go as ``scenario_text`` says)."""
    args = ["sipp", edge.address, "-s", number, "-i", "127.0.0.1", "-p", str(free_port())]
    args += ["-m", "1", "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error"]
    args += ["-trace_msg", "-message_file", str(workdir / f"{name}-messages.log")]
    scenario = workdir / f"{name}.xml"
    if expect is None:
        scenario.write_text(scenario_text)
        args += ["-d", str(int(seconds * 1000))]
    else:
        scenario.write_text(EXPECT_FINAL.format(code=expect))
    args += ["-sf", str(scenario)]
    return subprocess.run(args, cwd=workdir, capture_output=True, timeout=timeout + 30)
