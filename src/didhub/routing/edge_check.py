"""``didhub edge check``: do the SIP edge and didhub agree?

The edge (deploy/kamailio/kamailio.cfg) answers SIP OPTIONS from its own
machine with what it would do: ``sip:didhub-health@edge`` says whether it
reaches didhub, ``sip:+1…@edge`` says how it would route a call to that DID
(reply code and an ``X-Didhub-Route: action uri`` header). This module sends
those probes and compares the answers with didhub's own routing decisions.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from didhub.config import Settings
from didhub.db import Database
from didhub.errors import NotFound, ValidationFailed
from didhub.numbers.lifecycle import ACTIVE, SUSPENDED
from didhub.numbers.models import PhoneNumber
from didhub.routing import service as routing

# Actions the edge relays: they need somewhere to relay to.
RELAYED = ("agent", "forward", "voicemail")


@dataclass(frozen=True)
class SipAnswer:
    code: int
    reason: str
    headers: dict[str, str]


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` or ``udp:host:port`` of the edge's UDP listener."""
    text = value.removeprefix("udp:")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationFailed("must be host:port, e.g. 127.0.0.1:5060", field="edge")
    return host, int(port)


def options_request(target: str, local: tuple[str, int], tag: str) -> bytes:
    """A SIP OPTIONS to ``target`` (``[user@]host:port``) from the UDP socket at
    ``local``; ``tag`` makes its branch, tags and Call-ID unique."""
    return (
        f"OPTIONS sip:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{tag};rport\r\n"
        f"From: <sip:edge-check@{local[0]}>;tag={tag}\r\n"
        f"To: <sip:{target}>\r\n"
        f"Call-ID: {tag}@didhub-edge-check\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def options(edge: str, user: str | None, timeout: float = 2.0) -> SipAnswer | None:
    """Send one SIP OPTIONS over UDP and wait for its final answer (None: no answer)."""
    host, port = parse_address(edge)
    target = f"{user}@{host}:{port}" if user else f"{host}:{port}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1" if host.startswith("127.") else "0.0.0.0", 0))
        request = options_request(target, sock.getsockname(), secrets.token_hex(8))
        deadline = time.monotonic() + timeout
        sock.sendto(request, (host, port))
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                return None
            answer = _parse(data)
            if answer is not None and answer.code >= 200:
                return answer
    return None


def _parse(data: str) -> SipAnswer | None:
    head, *lines = data.split("\r\n\r\n", 1)[0].split("\r\n")
    parts = head.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return SipAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


@dataclass
class NumberCheck:
    phone_number: str
    didhub: str  # what didhub says: "agent sip:…", "announcement", …
    edge: str  # what the edge says
    problem: str | None = None


@dataclass
class EdgeReport:
    edge: str
    edge_answers: bool = False
    edge_reaches_didhub: bool = False
    numbers: list[NumberCheck] = field(default_factory=list)
    unknown_number_not_found: bool = False

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.edge_answers:
            found.append(f"the edge at {self.edge} does not answer SIP OPTIONS")
        elif not self.edge_reaches_didhub:
            found.append("the edge cannot reach didhub (check its DIDHUB_URL and EDGE_TOKEN)")
        elif not self.unknown_number_not_found:
            found.append("the edge does not answer 404 for a number didhub doesn't hold")
        found += [f"{n.phone_number}: {n.problem}" for n in self.numbers if n.problem]
        return found


def _expected(session: Session, settings: Settings, e164: str) -> tuple[str, str | None]:
    try:
        route = routing.inbound(session, settings, e164)
    except NotFound:
        return "404", None
    if route.action in RELAYED and not route.sip_uri:
        missing = {
            "agent": "the agent has no SIP URI",
            "forward": "forwarding to a phone number needs DIDHUB_PSTN_GATEWAY",
            "voicemail": "voicemail needs DIDHUB_VOICEMAIL_URI",
        }[route.action]
        return route.action, f"{route.action}: {missing}; the edge answers 480"
    return f"{route.action} {route.sip_uri or ''}".strip(), None


def check(db: Database, settings: Settings, edge: str, sample: int = 20) -> EdgeReport:
    """Probe the edge and compare its routing with didhub's for up to ``sample``
    live numbers. The edge caches answers for a few seconds: run it again
    after a change if a number disagrees."""
    report = EdgeReport(edge)
    report.edge_answers = options(edge, None) is not None
    if not report.edge_answers:
        return report
    health = options(edge, "didhub-health")
    report.edge_reaches_didhub = health is not None and health.code == 200
    if not report.edge_reaches_didhub:
        return report
    unknown = options(edge, "+15125550199")  # a fictional 555-01xx number
    report.unknown_number_not_found = unknown is not None and unknown.code == 404
    # Short read-only sessions: a probe makes the edge ask didhub, which must
    # not wait behind a transaction held open here.
    with db.read_session() as session:
        numbers = list(
            session.scalars(
                select(PhoneNumber.e164)
                .where(PhoneNumber.status.in_((ACTIVE, SUSPENDED)))
                .order_by(PhoneNumber.e164)
                .limit(sample)
            )
        )
    for e164 in numbers:
        with db.read_session() as session:
            expected, problem = _expected(session, settings, e164)
        answer = options(edge, e164)
        if answer is None:
            said = "no answer"
        elif answer.code == 200:
            said = answer.headers.get("x-didhub-route", "").strip()
        else:
            said = str(answer.code)
        if problem is None and said != expected:
            problem = f"the edge says {said!r}, didhub says {expected!r}"
        report.numbers.append(NumberCheck(e164, expected, said, problem))
    return report
