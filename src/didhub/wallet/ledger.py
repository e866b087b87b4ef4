"""The double-entry ledger.

Every movement of money is one :class:`LedgerTransaction` whose entries sum to
zero. Wallets (books owned by an account) keep a cached ``balance`` updated in
the same transaction under a row lock; platform books (revenue, funding) are
never locked, so they don't become a hot row every purchase queues on; their
balance is the sum of their entries.

Lock order, to avoid deadlocks: a wallet before any number row; several wallets
in ascending id order (the whole order is in docs/architecture.md).

One currency per book: a wallet keeps the currency it was created in, and a
transaction moves money only between books of one currency (``CurrencyMismatch``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from didhub import clock
from didhub.db import Money, insert_rows, new_id, table_of
from didhub.errors import Conflict
from didhub.wallet.models import LedgerAccount, LedgerEntry, LedgerTransaction

CENTS = Decimal("0.01")

WALLET = "wallet"
REVENUE = "revenue"
FUNDING = "funding"


class CurrencyMismatch(Conflict):
    """Money in one currency asked to go into a book of another."""

    code = "currency_mismatch"


def wallet_id(owner_id: str, currency: str) -> str:
    return f"wallet_{owner_id}_{currency}"


def platform_book_id(kind: str, currency: str) -> str:
    return f"platform_{kind}_{currency}"


_BOOKS = "didhub_ledger_books"


def _ensure_book(session: Session, book_id: str, owner_id: str | None, kind: str, cur: str) -> None:
    found = session.get(LedgerAccount, book_id)
    if found is not None:
        # Kept for the session: the posting that follows reads it again, and the
        # identity map alone holds it only while something else does.
        session.info.setdefault(_BOOKS, {})[book_id] = found
        return
    try:
        with session.begin_nested():
            session.add(
                LedgerAccount(
                    id=book_id,
                    owner_id=owner_id,
                    kind=kind,
                    currency=cur,
                    balance=Decimal("0"),
                    created_at=clock.now(),
                )
            )
    except IntegrityError:
        pass  # created by a concurrent transaction: the deterministic id makes this safe


def ensure_wallet(session: Session, owner_id: str, currency: str) -> str:
    """The account's wallet in ``currency``, created on first use, unless the
    account already has a wallet in another currency: then ``CurrencyMismatch``
    (its money stays where it is instead of a second, empty wallet opening)."""
    book_id = wallet_id(owner_id, currency)
    if session.get(LedgerAccount, book_id) is None:
        held = session.scalars(
            select(LedgerAccount.currency).where(
                LedgerAccount.owner_id == owner_id,
                LedgerAccount.kind == WALLET,
                LedgerAccount.currency != currency,
            )
        ).first()
        if held is not None:
            raise CurrencyMismatch(
                f"account {owner_id}'s wallet is in {held}, not {currency}: a wallet keeps "
                "the currency it was created in (was DIDHUB_CURRENCY changed?)",
                field="currency",
            )
        _ensure_book(session, book_id, owner_id, WALLET, currency)
    return book_id


def currency_problem(session: Session, currency: str) -> str | None:
    """Why the platform can't run in ``currency`` (its books are in another), or
    None. Prices carry no currency: they are in DIDHUB_CURRENCY, so changing it
    after launch would bill the old wallets in the new money."""
    others = sorted(
        set(
            session.scalars(
                select(LedgerAccount.currency).where(LedgerAccount.currency != currency).distinct()
            )
        )
    )
    if not others:
        return None
    return (
        f"DIDHUB_CURRENCY is {currency}, but the ledger's books are in {', '.join(others)}: "
        "a wallet keeps the currency it was created in, so the platform currency can't "
        "change after launch (see docs/billing.md)"
    )


def ensure_platform_book(session: Session, kind: str, currency: str) -> str:
    book_id = platform_book_id(kind, currency)
    _ensure_book(session, book_id, None, kind, currency)
    return book_id


_LOCKED = "didhub_locked_wallets"


def _locked(session: Session) -> set[str]:
    """The wallets this session's current transaction holds the row lock of (and
    has read under it): :func:`post` needn't lock and read them again."""
    transaction = session.get_transaction()
    held = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
        session.info[_LOCKED] = held
    books: set[str] = held[1]
    return books


