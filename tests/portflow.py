"""Helpers: an order made ready to submit through the API, as a user would."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Acct
from didhub.config import Settings


@pytest.fixture(autouse=True)
def documents_in_tmp(settings: Settings, tmp_path: Path) -> None:
    """Porting tests keep their documents in the test's own folder."""
    settings.data_dir = str(tmp_path / "data")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class S3Server:
    """moto's S3-compatible server on 127.0.0.1 (a real HTTP server in a thread)."""

    endpoint_url: str
    bucket: str = "didhub-docs"

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test-key",
            aws_secret_access_key="test-secret",
        )

    def keys(self, prefix: str = "") -> list[str]:
        answer = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in answer.get("Contents", []))

    def configure(self, settings: Settings, prefix: str) -> None:
        from pydantic import SecretStr

        settings.document_store = "s3"
        settings.s3_bucket = self.bucket
        settings.s3_prefix = prefix
        settings.s3_endpoint_url = self.endpoint_url
        settings.s3_region = "us-east-1"
        settings.s3_access_key_id = SecretStr("test-key")
        settings.s3_secret_access_key = SecretStr("test-secret")
        settings.s3_timeout_seconds = 2.0


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 15
    while True:
        try:
            s3.client().create_bucket(Bucket=s3.bucket)
            break
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)
    yield s3
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The test runs once on each document store: the data folder, then S3."""
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        s3.configure(settings, f"t-{tmp_path.name}/")
    yield request.param


ADDRESS: dict[str, Any] = {
    "street": "123 North Main Street",
    "unit": "Suite 200",
    "city": "Little Rock",
    "state": "Arkansas",
    "postal_code": "72201-1234",
    "caller_name": "Acme Dental",
}
# 501: Sandbox Bell, 212: Sandbox Wireless (carriers/sandbox_porting.py).
BELL = "+15013720123"
WIRELESS = "+12123720146"
NOT_PORTABLE = "+15013720000"
PDF = b"%PDF-1.4\n% signed LOA\n"


def ready_order(
    client: TestClient, partner: Acct, tenant_id: str, numbers: list[str], **fields: Any
) -> dict[str, Any]:
    address = client.post(
        "/e911/addresses", json={**ADDRESS, "tenant_id": tenant_id}, headers=partner.headers
    )
    assert address.status_code == 201, address.text
    agent = client.post(
        "/agents",
        json={"tenant_id": tenant_id, "name": "Front desk", "sip_uri": "sip:desk@192.0.2.10"},
        headers=partner.headers,
    )
    assert agent.status_code == 201, agent.text
    body = {
        "tenant_id": tenant_id,
        "phone_numbers": numbers,
        "entity_name": "Acme Dental LLC",
        "authorized_person": "Dana Smith",
        "account_number": "ACCT-778899",
        "pin": "4321",
        "billing_phone_number": numbers[0],
        "e911_address_id": address.json()["data"]["id"],
        "agent_id": agent.json()["data"]["id"],
        "cnam": "ACME DENTAL",
        **fields,
    }
    created = client.post("/porting/orders", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text
    order: dict[str, Any] = created.json()["data"]
    for kind in ("loa", "bill"):
        up = client.post(
            f"/porting/orders/{order['id']}/documents",
            data={"kind": kind},
            files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
            headers=partner.headers,
        )
        assert up.status_code == 201, up.text
    return order


def foc_date(client: TestClient, acct: Acct, order_id: str) -> str:
    answer = client.get(f"/porting/orders/{order_id}/foc-dates", headers=acct.headers)
    assert answer.status_code == 200, answer.text
    dates: list[str] = answer.json()["data"]["foc_dates"]
    return dates[0]


def refresh(client: TestClient, acct: Acct, order_id: str) -> dict[str, Any]:
    answer = client.post(f"/porting/orders/{order_id}/refresh", headers=acct.headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def event_types(client: TestClient, acct: Acct) -> list[str]:
    answer = client.get("/events", params={"limit": 200}, headers=acct.headers)
    assert answer.status_code == 200, answer.text
    return [e["type"] for e in answer.json()["data"]]
