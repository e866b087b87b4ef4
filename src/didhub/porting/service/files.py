"""Porting documents: an order's LOA and bill, kept in the document store
(``porting/documents.py``), never in the database."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select

from didhub import clock
from didhub.config import Settings
from didhub.db import Database, new_id
from didhub.errors import Conflict, NotFound, ValidationFailed
from didhub.porting import documents, repository
from didhub.porting.lifecycle import CORRECTED, DRAFT, EXCEPTION
from didhub.porting.models import PortDocument
from didhub.tenancy import Scope

DOCUMENT_KINDS = ("loa", "bill")


def store(settings: Settings) -> documents.DocumentStore:
    return documents.make_store(settings)


def add_document(
    db: Database,
    settings: Settings,
    scope: Scope,
    order_id: str,
    kind: str,
    filename: str,
    content: bytes,
    content_type: str,
    *,
    signed: bool = True,
) -> PortDocument:
    if kind not in DOCUMENT_KINDS:
        raise ValidationFailed("kind is loa or bill", field="kind")
    if not content:
        raise ValidationFailed("the file is empty", field="file")
    if len(content) > documents.MAX_BYTES:
        raise ValidationFailed("the file is over 10 MB", field="file")
    if content_type not in ("application/pdf", "image/png", "image/jpeg"):
        raise ValidationFailed("the file must be a PDF, PNG or JPEG", field="file")
    target = store(settings)
    written: str | None = None
    try:
        with db.session() as session:
            order = repository.get(session, scope, order_id)
            if order.status not in (DRAFT, EXCEPTION, CORRECTED):
                raise Conflict(
                    f"port order {order.id} is {order.status}; documents are added before "
                    "submission or to correct an exception",
                    field="order_id",
                    code="port_not_editable",
                )
            doc_id = new_id("doc")
            ext = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[content_type]
            key = f"{order.id}/{doc_id}.{ext}"
            # The file first: a store that fails writes no row; a row that
            # fails to commit takes its file away again (below).
            target.put(key, content)
            written = key
            doc = PortDocument(
                id=doc_id,
                order_id=order.id,
                kind=kind,
                filename=(filename or f"{kind}.{ext}")[-200:],
                content_type=content_type,
                size=len(content),
                storage_key=key,
                signed=signed,
                created_at=clock.now(),
            )
            session.add(doc)
    except BaseException:
        if written is not None:
            with contextlib.suppress(Exception):
                target.delete(written)
        raise
    return doc


def read_document(
    db: Database, settings: Settings, scope: Scope, order_id: str, document_id: str
) -> tuple[PortDocument, bytes]:
    with db.read_session() as session:
        order = repository.get(session, scope, order_id)
        doc = session.get(PortDocument, document_id)
        if doc is None or doc.order_id != order.id:
            raise NotFound(f"document {document_id} not found", field="document_id")
        session.expunge(doc)
    return doc, store(settings).get(doc.storage_key)


def order_documents(session: Any, order_id: str) -> list[PortDocument]:
    return list(
        session.scalars(
            select(PortDocument)
            .where(PortDocument.order_id == order_id)
            .order_by(PortDocument.created_at)
        )
    )