def _select_locked(session: Session, book_id: str) -> LedgerAccount | None:
    book = session.scalars(
        select(LedgerAccount)
        .where(LedgerAccount.id == book_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if book is not None:
        _locked(session).add(book.id)
    return book


def lock_wallet(session: Session, owner_id: str, currency: str) -> LedgerAccount:
    """Lock an account's wallet row for the rest of the transaction and return
    it: one statement when the wallet exists (it is created on first use)."""
    book = _select_locked(session, wallet_id(owner_id, currency))
    if book is None:
        book = _select_locked(session, ensure_wallet(session, owner_id, currency))
    assert book is not None
    return book


def lock_wallets(
    session: Session, owner_ids: Sequence[str], currency: str, *, create: bool = False
) -> dict[str, LedgerAccount]:
    """Lock the wallets of many accounts at once, in the ledger's lock order
    (ascending id), for a batch job; owner id -> wallet. Without ``create``, an
    account that never had a wallet is absent; with it, its wallet is created
    first, so that every lock is still taken in one ascending statement."""
    if create:
        ids = [wallet_id(o, currency) for o in owner_ids]
        found = set(session.scalars(select(LedgerAccount.id).where(LedgerAccount.id.in_(ids))))
        for owner in sorted(set(owner_ids)):
            if wallet_id(owner, currency) not in found:
                ensure_wallet(session, owner, currency)
    locked = {
        book.owner_id: book
        for book in session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.id.in_([wallet_id(o, currency) for o in owner_ids]))
            .order_by(LedgerAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if book.owner_id is not None
    }
    _locked(session).update(book.id for book in locked.values())
    return locked


def wallet_balance(session: Session, owner_id: str, currency: str) -> Decimal:
    book = session.get(LedgerAccount, wallet_id(owner_id, currency))
    return book.balance if book is not None else Decimal("0.00")


@dataclass(frozen=True)
class Posting:
    book_id: str
    amount: Decimal


def _one_currency(kind: str, books: dict[str, str], currency: str | None) -> None:
    """Refuse a transaction whose books (id -> currency) aren't all in one
    currency, or not in ``currency`` (the amounts') when it is given."""
    held = set(books.values()) | ({currency} if currency is not None else set())
    if len(held) <= 1:
        return
    by_currency: dict[str, list[str]] = defaultdict(list)
    for book, cur in sorted(books.items()):
        by_currency[cur].append(book)
    named = "; ".join(
        f"{cur}: {', '.join(ids[:3])}{' …' if len(ids) > 3 else ''}"
        for cur, ids in sorted(by_currency.items())
    )
    amounts = f" of amounts in {currency}" if currency is not None else ""
    raise CurrencyMismatch(
        f"{kind}: refused a transaction{amounts} between books of different currencies ({named})",
        field="currency",
    )


def post(
    session: Session,
    *,
    kind: str,
    description: str,
    postings: Sequence[Posting],
    reference: str | None = None,
    currency: str | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction. Wallet books are locked (ascending id)
    and their cached balance moves with the entry. Every book must be in one
    currency, ``currency`` (the amounts') when given."""
    if sum((p.amount for p in postings), Decimal("0")) != 0:
        raise ValueError(f"unbalanced ledger transaction {kind}: {postings}")
    books: dict[str, str] = {}
    loaded: dict[str, LedgerAccount] = {}
    for posting in postings:
        if posting.amount == 0:
            continue
        found = session.get(LedgerAccount, posting.book_id)
        if found is None:
            raise ValueError(f"unknown ledger book {posting.book_id}")
        books[found.id] = found.currency
        loaded[found.id] = found
    _one_currency(kind, books, currency)
    txn = LedgerTransaction(
        id=new_id("txn"),
        kind=kind,
        description=description,
        reference=reference,
        created_at=clock.now(),
    )
    session.add(txn)
    session.flush()
    entries: list[dict[str, object]] = []
    for posting in sorted(postings, key=lambda p: p.book_id):
        if posting.amount == 0:
            continue
        book = loaded[posting.book_id]
        if book.owner_id is not None:
            if book.id not in _locked(session):
                relocked = _select_locked(session, posting.book_id)
                if relocked is None:
                    raise ValueError(f"unknown ledger book {posting.book_id}")
                book = relocked
            book.balance = book.balance + posting.amount
        entries.append(
            {"transaction_id": txn.id, "ledger_account_id": book.id, "amount": posting.amount}
        )
    # One statement for the entries (nothing reads their ids back).
    session.execute(insert(LedgerEntry), entries)
    session.flush()
    return txn


def transfer(
    session: Session,
    *,
    kind: str,
    description: str,
    debit: str,
    credit: str,
    amount: Decimal,
    reference: str | None = None,
    currency: str | None = None,
) -> LedgerTransaction:
    """Move ``amount`` (in ``currency``, when given) from book ``debit`` to book
    ``credit``."""
    return post(
        session,
        kind=kind,
        description=description,
        reference=reference,
        postings=[Posting(debit, -amount), Posting(credit, amount)],
        currency=currency,
    )


@dataclass(frozen=True)
class Transfer:
    debit: str
    credit: str
    amount: Decimal
    description: str
    reference: str | None = None  # this transfer's own; else the batch's


def transfer_many(
    session: Session,
    *,
    kind: str,
    transfers: Sequence[Transfer],
    reference: str | None = None,
    currency: str | None = None,
    platform_books: Sequence[str] = (),
    known: Mapping[str, tuple[str | None, str]] | None = None,
) -> list[str]:
    """Write one balanced two-entry transaction per transfer, set-based; returns
    their ids in order. For a batch job (or a purchase) whose caller already
    holds the row lock of every wallet involved (ascending id order): wallet
    balances move by one UPDATE per wallet, and the rows go in with a few bulk
    statements. Every book must be in one currency, ``currency`` when given.
    ``platform_books``: kinds of platform book in ``currency`` to open when
    they don't exist yet (:func:`ensure_platform_book`), read in the same
    statement as the other books. ``known``: books the caller has read in this
    transaction, as (owner id, currency) by id (a purchase's locked wallet and
    the revenue book it saw): when every book involved is known, none is read."""
    if not transfers:
        return []
    if any(t.amount <= 0 for t in transfers):
        raise ValueError(f"{kind}: transfer amounts must be positive")
    involved = {t.debit for t in transfers} | {t.credit for t in transfers}
    books_read = {"ids": list(involved)}
    if known is not None and involved <= known.keys():
        found = [(book_id, *known[book_id]) for book_id in involved]
    else:
        found = [(b, owner, cur) for b, owner, cur in session.execute(_BOOKS_READ, books_read)]
    if platform_books and len(found) != len(involved):
        if currency is None:
            raise ValueError(f"{kind}: platform books are opened in a given currency")
        there = {book_id for book_id, _, _ in found}
        for book_kind in platform_books:
            if platform_book_id(book_kind, currency) not in there:
                ensure_platform_book(session, book_kind, currency)
        found = [(b, owner, cur) for b, owner, cur in session.execute(_BOOKS_READ, books_read)]
    if len(found) != len(involved):
        missing = sorted(involved - {book_id for book_id, _, _ in found})
        raise ValueError(f"unknown ledger book(s) {missing}")
    _one_currency(kind, {book_id: cur for book_id, _, cur in found}, currency)
    owned = {book_id for book_id, owner, _ in found if owner is not None}
    now = clock.now()
    ids = [new_id("txn") for _ in transfers]
    insert_rows(
        session,
        table_of(LedgerTransaction),
        [
            {
                "id": txn_id,
                "kind": kind,
                "description": t.description,
                "reference": t.reference or reference,
                "created_at": now,
            }
            for txn_id, t in zip(ids, transfers, strict=True)
        ],
    )
    moves: dict[str, Decimal] = defaultdict(Decimal)
    entries: list[dict[str, object]] = []
    for txn_id, t in zip(ids, transfers, strict=True):
        for book, amount in ((t.debit, -t.amount), (t.credit, t.amount)):
            entries.append({"transaction_id": txn_id, "ledger_account_id": book, "amount": amount})
        moves[t.debit] -= t.amount
        moves[t.credit] += t.amount
    insert_rows(session, table_of(LedgerEntry), entries)
    session.execute(
        _MOVE_BALANCES,
        [{"book": book, "delta": delta} for book, delta in sorted(moves.items()) if book in owned],
    )
    return ids


# Built once (docs/performance.md, "Built once").
_BOOKS_READ = select(LedgerAccount.id, LedgerAccount.owner_id, LedgerAccount.currency).where(
    LedgerAccount.id.in_(bindparam("ids", expanding=True))
)
_LEDGER_BOOKS = table_of(LedgerAccount)
_MOVE_BALANCES = (
    update(_LEDGER_BOOKS)
    .where(_LEDGER_BOOKS.c.id == bindparam("book"))
    .values(balance=_LEDGER_BOOKS.c.balance + bindparam("delta", type_=Money()))
)


@dataclass(frozen=True)
class LedgerProblem:
    kind: str  # unbalanced_transaction | wallet_mismatch | mixed_currencies | renewal_mismatch
    subject: str
    detail: str


def check(session: Session) -> list[LedgerProblem]:
    """Prove the books: every transaction sums to zero and every wallet's cached
    balance equals the sum of its entries."""
    problems: list[LedgerProblem] = []
    unbalanced = session.execute(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    ).all()
    for txn_id, total in unbalanced:
        problems.append(LedgerProblem("unbalanced_transaction", txn_id, f"entries sum to {total}"))
    sums = (
        select(LedgerEntry.ledger_account_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.ledger_account_id)
        .subquery()
    )
    rows = session.execute(
        select(LedgerAccount.id, LedgerAccount.balance, sums.c.total)
        .outerjoin(sums, sums.c.ledger_account_id == LedgerAccount.id)
        .where(LedgerAccount.owner_id.is_not(None))
    ).all()
    for book_id, cached, summed in rows:
        summed = Decimal(summed or 0)
        if Decimal(cached) != summed:
            problems.append(
                LedgerProblem("wallet_mismatch", book_id, f"cached {cached} != entries {summed}")
            )
    mixed = session.execute(
        select(LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.ledger_account_id)
        .group_by(LedgerEntry.transaction_id)
        .having(func.count(func.distinct(LedgerAccount.currency)) > 1)
    ).scalars()
    for txn_id in mixed:
        problems.append(
            LedgerProblem("mixed_currencies", txn_id, "entries in books of different currencies")
        )
    return problems
