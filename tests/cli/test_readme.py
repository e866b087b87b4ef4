"""Every shell block of README.md runs, in order, against a served instance
(issue 17, item 4): what a new user pastes into a terminal on a fresh clone.

How it runs: ``didhub serve`` is started in a fresh folder on a free port (the
README's first block would start it in the foreground), ``.venv`` in that
folder is this test run's virtualenv, and then each ```sh block of README.md
runs with bash (``set -euo pipefail``: an unset variable fails the block),
the variables one block exports carried into the next. A block added to the
README later is run the same way, with nothing to change here.

The only rewrites, the obvious ones:
- the install lines (``python3 -m venv .venv && .venv/bin/pip install …``) are
  dropped: ``.venv`` is already installed;
- the foreground ``.venv/bin/didhub serve`` is dropped (the server runs already),
  and ``127.0.0.1:8000`` becomes the server's port;
- ``.venv/bin/pytest`` (the "Run the tests" block) is not run: it is this suite.
A block right after a ``<!-- readme-test: skip (why) -->`` line is not run (it
needs something a fresh clone can't have, such as a carrier account).

Besides exit code 0, every block's output must hold no didhub error answer
(``"error": {…}``), and the walk-through's variables must look right. One
allowance for machines without DNS (CI's sandbox): a webhook URL whose host
can't be resolved is refused there, and only that answer is accepted then."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from didhub.db import Database

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # this run's virtualenv
BLOCK = re.compile(
    r"(?:<!-- readme-test: skip \((?P<why>[^)]+)\) -->\n)?```sh\n(?P<body>.*?)```", re.S
)
PG_URL = os.environ.get("DIDHUB_DATABASE_URL", "")


@dataclass(frozen=True)
class Block:
    line: int
    body: str
    skip: str | None


def readme_blocks() -> list[Block]:
    readme = (ROOT / "README.md").read_text()
    return [
        Block(readme[: m.start("body")].count("\n") + 1, m.group("body"), m.group("why"))
        for m in BLOCK.finditer(readme)
    ]


def rewrite(body: str, port: int) -> str:
    body = re.sub(r"python3 -m venv \.venv && \.venv/bin/pip install [^&\n]*(?:&& )?", "", body)
    body = re.sub(r"(?m)^\s*\.venv/bin/didhub serve\s*$", "", body)
    body = re.sub(r"(?m)^\s*\.venv/bin/pytest\b.*$", "", body)
    return body.replace("127.0.0.1:8000", f"127.0.0.1:{port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def database() -> Iterator[str | None]:
    """None: the embedded SQLite file in the folder. On PostgreSQL a database
    of its own, which doesn't exist yet (``didhub migrate`` creates it, as
    the README says), dropped afterwards."""
    if not PG_URL.startswith("postgresql"):
        yield None
        return
    name = f"{make_url(PG_URL).database}_readme_{uuid.uuid4().hex[:8]}"
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    admin = Database(PG_URL)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_every_readme_block_runs_in_order(tmp_path: Path, database: str | None) -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 10
    skipped = [b for b in blocks if b.skip]
    assert len(skipped) <= 1, "a README block nobody can run is an exception, not the rule"
    (tmp_path / ".venv").symlink_to(VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDHUB_")}
    env["DIDHUB_SANDBOX_SEED"] = "readme"
    if database is not None:
        env["DIDHUB_DATABASE_URL"] = database
        migrated = subprocess.run(
            [str(tmp_path / ".venv/bin/didhub"), "migrate"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "Created the PostgreSQL database" in migrated.stdout
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(tmp_path / ".venv/bin/didhub"), "serve", "--port", str(port), "--no-access-log"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, server, tmp_path / "serve.log")
        state = tmp_path / "exports.sh"
        state.write_text("")
        outputs: dict[str, str] = {}
        for block in blocks:
            if block.skip:
                continue
            script = (
                f"set -euo pipefail\nsource {shlex.quote(str(state))}\n"
                f"{rewrite(block.body, port)}\nexport -p > {shlex.quote(str(state))}\n"
            )
            ran = subprocess.run(
                ["bash", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                stdin=subprocess.DEVNULL,
            )
            where = f"README.md line {block.line}:\n{block.body}"
            assert ran.returncode == 0, f"{where}\nstdout: {ran.stdout}\nstderr: {ran.stderr}"
            output = ran.stdout
            if not _resolves("example.com"):
                output = output.replace(UNRESOLVED, "")
            assert '"error":' not in output, f"{where}\n{ran.stdout}"
            assert "Traceback" not in ran.stderr, f"{where}\n{ran.stderr}"
            outputs[block.body] = ran.stdout
        exported = _exports(state.read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # The walk-through's variables, as its text says they are.
    assert exported["API"] == f"http://127.0.0.1:{port}"
    assert exported["KEY"].startswith("dh_")
    assert re.fullmatch(r"\+1501\d{7}", exported["NUM"])
    for name, prefix in (("NUMBER_ID", "num_"), ("TENANT", "ten_"), ("AGENT", "agt_")):
        assert exported[name].startswith(prefix), name
    assert exported["ADDRESS_ID"] and exported["SPARE_ID"] != exported["NUMBER_ID"]
    # Key answers: Little Rock numbers found, the route to the agent, the release.
    search = next(o for b, o in outputs.items() if '"page_size": 5' in b)
    assert search.count('"locality":"Little Rock"') == 5, search
    route = next(o for b, o in outputs.items() if "/routing/inbound/" in b)
    assert exported["AGENT"] in route, route
    # The first outbound call's lookup: routed as $NUM over the trunk added.
    outbound = next(o for b, o in outputs.items() if "/routing/outbound" in b)
    assert '"action":"route"' in outbound and f'"caller_id":"{exported["NUM"]}"' in outbound
    assert "sip:15015550123@sip.carrier.example" in outbound, outbound
    assert exported["SIP_USER"].startswith("agt-"), exported["SIP_USER"]
    released = next(o for b, o in outputs.items() if "numbers/release" in b)
    assert '"status":"released"' in released, released


UNRESOLVED = (
    '{"error":{"code":"validation_error","message":"the host example.com could not be '
    'resolved; webhooks are sent to public addresses only","field":"url"}}'
)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _exports(dump: str) -> dict[str, str]:
    found = {}
    for line in dump.splitlines():
        m = re.match(r'declare -x (\w+)="(.*)"$', line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def _wait_for(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"didhub serve stopped: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"didhub serve didn't answer in 90 s: {log.read_text()}")
