"""Porting documents (LOAs, bills): the files live in a document store, never
in the database; ``port_documents`` rows say where.

``local`` (the default) keeps them under ``<DIDHUB_DATA_DIR>/porting/``;
``s3`` is the place for an S3-compatible store behind the same two calls
(:class:`DocumentStore`), not built yet: configuring it is refused at start
with that reason (docs/porting.md).

The LOA didhub fills (:func:`render_loa`) is a one-page PDF made with fpdf2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9_-]+/[A-Za-z0-9_.-]+$")
MAX_BYTES = 10 * 1024 * 1024


class DocumentStore(Protocol):
    def put(self, key: str, content: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class LocalStore:
    """Files under ``root``; keys are ``<order id>/<document id>.<ext>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"bad document key {key!r}")
        return self.root / key

    def put(self, key: str, content: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(content)
        os.replace(partial, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()


def make_store(kind: str, data_dir: str) -> DocumentStore:
    if kind == "local":
        return LocalStore(Path(data_dir) / "porting")
    if kind == "s3":
        raise ValueError(
            "DIDHUB_DOCUMENT_STORE=s3 is not implemented yet; use local (docs/porting.md)"
        )
    raise ValueError(f"unknown DIDHUB_DOCUMENT_STORE {kind!r}; known: local")


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
