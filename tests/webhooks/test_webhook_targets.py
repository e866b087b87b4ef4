"""Webhooks go to public addresses only: refused at registration (POST and
PATCH) and again at delivery, after DNS resolution, connecting to the address
that was checked; what a failed delivery says names the kind of failure only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import Acct, buy, search_numbers
from didhub.api.app import create_app
from didhub.carriers.sandbox import SandboxCarrier
from didhub.config import Settings
from didhub.db import Database
from didhub.tenancy import Scope
from didhub.webhooks import service as webhooks
from didhub.webhooks.delivery import deliver_due
from didhub.webhooks.models import WebhookDelivery, WebhookEndpoint
from didhub.webhooks.targets import is_public, resolve
from webhook_receiver import Receiver

NOT_PUBLIC = [
    "http://127.0.0.1/hook",
    "http://localhost:5432/",
    "http://app.localhost/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0x7f.1/",
    "https://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
]

FAKE_DNS = {
    "hooks.example.com": "93.184.216.34",
    "internal.example.com": "10.1.2.3",
    "metadata.example.com": "169.254.169.254",
}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A resolver answering for a few names (this machine has no DNS); the
    answers may be changed by a test (a rebind). Other names fail to resolve."""
    answers = dict(FAKE_DNS)
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        if isinstance(host, str) and any(c.isalpha() for c in host) and host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def strict(settings: Settings, db: Database, carrier: SandboxCarrier) -> TestClient:
    """A server with the production rule (no private targets)."""
    production = settings.model_copy(update={"webhook_allow_private": False})
    return TestClient(create_app(production, db, carrier))


def _endpoints(client: TestClient, acct: Acct) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/webhooks", headers=acct.headers).json()["data"]
    return rows


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_registering_a_non_public_target_is_refused(
    strict: TestClient, partner: Acct, dns: dict[str, str], url: str
) -> None:
    r = strict.post("/webhooks", json={"url": url}, headers=partner.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "url" and "public addresses only" in error["message"]
    assert _endpoints(strict, partner) == []


def test_names_are_resolved_and_every_form_refused_by_post_and_patch(
    strict: TestClient, partner: Acct, make_tenant: Callable[..., Acct], dns: dict[str, str]
) -> None:
    tenant = make_tenant(partner_id=partner.id)
    made = strict.post(
        "/webhooks", json={"url": "https://hooks.example.com/didhub"}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    hook = made.json()["data"]["id"]
    for url, kind in (
        ("https://internal.example.com/x", "a private network address"),
        ("http://metadata.example.com/latest", "a link-local address"),
        ("http://[::ffff:127.0.0.1]:8000/", "a loopback address"),
        ("http://nowhere.invalid/", "could not be resolved"),
    ):
        r = strict.patch(f"/webhooks/{hook}", json={"url": url}, headers=tenant.headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == "url", r.text
        assert kind in r.json()["error"]["message"]
        refused = strict.post("/webhooks", json={"url": url}, headers=partner.headers)
        assert refused.status_code == 422
    assert [e["url"] for e in _endpoints(strict, tenant)] == ["https://hooks.example.com/didhub"]


def test_address_classes() -> None:
    assert is_public(resolve("93.184.216.34", 80)[0])
    assert is_public(resolve("2606:4700:4700::1111", 443)[0])
    for literal in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1", "::"):
        assert not is_public(resolve(literal, 80)[0]), literal
    assert [str(a) for a in resolve("2130706433", 80)] == ["127.0.0.1"]
    assert [str(a) for a in resolve("0x7f.1", 80)] == ["127.0.0.1"]


@pytest.fixture
def loopback_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _queue_delivery(client: TestClient, db: Database, acct: Acct, url: str) -> None:
    """An endpoint stored as a lab would have it (private targets allowed), and
    a purchase whose event is queued for it."""
    with db.session() as session:
        webhooks.create_endpoint(
            session, Scope(acct.id, "partner"), url, ["number.purchased"], allow_private=True
        )
    number = search_numbers(client, acct, area_code="501", page_size=1)[0]["phone_number"]
    buy(client, acct, number)


def _last(db: Database) -> WebhookDelivery:
    with db.session() as session:
        return session.scalars(select(WebhookDelivery)).one()


def test_delivery_checks_again_and_refuses_a_rebound_name(
    client: TestClient,
    db: Database,
    partner: Acct,
    dns: dict[str, str],
    loopback_receiver: Receiver,
) -> None:
    port = loopback_receiver.server.server_address[1]
    _queue_delivery(client, db, partner, f"http://hooks.example.com:{port}/didhub")
    dns["hooks.example.com"] = "127.0.0.1"  # the name now points inside
    report = deliver_due(db)
    assert report.retrying == 1 and loopback_receiver.received == []
    delivery = _last(db)
    assert delivery.last_status_code is None
    assert delivery.last_error == "refused: the URL's host resolves to a loopback address"


def test_delivery_connects_to_the_address_it_checked(
    client: TestClient,
    db: Database,
    partner: Acct,
    dns: dict[str, str],
    loopback_receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name is resolved once per delivery, by the check; the connection
    goes to that address with the URL's name as Host, so a second answer (a
    rebind between check and connect) is never asked for."""
    port = loopback_receiver.server.server_address[1]
    dns["lab.example.com"] = "127.0.0.1"
    _queue_delivery(client, db, partner, f"http://lab.example.com:{port}/didhub")
    lookups: list[str] = []
    resolver = socket.getaddrinfo

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(str(host))
        return resolver(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    assert deliver_due(db, allow_private=True).delivered == 1
    assert lookups.count("lab.example.com") == 1
    assert loopback_receiver.received[0].headers["Host"] == f"lab.example.com:{port}"


def test_failures_say_the_kind_not_the_socket_error(
    client: TestClient, db: Database, partner: Acct
) -> None:
    """Where a lab allows private targets, a closed port and a server that
    doesn't speak HTTP (PostgreSQL, say) differ only by kind of failure; with
    the production rule both read as the same refusal, and neither is contacted."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen(4)
    contacted: list[bytes] = []

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = garbage.accept()
            except OSError:
                return
            with conn:
                contacted.append(conn.recv(65536))
                conn.sendall(b"\x00\x03postgres says hello\r\n\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        with db.session() as session:
            for port in (closed_port, garbage.getsockname()[1]):
                webhooks.create_endpoint(
                    session,
                    Scope(partner.id, "partner"),
                    f"http://127.0.0.1:{port}/",
                    ["number.purchased"],
                    description=str(port),
                    allow_private=True,
                )
        number = search_numbers(client, partner, area_code="501", page_size=1)[0]["phone_number"]
        buy(client, partner, number)

        def errors() -> dict[str, str | None]:
            with db.session() as session:
                return {
                    endpoint.description: delivery.last_error
                    for delivery, endpoint in session.execute(
                        select(WebhookDelivery, WebhookEndpoint).join(
                            WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
                        )
                    )
                }

        deliver_due(db, allow_private=True)
        assert errors() == {
            str(closed_port): "could not connect",
            str(garbage.getsockname()[1]): "the answer was not valid HTTP",
        }
        seen = len(contacted)
        with db.session() as session:
            for row in session.scalars(select(WebhookDelivery)):
                row.next_attempt_at = row.created_at
        deliver_due(db)
        refusal = "refused: the URL's host resolves to a loopback address"
        assert set(errors().values()) == {refusal}
        assert len(contacted) == seen
    finally:
        garbage.close()
