"""Porting documents in each store: the data folder (``local``) and an
S3-compatible bucket (``s3``, moto's server on 127.0.0.1). Same answers from
both; the bytes are in the store, never in the database; only the order's
owner, its partner and its tenant read them; a store that can't be reached is
a 503 naming it, with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Acct
from didhub.config import Settings
from didhub.db import Database
from didhub.porting.models import PortDocument
from portflow import (  # noqa: F401  (s3_server, store_kind: fixtures)
    BELL,
    S3Server,
    documents_in_tmp,
    foc_date,
    free_port,
    ready_order,
    s3_server,
    store_kind,
)

S3_SERVER = "s3_server"  # the fixtures above, asked for by name

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # binary, every byte value


def _upload(
    client: TestClient, acct: Acct, order_id: str, kind: str, name: str, body: bytes, ctype: str
) -> dict[str, object]:
    answer = client.post(
        f"/porting/orders/{order_id}/documents",
        data={"kind": kind},
        files={"file": (name, body, ctype)},
        headers=acct.headers,
    )
    assert answer.status_code == 201, answer.text
    data: dict[str, object] = answer.json()["data"]
    return data


def _rows(db: Database) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(PortDocument)) or 0)


@pytest.mark.usefixtures("store_kind")
def test_upload_list_download_same_bytes_and_only_for_the_order_s_readers(
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_partner: Callable[..., Acct],
    make_tenant: Callable[..., Acct],
    request: pytest.FixtureRequest,
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    # The tenant itself adds a bill photo (binary, every byte value).
    doc = _upload(client, tenant, order["id"], "bill", "bill-photo.png", PNG, "image/png")
    assert doc["size"] == len(PNG) and doc["content_type"] == "image/png"

    listed = client.get(f"/porting/orders/{order['id']}", headers=tenant.headers)
    docs = listed.json()["data"]["documents"]
    assert [d["kind"] for d in docs] == ["loa", "bill", "bill"]
    assert docs[-1]["filename"] == "bill-photo.png"

    url = f"/porting/orders/{order['id']}/documents/{doc['id']}"
    for reader in (tenant, partner):
        got = client.get(url, headers=reader.headers)
        assert got.status_code == 200, got.text
        assert got.content == PNG and got.headers["content-type"] == "image/png"
    other = make_partner("Other Voice")
    stranger = make_tenant("Stranger", partner_id=other.id)
    for outsider in (other, stranger):
        refused = client.get(url, headers=outsider.headers)
        assert refused.status_code == 404
        assert PNG[:16] not in refused.content
        # Nor can an outsider add to the order.
        added = client.post(
            f"/porting/orders/{order['id']}/documents",
            data={"kind": "bill"},
            files={"file": ("x.pdf", b"%PDF-1.4 x", "application/pdf")},
            headers=outsider.headers,
        )
        assert added.status_code == 404

    # Where the bytes are: in the store, not in any row.
    with db.read_session() as session:
        row = session.get_one(PortDocument, doc["id"])
        assert row.storage_key.startswith(order["id"] + "/")
        key = row.storage_key
    if settings.document_store == "s3":
        s3: S3Server = request.getfixturevalue(S3_SERVER)
        assert settings.s3_prefix + key in s3.keys(settings.s3_prefix)
        assert len(s3.keys(settings.s3_prefix)) == 3
        stored = s3.client().get_object(Bucket=s3.bucket, Key=settings.s3_prefix + key)
        assert stored["Body"].read() == PNG
        assert not (Path(settings.data_dir) / "porting").exists()
    else:
        assert (Path(settings.data_dir) / "porting" / key).read_bytes() == PNG


@pytest.mark.usefixtures("store_kind")
def test_submission_sends_the_stored_documents(
    client: TestClient,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    submitted = client.post(
        f"/porting/orders/{order['id']}/submit",
        json={"foc_date": foc_date(client, partner, order["id"])},
        headers=partner.headers,
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["data"]["status"] == "submitted"
    # The order is no longer editable: its documents stay as sent.
    late = client.post(
        f"/porting/orders/{order['id']}/documents",
        data={"kind": "bill"},
        files={"file": ("late.pdf", b"%PDF-1.4 late", "application/pdf")},
        headers=partner.headers,
    )
    assert late.status_code == 409


@pytest.mark.usefixtures("store_kind")
@pytest.mark.parametrize(
    ("name", "body", "ctype", "message"),
    [
        ("empty.pdf", b"", "application/pdf", "empty"),
        ("huge.pdf", b"%PDF" + b"0" * (10 * 1024 * 1024), "application/pdf", "10 MB"),
        ("notes.txt", b"hello", "text/plain", "PDF, PNG or JPEG"),
    ],
)
def test_bad_files_refused_naming_the_field_nothing_stored(
    client: TestClient,
    db: Database,
    partner: Acct,
    make_tenant: Callable[..., Acct],
    name: str,
    body: bytes,
    ctype: str,
    message: str,
) -> None:
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    before = _rows(db)
    answer = client.post(
        f"/porting/orders/{order['id']}/documents",
        data={"kind": "bill"},
        files={"file": (name, body, ctype)},
        headers=partner.headers,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "file" and message in error["message"]
    assert _rows(db) == before


def test_s3_unreachable_is_a_503_naming_the_store_and_nothing_half_written(
    request: pytest.FixtureRequest,
    client: TestClient,
    db: Database,
    settings: Settings,
    partner: Acct,
    make_tenant: Callable[..., Acct],
) -> None:
    s3: S3Server = request.getfixturevalue(S3_SERVER)
    s3.configure(settings, "unreachable/")
    tenant = make_tenant("Dentist", partner_id=partner.id)
    order = ready_order(client, partner, tenant.id, [BELL])
    docs = client.get(f"/porting/orders/{order['id']}", headers=partner.headers).json()["data"][
        "documents"
    ]
    before = _rows(db)

    # Nothing listens on this port: the store can't be reached.
    settings.s3_endpoint_url = f"http://127.0.0.1:{free_port()}"
    settings.s3_timeout_seconds = 1.0
    answer = client.post(
        f"/porting/orders/{order['id']}/documents",
        data={"kind": "bill"},
        files={"file": ("bill.pdf", b"%PDF-1.4 bill", "application/pdf")},
        headers=partner.headers,
    )
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "document_store_unavailable"
    assert "S3 document store" in error["message"] and s3.bucket in error["message"]
    assert _rows(db) == before  # no row for a file that wasn't stored

    got = client.get(
        f"/porting/orders/{order['id']}/documents/{docs[0]['id']}", headers=partner.headers
    )
    assert got.status_code == 503 and "S3 document store" in got.json()["error"]["message"]

    # Submission reads the documents from the store: refused the same way,
    # and the order stays a draft (nothing sent to the carrier).
    submitted = client.post(
        f"/porting/orders/{order['id']}/submit",
        json={"foc_date": foc_date(client, partner, order["id"])},
        headers=partner.headers,
    )
    assert submitted.status_code == 503, submitted.text
    again = client.get(f"/porting/orders/{order['id']}", headers=partner.headers).json()["data"]
    assert again["status"] == "draft" and again["carrier_orders"] == []

    # Back online: the same order goes on.
    s3.configure(settings, "unreachable/")
    assert len(s3.keys("unreachable/")) == 2
    got = client.get(
        f"/porting/orders/{order['id']}/documents/{docs[0]['id']}", headers=partner.headers
    )
    assert got.status_code == 200 and got.content.startswith(b"%PDF")


def test_s3_without_a_bucket_refused_at_start() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="DIDHUB_S3_BUCKET"):
        Settings(document_store="s3")
    with pytest.raises(ValidationError, match="document_store"):
        Settings(document_store="ftp")
