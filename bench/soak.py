"""Soak: money and number state under everything at once, on PostgreSQL.

Two ``didhub serve`` and one ``didhub worker`` share one database, with every
periodic job due each second. 64 concurrent clients buy numbers, top up,
assign them to tenants and agents, release them and post calls, while billing
runs for later dates (``didhub billing run --as-of``) make renewals, past-due,
suspension and release for non-payment happen during the soak. Afterwards it
checks what a reseller is promised:

* ``didhub ledger check`` is clean;
* no 5xx answer, no deadlock, no traceback in any server's or the worker's log;
* no account is suspended or past due that has the money for what it owes;
* no number has two owners (one live row per E.164);
* every job ran, and none ran twice for the same tick (a tick deferred again by a
  lagging worker skips itself, and is counted).

Run by hand, never as a unit test (it empties the database's public schema):

    .venv/bin/python bench/soak.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/didhub_soak
    .venv/bin/python bench/soak.py --seconds 30      # a short run

It prints a JSON report (operations by outcome, errors, jobs, the checks) and
exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import DIDHUB, free_port, fresh_database, wait_healthy  # noqa: E402

EDGE_TOKEN = "soak-edge-token-0123456789abcdef"
AREA_CODES = ["212", "312", "415", "501", "602", "713", "801", "919", "305", "404"]


@dataclass
class Account:
    id: str
    key: str
    tenants: list[str] = field(default_factory=list)
    agents: dict[str, str] = field(default_factory=dict)  # agent id -> tenant id
    numbers: dict[str, str] = field(default_factory=dict)  # number id -> e164
    thin: bool = False  # a thin wallet and a declining card: goes past due, is suspended

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    billing_runs: list[dict[str, Any]] = field(default_factory=list)

    def note(self, operation: str, response: httpx.Response | None, error: str = "") -> None:
        if response is None:
            self.outcomes[f"{operation} transport_error"] += 1
            self.errors.append(f"{operation}: {error}")
            return
        self.outcomes[f"{operation} {response.status_code}"] += 1
        if response.status_code >= 500:
            self.errors.append(f"{operation}: {response.status_code} {response.text[:300]}")


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [DIDHUB, *args, "--json"], env=env, check=True, capture_output=True, text=True
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def call(
    tally: Tally, client: httpx.AsyncClient, operation: str, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        tally.note(operation, None, repr(exc))
        return None
    tally.note(operation, response)
    return response


async def buyer(
    n: int,
    servers: list[str],
    accounts: list[Account],
    tally: Tally,
    deadline: float,
) -> None:
    rng = random.Random(n)
    # Idle connections are closed before the server's keep-alive (5 s) would
    # close them under a request in flight.
    limits = httpx.Limits(keepalive_expiry=1)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        while time.monotonic() < deadline:
            api = servers[rng.randrange(len(servers))]
            acct = accounts[rng.randrange(len(accounts))]
            h = acct.headers
            roll = rng.random()
            if roll < 0.30 or not acct.numbers:
                found = await call(
                    tally,
                    client,
                    "search",
                    "POST",
                    f"{api}/telephony/numbers/search",
                    json={"area_code": rng.choice(AREA_CODES), "page_size": 20},
                    headers=h,
                )
                if found is None or found.status_code != 200 or not found.json()["data"]:
                    continue
                pick = rng.choice(found.json()["data"])["phone_number"]
                bought = await call(
                    tally,
                    client,
                    "purchase",
                    "POST",
                    f"{api}/telephony/numbers/purchase",
                    json={"phone_number": pick},
                    headers={**h, "Idempotency-Key": f"soak-{n}-{time.monotonic_ns()}"},
                )
                if bought is not None and bought.status_code == 200:
                    data = bought.json()["data"]
                    acct.numbers[data["id"]] = data["phone_number"]
            elif roll < 0.45 and not acct.thin:
                await call(
                    tally,
                    client,
                    "topup",
                    "POST",
                    f"{api}/billing/wallet/topup",
                    json={"amount": rng.choice(["2.00", "5.00", "10.00"])},
                    headers=h,
                )
            elif roll < 0.65:
                number_id = rng.choice(list(acct.numbers))
                agent_id = rng.choice(list(acct.agents))
                tenant_id = acct.agents[agent_id]
                await call(
                    tally,
                    client,
                    "assign_tenant",
                    "PATCH",
                    f"{api}/telephony/numbers/{number_id}",
                    json={"tenant_id": tenant_id},
                    headers=h,
                )
                await call(
                    tally,
                    client,
                    "assign_agent",
                    "POST",
                    f"{api}/telephony/numbers/assign",
                    json={
                        "number_id": number_id,
                        "agent_id": agent_id,
                        "assignment_type": rng.choice(["inbound", "outbound"]),
                    },
                    headers=h,
                )
            elif roll < 0.75 and not acct.thin:  # thin accounts keep theirs until released
                number_id = rng.choice(list(acct.numbers))
                released = await call(
                    tally,
                    client,
                    "release",
                    "POST",
                    f"{api}/telephony/numbers/release",
                    json={"number_id": number_id},
                    headers={**h, "Idempotency-Key": f"release-{number_id}"},
                )
                if released is not None and released.status_code == 200:
                    acct.numbers.pop(number_id, None)
            else:
                e164s = rng.sample(list(acct.numbers.values()), min(3, len(acct.numbers)))
                started = datetime.now(UTC) - timedelta(minutes=rng.randrange(1, 120))
                await call(
                    tally,
                    client,
                    "usage",
                    "POST",
                    f"{api}/billing/usage",
                    json={
                        "records": [
                            {
                                "phone_number": e164,
                                "direction": rng.choice(["inbound", "outbound"]),
                                "started_at": started.isoformat(),
                                "duration_seconds": rng.randrange(0, 900),
                                "call_id": f"soak-{n}-{time.monotonic_ns()}-{i}",
                            }
                            for i, e164 in enumerate(e164s)
                        ]
                    },
                    headers={"Authorization": f"Bearer {EDGE_TOKEN}"},
                )


async def billing_runs(env: dict[str, str], tally: Tally, deadline: float, every: float) -> None:
    """Billing runs for ever later dates, beside the worker's own runs for today:
    renewals fall due, wallets run dry, past due turns into suspension and release."""
    as_of = date.today()
    while time.monotonic() + every < deadline:
        await asyncio.sleep(every)
        as_of += timedelta(days=8)
        process = await asyncio.create_subprocess_exec(
            DIDHUB,
            "billing",
            "run",
            "--as-of",
            as_of.isoformat(),
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, errors = await process.communicate()
        if process.returncode != 0:
            tally.errors.append(f"billing run {as_of}: {errors.decode()[-500:]}")
            continue
        report = json.loads(out)
        tally.billing_runs.append(
            {
                key: report[key] if isinstance(report[key], str | int) else len(report[key])
                for key in ("as_of", "renewals", "charged", "past_due", "suspended", "released")
            }
        )


def start(
    args: list[str], env: dict[str, str], workdir: Path, name: str
) -> subprocess.Popen[bytes]:
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(args, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def checks(url: str, env: dict[str, str], workdir: Path, last_as_of: date) -> dict[str, Any]:
    ledger = subprocess.run([DIDHUB, "ledger", "check", "--json"], env=env, capture_output=True)
    engine = create_engine(url)
    with engine.connect() as conn:
        two_owners = conn.execute(
            text(
                "SELECT e164, count(*) FROM phone_numbers WHERE status IN "
                "('provisioning', 'active', 'suspended', 'releasing') "
                "GROUP BY e164 HAVING count(*) > 1"
            )
        ).all()
        # An account not in good standing must owe more than its wallet holds:
        # a billable number due by the last billing date that it can't pay.
        unpaid_standing = conn.execute(
            text(
                "SELECT b.account_id, b.standing, w.balance, "
                "  (SELECT min(p.monthly_cost) FROM phone_numbers p "
                "   WHERE p.owner_id = b.account_id AND p.status IN ('active', 'suspended') "
                "   AND p.is_managed AND p.renews_on <= :as_of) AS owed "
                "FROM billing_profiles b "
                "JOIN ledger_accounts w ON w.owner_id = b.account_id AND w.kind = 'wallet' "
                "WHERE b.standing <> 'good'"
            ),
            {"as_of": last_as_of},
        ).all()
        jobs = conn.execute(
            text(
                "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ).all()
        # A tick a lagging worker deferred again is a second queue job that
        # skips itself (didhub/jobs/models.py, JobTick); its log line says so.
        deferred_again = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT task_name, args->>'timestamp' "
                "FROM procrastinate_jobs GROUP BY 1, 2 HAVING count(*) > 1) AS again"
            )
        ).scalar_one()
    engine.dispose()
    paid_up_but_not_good = [
        {"account": a, "standing": s, "balance": str(Decimal(bal) / 10000)}
        for a, s, bal, owed in unpaid_standing
        if owed is None or Decimal(bal) >= Decimal(owed)
    ]
    logs = {p.name: p.read_text(errors="replace") for p in workdir.glob("*.log")}
    bad_lines = [
        f"{name}: {line.strip()[:200]}"
        for name, body in logs.items()
        for line in body.splitlines()
        if "Traceback" in line
        or "deadlock" in line.lower()
        or " 500 " in line
        or " 503 " in line
        or "ERROR" in line
    ]
    return {
        "ledger_check_clean": ledger.returncode == 0,
        "ledger_check": ledger.stdout.decode()[-2000:],
        "numbers_with_two_owners": [row[0] for row in two_owners],
        "paid_up_but_not_in_good_standing": paid_up_but_not_good,
        "accounts_not_in_good_standing": len(unpaid_standing),
        "jobs": {f"{task} {status}": count for task, status, count in jobs},
        "job_ticks_deferred_again": deferred_again,
        "job_ticks_skipped_as_run": sum(
            body.count("already run by another job; skipped") for body in logs.values()
        ),
        "log_problems": bad_lines[:50],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/didhub_soak"
    )
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--partners", type=int, default=16)
    parser.add_argument("--billing-every", type=float, default=10)
    args = parser.parse_args()
    if args.database_url.startswith("sqlite"):
        raise SystemExit("the soak runs on PostgreSQL (several servers and a worker)")

    workdir, url = fresh_database(args.database_url)
    env = {
        **os.environ,
        "DIDHUB_DATABASE_URL": url,
        "DIDHUB_SWEEP_SECONDS": "1",
        "DIDHUB_WEBHOOK_SECONDS": "1",
        "DIDHUB_EDGE_TOKEN": EDGE_TOKEN,
        "DIDHUB_SANDBOX_SEED": "soak",
        "DIDHUB_SECRET_KEY": "soak-secret-key-0123456789abcdef0123",
    }
    subprocess.run([DIDHUB, "migrate"], env=env, check=True, capture_output=True)
    accounts: list[Account] = []
    for p in range(args.partners):
        # Some wallets are thin and their cards decline: those accounts go past due.
        thin = p % 4 == 0
        created = cli(
            env, "partner", "create", f"Soak {p}", "--balance", "3.00" if thin else "60.00"
        )
        acct = Account(created["id"], created["api_key"], thin=p % 4 == 0)
        accounts.append(acct)
    servers: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for name in ("serve-a", "serve-b"):
        port = free_port()
        servers.append(
            start([DIDHUB, "serve", "--port", str(port), "--no-access-log"], env, workdir, name)
        )
        urls.append(f"http://127.0.0.1:{port}")
    worker = start([DIDHUB, "worker"], env, workdir, "worker")
    try:
        for u in urls:
            wait_healthy(u)
        with httpx.Client(base_url=urls[0], timeout=30) as setup:
            for p, acct in enumerate(accounts):
                card = "tok_chargeDeclined" if p % 4 == 0 else "tok_visa"
                setup.put("/billing/card", json={"card_token": card}, headers=acct.headers)
                if p % 2:
                    setup.put(
                        "/billing/auto-recharge",
                        json={"enabled": True, "threshold": "5.00", "amount": "5.00"},
                        headers=acct.headers,
                    )
                for t in range(2):
                    tenant = setup.post(
                        "/tenants", json={"name": f"T{p}-{t}"}, headers=acct.headers
                    ).json()["data"]["id"]
                    acct.tenants.append(tenant)
                    agent = setup.post(
                        "/agents",
                        json={"tenant_id": tenant, "name": f"A{p}-{t}"},
                        headers=acct.headers,
                    ).json()["data"]["id"]
                    acct.agents[agent] = tenant
        tally = Tally()
        started = time.monotonic()
        deadline = started + args.seconds

        async def soak() -> None:
            await asyncio.gather(
                billing_runs(env, tally, deadline, args.billing_every),
                *(buyer(n, urls, accounts, tally, deadline) for n in range(args.clients)),
            )

        asyncio.run(soak())
        elapsed = time.monotonic() - started
        time.sleep(3)  # the jobs' last round
    finally:
        for process in [*servers, worker]:
            process.terminate()
        for process in [*servers, worker]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    last_as_of = (
        date.fromisoformat(tally.billing_runs[-1]["as_of"]) if tally.billing_runs else date.today()
    )
    report = {
        "seconds": round(elapsed, 1),
        "clients": args.clients,
        "operations": sum(tally.outcomes.values()),
        "operations_per_second": round(sum(tally.outcomes.values()) / elapsed, 1),
        "outcomes": dict(sorted(tally.outcomes.items())),
        "errors": tally.errors[:50],
        "billing_runs": tally.billing_runs,
        "exit_codes": {
            "serve-a": servers[0].returncode,
            "serve-b": servers[1].returncode,
            "worker": worker.returncode,
        },
        **checks(url, env, workdir, last_as_of),
        "logs": str(workdir),
    }
    print(json.dumps(report, indent=2, default=str))
    failed = (
        not report["ledger_check_clean"]
        or report["errors"]
        or report["numbers_with_two_owners"]
        or report["paid_up_but_not_in_good_standing"]
        or report["job_ticks_deferred_again"] > report["job_ticks_skipped_as_run"]
        or report["log_problems"]
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
