"""Porting documents (LOAs, bills): the files live in a document store, never
in the database; ``port_documents`` rows say where.

``local`` (the default) keeps them under ``<DIDHUB_DATA_DIR>/porting/``;
``s3`` keeps them in an S3-compatible bucket (``DIDHUB_S3_*``, boto3). Both
are a :class:`DocumentStore`; who may read a document is decided before the
store is asked (``porting/repository.py``), so both behave the same. A store
that can't be reached is :class:`StoreUnavailable` (503, naming the store).

The LOA didhub fills (:func:`render_loa`) is a one-page PDF made with fpdf2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from didhub.config import Settings
from didhub.errors import ServiceUnavailable

_KEY = re.compile(r"^[A-Za-z0-9_-]+/[A-Za-z0-9_.-]+$")
MAX_BYTES = 10 * 1024 * 1024


class StoreUnavailable(ServiceUnavailable):
    code = "document_store_unavailable"


class DocumentStore(Protocol):
    name: str

    def put(self, key: str, content: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


def _checked(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"bad document key {key!r}")
    return key


class LocalStore:
    """Files under ``root``; keys are ``<order id>/<document id>.<ext>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.name = f"the local document store ({self.root})"

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, content: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(path.suffix + ".part")
            partial.write_bytes(content)
            os.replace(partial, path)
        except OSError as exc:
            raise StoreUnavailable(f"{self.name} can't be written: {exc}", field="file") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StoreUnavailable(f"{self.name} can't be read: {exc}") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """Objects in an S3-compatible bucket, at ``<prefix><key>``. The bucket is
    private: documents are read only through didhub, which checks the reader."""

    def __init__(self, client: Any, bucket: str, prefix: str, where: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.name = f"the S3 document store (bucket {bucket} at {where})"

    def _failed(self, doing: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"{self.name} can't be {doing}: {exc}", field="file")

    def put(self, key: str, content: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + _checked(key), Body=content
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("written", exc) from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
            body: bytes = answer["Body"].read()
            return body
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("read", exc) from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("changed", exc) from exc

    def keys(self) -> list[str]:
        """Every key under the prefix (tests and operators' checks)."""
        from botocore.exceptions import BotoCoreError, ClientError

        out: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                out.extend(o["Key"][len(self.prefix) :] for o in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("listed", exc) from exc
        return out


@lru_cache(maxsize=8)
def _s3_client(
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
    timeout: float,
) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint_url else {},
        ),
    )


def make_store(settings: Settings) -> DocumentStore:
    """The configured store (``DIDHUB_DOCUMENT_STORE``)."""
    kind = settings.document_store
    if kind == "local":
        return LocalStore(Path(settings.data_dir) / "porting")
    if kind == "s3":
        if not settings.s3_bucket:
            raise StoreUnavailable("DIDHUB_DOCUMENT_STORE=s3 needs DIDHUB_S3_BUCKET")

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        client = _s3_client(
            settings.s3_endpoint_url,
            settings.s3_region,
            secret(settings.s3_access_key_id),
            secret(settings.s3_secret_access_key),
            settings.s3_timeout_seconds,
        )
        return S3Store(
            client,
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint_url or f"AWS {settings.s3_region or 'default region'}",
        )
    raise ValueError(f"unknown DIDHUB_DOCUMENT_STORE {kind!r}; known: local, s3")


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render_loa(
    *,
    entity_name: str,
    authorized_person: str,
    account_number: str,
    billing_phone_number: str,
    service_address: Sequence[str],
    phone_numbers: Sequence[str],
    losing_carriers: Sequence[str],
    gaining_carrier: str,
    today: date,
) -> bytes:
    """The letter of authorization, filled from the order, for signature."""
    # Imported here: fpdf2 (and fontTools) take about a second to import, which
    # every CLI command and server start would pay for a letter few ask for.
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_title("Letter of Authorization")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Letter of Authorization (LOA)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    lines = [
        f"Date: {today.isoformat()}",
        f"Customer (as on the losing carrier's account): {entity_name}",
        f"Authorized person: {authorized_person}",
        f"Losing carrier account number: {account_number}",
        f"Billing telephone number: {billing_phone_number}",
        "Service address: " + ", ".join(service_address),
        f"Losing carrier(s): {', '.join(losing_carriers) or 'as on the bill'}",
        f"New carrier: {gaining_carrier}",
        "",
        "I authorize the new carrier and its agents to act on my behalf to port the",
        "telephone numbers below from my current carrier. I am authorized to make this",
        "request for the account named above.",
        "",
        "Telephone numbers:",
        *[f"    {n}" for n in phone_numbers],
        "",
        "Signature: ________________________________    Date: ______________",
        "",
        f"Printed name: {authorized_person}",
    ]
    for line in lines:
        pdf.multi_cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
