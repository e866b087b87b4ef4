"""The SIP edge end to end: real SIP from sipp through Kamailio
(deploy/kamailio/kamailio.cfg), which asks a real ``didhub serve`` where each
call goes, relays it to the agent's sipp, and reports the finished call for
rating. Needs kamailio and sipp (``.ci/run`` installs them)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, search_numbers
from didhub.billing.models import UsageRecord
from didhub.db import Database
from didhub.numbers import lifecycle
from didhub.numbers.models import PhoneNumber
from sip_edge import (
    ANSWERED_THEN_GONE,
    ANSWERED_UNTIL_A_KEEPALIVE,
    DIDHUB,
    PHONE_ANSWERING_KEEPALIVE,
    PHONE_THEN_GONE,
    didhub_server,
    kamailio,
    require_sip_tools,
    sipp_call,
    sipp_uas,
)


@pytest.fixture(autouse=True)
def _sip_tools() -> None:
    require_sip_tools()


def _agent(client: TestClient, partner: Acct, tenant: Acct, name: str, uri: str) -> str:
    made = client.post(
        "/agents",
        json={"tenant_id": tenant.id, "name": name, "sip_uri": uri},
        headers=partner.headers,
    )
    assert made.status_code == 201, made.text
    agent_id: str = made.json()["data"]["id"]
    return agent_id


def _assign(client: TestClient, partner: Acct, number_id: str, agent_id: str) -> None:
    r = client.post(
        "/telephony/numbers/assign",
        json={"number_id": number_id, "agent_id": agent_id, "assignment_type": "inbound"},
        headers=partner.headers,
    )
    assert r.status_code == 200, r.text


def _numbers(client: TestClient, partner: Acct, **search: Any) -> list[dict[str, Any]]:
    found = search_numbers(client, partner, **search)
    bought = buy(client, partner, *[f["phone_number"] for f in found])
    numbers: list[dict[str, Any]] = bought["data"]
    return numbers


def test_calls_are_routed_by_kamailio_and_billed(
    client: TestClient,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
    database_url: str,
    db: Database,
    tmp_path: Path,
) -> None:
    partner = make_partner("Edge Co", balance="100.00")
    tenant = make_tenant("Clinic", partner_id=partner.id)
    local = _numbers(client, partner, area_code="512", page_size=4)
    toll_free = _numbers(client, partner, phone_number_type="toll-free", page_size=1)[0]
    routed, tenants, unassigned, unpaid = local
    # Suspended for non-payment, as the billing run does it.
    with db.session() as session:
        number = session.get_one(PhoneNumber, unpaid["id"])
        lifecycle.transition(session, number, lifecycle.SUSPENDED, None, reason="unpaid")
    # The tenant's own behaviour for its numbers that no agent answers: reject.
    r = client.patch(
        f"/telephony/numbers/{tenants['id']}",
        json={"tenant_id": tenant.id},
        headers=partner.headers,
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/tenants/{tenant.id}/settings",
        json={"unassigned": {"action": "reject"}},
        headers=partner.headers,
    )
    assert r.status_code == 200, r.text

    desk, desk_port = sipp_uas(tmp_path, "desk")
    line, line_port = sipp_uas(tmp_path, "line")
    try:
        _assign(client, partner, routed["id"], _agent(
            client, partner, tenant, "Front desk", f"sip:desk@127.0.0.1:{desk_port}"
        ))  # fmt: skip
        _assign(client, partner, toll_free["id"], _agent(
            client, partner, tenant, "Sales line", f"sip:sales@127.0.0.1:{line_port}"
        ))  # fmt: skip

        with (
            didhub_server(database_url, tmp_path) as server,
            kamailio(server.url, tmp_path) as edge,
        ):
            # An assigned DID reaches its agent's phone, which answers.
            call = sipp_call(edge, routed["phone_number"], tmp_path, "routed", seconds=1)
            assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
            assert desk.wait(timeout=20) == 0
            assert "INVITE sip:desk@127.0.0.1" in (tmp_path / "desk-messages.log").read_text()

            # A tenant's DID with no agent gets the tenant's behaviour: rejected.
            call = sipp_call(edge, tenants["phone_number"], tmp_path, "tenants", expect=603)
            assert call.returncode == 0, call.stdout[-2000:]

            # A DID with no tenant and no agent: the platform's announcement.
            call = sipp_call(edge, unassigned["phone_number"], tmp_path, "unassigned", expect=480)
            assert call.returncode == 0, call.stdout[-2000:]
            answer = (tmp_path / "unassigned-messages.log").read_text()
            assert "SIP/2.0 480" in answer and "isn't configured" in answer

            # A suspended number answers the suspension, as the billing rules say.
            call = sipp_call(edge, unpaid["phone_number"], tmp_path, "unpaid", expect=480)
            assert call.returncode == 0, call.stdout[-2000:]
            assert "temporarily unavailable" in (tmp_path / "unpaid-messages.log").read_text()

            # A number the platform doesn't hold: 404.
            call = sipp_call(edge, "+15125550123", tmp_path, "unknown", expect=404)
            assert call.returncode == 0, call.stdout[-2000:]

            # A 13-second call to the toll-free number is rated per minute:
            # 13 s → 18 s in 6-second increments at 0.0250/min = 0.0075 (the
            # edge counts whole seconds: 14 s is 18 s too).
            call = sipp_call(
                edge, toll_free["phone_number"], tmp_path, "long", seconds=13, timeout=60
            )
            assert call.returncode == 0, call.stdout[-2000:]
            assert line.wait(timeout=30) == 0
            record = _usage_for(db, toll_free["id"])
            assert record.direction == "inbound"
            assert 13 <= record.duration_seconds <= 14
            assert record.billable_seconds == 18 and record.amount == Decimal("0.0075")
            assert record.ledger_transaction_id is not None  # posted to the wallet

            # The operator's check: the edge answers, reaches didhub, and routes
            # every number as didhub does (the tenant's number: reject, …).
            checked = edge_check(database_url, edge.address)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            report = json.loads(checked.stdout)
            assert report["ok"] and report["edge_reaches_didhub"]
            said = {n["phone_number"]: n["edge"] for n in report["numbers"]}
            assert said[routed["phone_number"]] == f"agent sip:desk@127.0.0.1:{desk_port}"
            assert said[tenants["phone_number"]] == "reject"

            # didhub stopped: the edge answers 503 at once, it doesn't hang (a
            # number the edge has not looked up yet, so nothing is cached).
            server.stop()
            started = time.monotonic()
            call = sipp_call(edge, "+15125550142", tmp_path, "down", expect=503)
            assert call.returncode == 0, call.stdout[-2000:]
            assert time.monotonic() - started < 5
            checked = edge_check(database_url, edge.address)
            assert checked.returncode == 1
            assert "cannot reach didhub" in json.loads(checked.stdout)["problems"][0]
    finally:
        for phone in (desk, line):
            if phone.poll() is None:
                phone.kill()


def edge_check(database_url: str, address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIDHUB, "edge", "check", "--edge", address, "--json"],
        env={**os.environ, "DIDHUB_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _usage_for(db: Database, number_id: str, wait: float = 10) -> UsageRecord:
    deadline = time.monotonic() + wait
    while True:
        with db.session() as session:
            found = session.scalars(
                select(UsageRecord).where(UsageRecord.number_id == number_id)
            ).first()
        if found is not None or time.monotonic() > deadline:
            assert found is not None, "the edge reported no usage for the call"
            return found
        time.sleep(0.2)


def test_repeat_calls_to_a_number_didhub_does_not_hold_are_404_without_cfg_errors(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """The second call is answered from the edge's routing cache (a cached 404):
    it must still be a 404, and the cfg must not fail on the cached value."""
    with (
        didhub_server(database_url, tmp_path) as server,
        kamailio(server.url, tmp_path) as edge,
    ):
        for attempt in ("first", "again"):
            call = sipp_call(edge, "+15125550177", tmp_path, f"unknown-{attempt}", expect=404)
            assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
        log = edge.log.read_text(errors="replace")
    # One lookup reached didhub; the repeat came from the cache.
    asked = [
        line
        for line in (tmp_path / "didhub.log").read_text().splitlines()
        if "/routing/inbound/" in line and "15125550177" in line
    ]
    assert len(asked) == 1, asked
    assert "out of range" not in log, log[-3000:]
    assert " ERROR: " not in log, log[-3000:]


def test_keepalives_end_a_call_whose_ends_vanished_and_bill_it_to_its_last_sign_of_life(
    client: TestClient,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
    database_url: str,
    db: Database,
    tmp_path: Path,
) -> None:
    """Two calls at once. In one, the carrier and the agent's phone both
    disappear right after the answer: no BYE ever reaches the edge. The edge's
    keepalives find it dead and end it within a minute or so (not at the 4-hour
    maximum), billed for the time it was known alive, not for how long that
    took. The other answers its keepalive and goes on until the carrier hangs
    up: it is billed for its real length."""
    partner = make_partner("Edge Co", balance="100.00")
    tenant = make_tenant("Clinic", partner_id=partner.id)
    dead, alive = _numbers(client, partner, phone_number_type="toll-free", page_size=2)
    gone_phone, gone_port = sipp_uas(tmp_path, "gone-phone", PHONE_THEN_GONE)
    live_phone, live_port = sipp_uas(tmp_path, "live-phone", PHONE_ANSWERING_KEEPALIVE)
    try:
        for number, port in ((dead, gone_port), (alive, live_port)):
            agent = _agent(client, partner, tenant, "Desk", f"sip:desk@127.0.0.1:{port}")
            _assign(client, partner, number["id"], agent)
        with (
            didhub_server(database_url, tmp_path) as server,
            # The shortest keepalive interval the dialog module takes.
            kamailio(server.url, tmp_path, "KEEPALIVE_SECONDS=30") as edge,
        ):
            live: list[subprocess.CompletedProcess[bytes]] = []
            talking = threading.Thread(
                target=lambda: live.append(
                    sipp_call(
                        edge, alive["phone_number"], tmp_path, "live", timeout=90,
                        scenario_text=ANSWERED_UNTIL_A_KEEPALIVE,
                    )
                )
            )  # fmt: skip
            talking.start()
            answered = time.monotonic()
            call = sipp_call(
                edge, dead["phone_number"], tmp_path, "gone", scenario_text=ANSWERED_THEN_GONE
            )
            assert call.returncode == 0, (call.stdout[-2000:], edge.log.read_text()[-3000:])
            assert gone_phone.wait(timeout=20) == 0
            # The first keepalive within 30-40 s, unanswered for 5 s, the call
            # ended 10 s later: well inside two minutes.
            lost = _usage_for(db, dead["id"], wait=120)
            ended_after = time.monotonic() - answered
            talking.join(timeout=120)
            assert live and live[0].returncode == 0, live and live[0].stdout[-2000:]
            assert live_phone.wait(timeout=20) == 0
            kept = _usage_for(db, alive["id"])
            log = edge.log.read_text(errors="replace")
        assert ended_after < 120
        assert "ended by the edge" in log, log[-3000:]
        # Nothing showed the lost call alive after its answer (it would have been
        # billed 4 hours without keepalives, or the minute the edge took to
        # notice without its last sign of life).
        assert lost.duration_seconds <= 2, lost.duration_seconds
        # The kept call lasted until its first keepalive (30-40 s), and 2 s more.
        assert 30 <= kept.duration_seconds <= 50, kept.duration_seconds
        assert kept.ledger_transaction_id is not None
    finally:
        for phone in (gone_phone, live_phone):
            if phone.poll() is None:
                phone.kill()
