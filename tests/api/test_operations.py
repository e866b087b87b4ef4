"""What an operator watches: /metrics (Prometheus, parsed with
prometheus_client's own parser), request ids in headers and log lines,
/health and /ready (database reachable, migrations current)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from conftest import Acct, buy, ledger_ok, search_numbers
from didhub import logs
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.jobs.registry import run_round
from didhub.migrate import head_revision, upgrade
from didhub.runtime import Job, Runtime, run_job
from webhook_receiver import Receiver

TOKEN = "operator-metrics-token-0123"
EDGE = {"Authorization": "Bearer test-edge-token-0123456789"}


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"metrics_token": SecretStr(TOKEN), "webhook_allow_private": True}
    )


@pytest.fixture
def ops(ops_settings: Settings, db: Database, carrier: SandboxCarrier) -> Iterator[TestClient]:
    with TestClient(create_app(ops_settings, db, carrier, access_log=True)) as client:
        yield client


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(
    sample: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sample.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_the_operator_token(ops: TestClient) -> None:
    assert ops.get("/metrics").status_code == 403  # not loopback, no token
    assert ops.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert ops.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_counters_move_for_a_purchase_search_lookup_job_and_webhook(
    ops: TestClient, partner: Acct, ops_settings: Settings, db: Database, carrier: SandboxCarrier
) -> None:
    receiver = Receiver()
    try:
        r = ops.post("/webhooks", json={"url": receiver.url}, headers=partner.headers)
        assert r.status_code == 201, r.text
        before = scrape(ops)
        found = search_numbers(ops, partner, area_code="501", page_size=1)[0]["phone_number"]
        number_id = buy(ops, partner, found)["data"][0]["id"]
        bad = ops.get(f"/telephony/numbers/{'num_nope'}", headers=partner.headers)
        assert bad.status_code == 404
        for _ in range(3):
            assert ops.get(f"/routing/inbound/{found}", headers=EDGE).status_code == 200
        rt = Runtime(db, ops.app.state.ctx.carrier, ops.app.state.ctx.gateway, ops_settings)  # type: ignore[attr-defined]
        assert run_round(rt, ["webhooks.deliver"]) == {"webhooks.deliver": None}

        def boom(_: Runtime) -> None:
            raise RuntimeError("broken on purpose")

        with pytest.raises(RuntimeError):
            run_job(Job("test.broken", boom, lambda s: 0, "fails"), rt)
        after = scrape(ops)
    finally:
        receiver.close()
    assert len(receiver.received) >= 1

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("didhub_purchases_total", outcome="completed") == 1
    search = {"method": "POST", "route": "/telephony/numbers/search", "status": "200"}
    assert moved("didhub_http_requests_total", **search) == 1
    # By route template, never by raw path.
    template = {"method": "GET", "route": "/telephony/numbers/{number_id}", "status": "404"}
    assert moved("didhub_http_requests_total", **template) == 1
    assert not any("num_nope" in str(labels) for _, labels in after)
    assert (
        moved(
            "didhub_http_request_duration_seconds_count",
            method="POST",
            route="/telephony/numbers/search",
        )
        == 1
    )
    assert (
        moved("didhub_carrier_calls_total", carrier="sandbox", operation="order", outcome="ok") == 1
    )
    assert (
        moved("didhub_carrier_calls_total", carrier="sandbox", operation="search", outcome="ok")
        >= 1
    )
    assert (
        moved("didhub_carrier_call_duration_seconds_count", carrier="sandbox", operation="order")
        == 1
    )
    lookups = moved("didhub_routing_cache_lookups_total", result="hit") + moved(
        "didhub_routing_cache_lookups_total", result="miss"
    )
    assert lookups == 3 and moved("didhub_routing_cache_lookups_total", result="miss") >= 1
    assert moved("didhub_job_runs_total", job="webhooks.deliver") == 1
    assert moved("didhub_job_failures_total", job="webhooks.deliver") == 0
    assert moved("didhub_job_runs_total", job="test.broken") == 1
    assert moved("didhub_job_failures_total", job="test.broken") == 1
    assert moved("didhub_webhook_delivery_attempts_total", outcome="delivered") == len(
        receiver.received
    )
    assert number_id


def test_a_failed_purchase_is_counted_by_its_error(ops: TestClient, make_partner: Any) -> None:
    poor = make_partner("Poor", balance="0")
    found = search_numbers(ops, poor, area_code="501", page_size=1)[0]["phone_number"]
    before = scrape(ops)
    r = ops.post("/telephony/numbers/purchase", json={"phone_number": found}, headers=poor.headers)
    assert r.status_code == 402
    after = scrape(ops)
    key = ("didhub_purchases_total", (("outcome", "insufficient_funds"),))
    assert after.get(key, 0) - before.get(key, 0) == 1


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("didhub")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_the_request_id_round_trips_and_is_in_every_line_of_its_request(
    ops_settings: Settings, carrier: SandboxCarrier, log_lines: io.StringIO
) -> None:
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with TestClient(create_app(ops_settings, down, carrier, access_log=True)) as client:
        r = client.get("/ready", headers={"X-Request-ID": "req-abc.123"})
        assert r.status_code == 503
        assert r.headers["x-request-id"] == "req-abc.123"
        lines = [ln for ln in _lines(log_lines) if ln["request_id"] == "req-abc.123"]
        assert {ln["logger"] for ln in lines} == {"didhub.api.observe", "didhub.access"}
        assert any("unreachable" in ln["message"] for ln in lines)  # written in the endpoint
        access = next(ln for ln in lines if ln["logger"] == "didhub.access")
        assert access["status"] == 503 and access["route"] == "/ready"
        assert all(ln["request_id"] in ("req-abc.123", "-") for ln in _lines(log_lines))
        # No id, or one that isn't a plain token: a new one, different each time.
        first = client.get("/health").headers["x-request-id"]
        second = client.get("/health", headers={"X-Request-ID": "bad id\twith space"}).headers[
            "x-request-id"
        ]
        assert len(first) == 32 and len(second) == 32 and first != second
        assert {
            ln["request_id"] for ln in _lines(log_lines) if ln["logger"] == "didhub.access"
        } >= {
            "req-abc.123",
            first,
            second,
        }
    down.dispose()


def test_text_logs_carry_the_request_id_too(log_lines: io.StringIO) -> None:
    record = logging.LogRecord("didhub.x", logging.INFO, __file__, 1, "hello", None, None)
    token = logs.request_id.set("rid-7")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id.reset(token)
    assert logs.formatter("text").format(record).endswith("[rid-7] hello")


def test_health_and_ready_on_a_current_database(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    r = client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {
            "database": {"ok": True},
            "migrations": {"ok": True, "revision": head_revision()},
        },
    }


def test_ready_is_503_when_the_database_is_unreachable(
    settings: Settings, carrier: SandboxCarrier
) -> None:
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    client = TestClient(create_app(settings, down, carrier))
    r = client.get("/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] is False and "unreachable" in checks["database"]["error"]
    assert checks["migrations"]["ok"] is False
    assert client.get("/health").status_code == 200  # the process itself is alive
    down.dispose()


@pytest.fixture
def behind_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same kind as the tests', migrated only to 0019."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'behind.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_behind"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_ready_is_503_while_migrations_are_behind(
    settings: Settings, carrier: SandboxCarrier, behind_url: str
) -> None:
    behind = Database(behind_url)
    upgrade(behind, "0019")
    client = TestClient(create_app(settings, behind, SandboxCarrier(behind, seed="t")))
    r = client.get("/ready")
    assert r.status_code == 503, r.text
    migrations = r.json()["checks"]["migrations"]
    assert migrations["ok"] is False and migrations["revision"] == "0019"
    assert migrations["expected"] == head_revision() and "didhub migrate" in migrations["error"]
    assert r.json()["checks"]["database"] == {"ok": True}
    upgrade(behind)
    assert client.get("/ready").status_code == 200
    behind.dispose()


def test_request_threads_run_more_requests_at_once_than_the_pool_has_connections(
    settings: Settings, database_url: str, make_partner: Any, _migrated: Database
) -> None:
    """``DIDHUB_REQUEST_THREADS`` (docs/operations.md, "Sizing"): a server runs
    that many requests at once whatever its pool, by default one per pooled
    connection. With one connection and six threads, twelve buyers at once
    all get their number, paid to the cent."""
    one = Database(database_url, pool_size=1, max_overflow=0)
    try:
        sized = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
        with TestClient(create_app(sized, one, SandboxCarrier(one))) as client:
            assert client.portal is not None
            assert client.portal.call(_threads) == 1
        threaded = sized.model_copy(update={"request_threads": 6})
        with TestClient(create_app(threaded, one, SandboxCarrier(one))) as client:
            assert client.portal is not None
            assert client.portal.call(_threads) == 6
            buyers = [make_partner(f"Buyer {n}") for n in range(12)]
            offered = search_numbers(client, buyers[0], area_code="501", page_size=12)
            with ThreadPoolExecutor(12) as pool:
                answers = list(
                    pool.map(
                        lambda pair: buy(client, pair[0], pair[1]["phone_number"]),
                        zip(buyers, offered, strict=True),
                    )
                )
            assert [a["data"][0]["status"] for a in answers] == ["active"] * 12
            for acct in buyers:
                wallet = client.get("/billing/wallet", headers=acct.headers).json()["data"]
                assert wallet["balance"] == "98.00"
        assert ledger_ok(one)
    finally:
        one.dispose()


def _threads() -> float:
    return anyio.to_thread.current_default_thread_limiter().total_tokens
