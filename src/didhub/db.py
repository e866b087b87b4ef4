"""Engine, sessions and the declarative base.

SQLite is the embedded default; PostgreSQL is selected by ``DIDHUB_DATABASE_URL``.
On SQLite every transaction starts with ``BEGIN IMMEDIATE`` so writers queue on
the database lock instead of failing mid-transaction: that is SQLite's form of
the row locks PostgreSQL takes with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    Integer,
    Table,
    create_engine,
    event,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator, TypeEngine

from didhub.epochs import Epochs, SharedEpochs

if TYPE_CHECKING:
    from didhub.config import Settings

_MONEY_SCALE = Decimal(10000)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """A sortable public id: ``prefix_`` + 48-bit milliseconds + 80 random bits,
    Crockford base32 (like a ULID), so ``ORDER BY id`` is creation order."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


# The id of a table that only grows (ledger entries, events, call records): a
# 64-bit BIGINT on PostgreSQL, where INTEGER ends at 2,147,483,647; on SQLite an
# INTEGER PRIMARY KEY is already the 64-bit rowid (BIGINT would not autoincrement).
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class Money(TypeDecorator[Decimal]):
    """A money column, stored as an integer count of ten-thousandths so that
    SQLite, which has no exact decimal type, sums it as exactly as PostgreSQL.
    Four places because per-minute rates need them; charges use two."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * _MONEY_SCALE
        if scaled != scaled.to_integral_value():
            raise ValueError(f"money value {value} has more than 4 decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / _MONEY_SCALE).quantize(Decimal("0.0001"))


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC. SQLite keeps no
    zone and hands back naive values; every time didhub stores is UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: didhub stores only timezone-aware UTC times")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements on its columns (no ORM
    objects, no ORM bulk-statement work)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# The tables an inbound route (routing/service.py) or an outbound lookup's
# static part (outbound/service.py) is read from. A transaction that writes one
# of them adds one to routing_generation's row 1 just before it commits, and,
# once committed, to its Database's ``routing`` epoch: route caches
# (routing/cache.py) watch both, the epoch for this process's changes at once and
# the row for every other process's.
ROUTING_TABLES = frozenset(
    {
        "phone_numbers",
        "number_assignments",
        "agents",
        "accounts",
        "account_settings",
        # an outbound lookup's static part (outbound/service.py)
        "sip_credentials",
        "outbound_trunks",
        "outbound_settings",
    }
)
# The tables an API key's scope (api/deps.py: the key, revoked or not, and the
# accounts it sees), an event's webhook subscribers (webhooks/events.py) and a
# number's inherited caller name (accounts/settings.py) are read from: watched
# the same way through row 2 and the ``directory`` epoch, so that a purchase
# (which writes phone_numbers) doesn't empty what is kept of them.
DIRECTORY_TABLES = frozenset({"api_keys", "accounts", "account_settings", "webhook_endpoints"})


@dataclass(frozen=True)
class Watch:
    """A set of tables whose commits a cache watches: ``name`` is the epoch
    (``epochs.py``), ``row`` the ``routing_generation`` row moved."""

    name: str
    row: int
    tables: frozenset[str]

    @property
    def bump(self) -> str:
        return (
            "UPDATE routing_generation SET generation = generation + 1 "
            f"WHERE id = {self.row} RETURNING generation"
        )


ROUTING = Watch("routing", 1, ROUTING_TABLES)
DIRECTORY = Watch("directory", 2, DIRECTORY_TABLES)
WATCHES = (ROUTING, DIRECTORY)

# The tables an outbound lookup's money part (outbound/service.py ``funds``:
# standing, balance, spend today) is read from. A commit that writes one adds
# one to its Database's ``money_epoch`` (this process's money cache,
# outbound/funds_cache.py, starts afresh); other processes' writes are seen by
# that cache's poll of cheap high-water marks, so no commit writes anything more.
MONEY_TABLES = frozenset({"ledger_accounts", "ledger_entries", "billing_profiles", "usage_records"})
_WRITE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)
_WRITTEN = "didhub_written"  # connection.info: the watches' names this transaction wrote
_BUMPED = "didhub_bumped"  # session.info: watch name -> the generation its commit wrote
_MONEY_WRITTEN = "didhub_money_written"
_MONEY_COMMITTING = "didhub_money_committing"
_ROUTES_UNCHANGED = "didhub_routes_unchanged"


def _watch_writes(engine: Engine) -> None:
    """Mark a connection's transaction once it writes a routing table, and
    refuse writes in read-only sessions: every statement SQLAlchemy sends
    passes here, the ORM's flushes and bulk statements alike."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.info.pop(_WRITTEN, None)
        conn.info.pop(_MONEY_WRITTEN, None)

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(
        conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        written = _WRITE.match(statement)
        if written is None:
            return
        if conn.get_execution_options().get("didhub_read_only", False):
            # On SQLite the write would have to take the lock the read session
            # skipped, and could fail as busy under load: refuse it every time
            # instead, so a read path that starts writing is found by its tests.
            raise RuntimeError(f"a write in a read-only session: {statement[:80]}")
        _mark(conn, written.group(1).lower())


def _mark(conn: Any, table: str) -> None:
    for watch in WATCHES:
        if table in watch.tables:
            conn.info.setdefault(_WRITTEN, set()).add(watch.name)
    if table in MONEY_TABLES:
        conn.info[_MONEY_WRITTEN] = True


def autocommits(conn: Any) -> bool:
    """Whether ``conn`` runs each statement on its own, in no transaction
    (``Database.lone_read_engine``): no BEGIN is sent, and nothing commits or
    rolls back."""
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    if is_sqlite(url):
        # As many pooled connections as for PostgreSQL: a connection opened
        # past the pool is closed again after one use, and opening one (with
        # the pragmas below) costs more than a routing lookup. A file has no
        # server to lose a connection to, so nothing to ping.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=max_overflow,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A read-only session (Database.read_session) needn't queue for the
            # write lock: WAL lets it read beside a writer.
            if autocommits(conn):
                return  # Database.lone_read_engine: each statement on its own
            read_only = conn.get_execution_options().get("didhub_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        _watch_writes(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout (docs/performance.md).
    # Connections are recycled before a typical idle timeout drops them.
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False, pool_recycle=300
    )
    _watch_writes(engine)
    return engine


# Connections a process opens for its caches' polls, beside its request pool
# (Database.poll_engine; docs/operations.md, "Sizing").
POLL_CONNECTIONS = 2


class Memo(Protocol):
    """Answers kept across transactions (a ``routing.cache.RouteCache``)."""

    def get(self, key: str, compute: Callable[[], Any]) -> Any: ...

    def get_many(
        self, keys: Collection[str], compute: Callable[[list[str]], dict[str, Any]]
    ) -> dict[str, Any]: ...


_DB = "didhub_database"
T = TypeVar("T")


def session_database(session: Session) -> Database | None:
    """The Database whose ``session()`` opened ``session`` (None for another)."""
    found = session.info.get(_DB)
    return found if isinstance(found, Database) else None


def directory_memo(session: Session) -> Memo | None:
    """The kept directory answers of ``session``'s Database (``None`` without
    them), unless this session's transaction has written, or holds unflushed
    changes to, a directory table: its own reads must then see its own
    writes, and nothing it reads may be kept (it may yet roll back)."""
    database = session_database(session)
    if database is None or database.directory is None:
        return None
    connection = session.info.get("didhub_connection")
    if connection is not None and DIRECTORY.name in connection.info.get(_WRITTEN, ()):
        return None
    for changed in (*session.new, *session.dirty, *session.deleted):
        if getattr(changed, "__tablename__", None) in DIRECTORY_TABLES:
            return None
    return database.directory


def directory_answer(session: Session, key: str, read: Callable[[], T]) -> T:
    """``read()``, or its kept answer under ``key`` (:func:`directory_memo`)."""
    memo = directory_memo(session)
    if memo is None:
        return read()
    kept: T = memo.get(key, read)
    return kept


class Database:
    """One engine and its session factory."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, settings.db_pool_size, settings.db_max_overflow)

    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 10) -> None:
        """``pool_size`` + ``max_overflow`` is the most connections this
        process opens (``DIDHUB_DB_POOL_SIZE``, ``DIDHUB_DB_MAX_OVERFLOW``)."""
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow)
        # Every session knows its Database (session_database).
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, info={_DB: self})
        # Reads only (a write raises): the read sessions' bind, and for a
        # statement or two without a Session (a connection costs less).
        self.read_engine = self.engine.execution_options(didhub_read_only=True)
        self.read_sessionmaker = sessionmaker(
            self.read_engine, expire_on_commit=False, info={_DB: self}
        )
        # Reads only, one statement each (a purchase's look-up of the stock),
        # without a transaction around it: on PostgreSQL one round trip instead
        # of three (BEGIN, the statement, ROLLBACK), and no ROLLBACK, at which
        # psycopg forgets every statement it prepared on the connection
        # (docs/performance.md, "No rollback").
        self.lone_read_engine = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        # Reads only, for the caches' polls (routing.cache.Generations, the
        # outbound funds cache), on connections of their own outside the request
        # pool: under load every pooled connection is held by a request, and a
        # poll waiting its turn for one left every kept answer stale (half the
        # directory lookups missed at 64 buyers). None opens until a poll.
        self._poll_pool = make_engine(url, POLL_CONNECTIONS, 0)
        self.poll_engine = self._poll_pool.execution_options(didhub_read_only=True)
        # How many commits may have changed a route, and how many wrote a money
        # table (MONEY_TABLES): this process's, or with share_epochs() every
        # process's on this machine (didhub serve --workers). And, per watch
        # (ROUTING, DIRECTORY), the highest generation this process's commits wrote.
        self.epochs: Epochs = Epochs()
        self.generations: dict[str, int] = {}
        # Answers read from the directory tables only (DIRECTORY_TABLES: an
        # event's webhook subscribers, a number's inherited caller name), kept
        # across transactions when a server watches those tables (api/app.py);
        # else None. See directory_memo.
        self.directory: Memo | None = None
        self._epoch_lock = threading.Lock()
        event.listen(self.sessionmaker, "after_begin", _remember_connection)
        event.listen(self.sessionmaker, "before_commit", _bump_generation)
        event.listen(self.sessionmaker, "after_commit", self._after_commit)
        event.listen(self.sessionmaker, "after_rollback", _forget_connection)

    def share_epochs(self, path: Path) -> None:
        """Count commits in the file every process of ``didhub serve
        --workers`` maps (``epochs.py``), so each one's caches see the others'
        changes at once."""
        self.epochs = SharedEpochs(path)

    @property
    def money_epoch(self) -> int:
        return self.epochs.count("money")

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_MONEY_COMMITTING, False):
            self.epochs.add("money")
        bumped: dict[str, int] = session.info.pop(_BUMPED, {})
        with self._epoch_lock:
            for name, generation in bumped.items():
                self.epochs.add(name)
                self.generations[name] = max(self.generations.get(name, 0), generation)

    def commits(self, watch: Watch) -> tuple[int, int | None]:
        """``(epoch, generation)`` of ``watch``'s commits, read together."""
        with self._epoch_lock:
            return self.epochs.count(watch.name), self.generations.get(watch.name)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: authentication, every GET, the SIP
        edge's routing lookup, searches. On SQLite it doesn't wait for the write
        lock, so a read never queues behind a writer. A write in it (an INSERT,
        UPDATE or DELETE) raises ``RuntimeError`` before it reaches the
        database.

        It commits even when the block raises (a 404, a 401 for an unknown
        key): it wrote nothing, and psycopg forgets every statement it
        prepared on the connection at a ROLLBACK (docs/performance.md, "No
        rollback"). Only a database error rolls it back."""
        with self.read_sessionmaker() as session:
            session.begin()
            try:
                yield session
            except SQLAlchemyError:
                session.rollback()
                raise
            except BaseException:
                try:
                    session.commit()
                except SQLAlchemyError:
                    session.rollback()  # the block's own error is the one raised
                raise
            session.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        self._poll_pool.dispose()


def _remember_connection(session: Session, _transaction: Any, connection: Any) -> None:
    session.info["didhub_connection"] = connection


def _forget_connection(session: Session) -> None:
    # Back in the pool, the connection may soon be another session's.
    session.info.pop("didhub_connection", None)
    session.info.pop(_MONEY_COMMITTING, None)


def routes_unchanged(session: Session) -> None:
    """Declare that what this session's current transaction writes to the
    routing tables changes no route, so its commit doesn't bump
    ``routing_generation`` (a purchase's ``provisioning`` rows: routes are read
    only from active and suspended numbers, routing/service.py). Only for a
    transaction whose every routing-table write is of that kind."""
    session.info[_ROUTES_UNCHANGED] = session.get_transaction()


def _bump_generation(session: Session) -> None:
    session.flush()  # what commit would flush may write a watched table too
    connection = session.info.pop("didhub_connection", None)
    if connection is not None and connection.info.pop(_MONEY_WRITTEN, False):
        session.info[_MONEY_COMMITTING] = True
    written: set[str] = connection.info.pop(_WRITTEN, set()) if connection is not None else set()
    declared = session.info.pop(_ROUTES_UNCHANGED, None)
    if declared is not None and declared is session.get_transaction():
        written.discard(ROUTING.name)
    bumped: dict[str, int] = {}
    for watch in WATCHES:
        if watch.name in written:
            # The transaction's last statements, so the row lock each takes on
            # PostgreSQL is held only for the commit itself.
            assert connection is not None
            bumped[watch.name] = connection.exec_driver_sql(watch.bump).scalar_one()
    if bumped:
        session.info[_BUMPED] = bumped


# Fewer rows go in as one executemany (one round trip in psycopg's pipeline):
# COPY's own exchange costs more than it saves on a handful.
_COPY_FROM = 50


_INSERTS: dict[Table, Insert] = {}


def _insert_of(table: Table) -> Insert:
    """``table.insert()``, built once per table: a statement made per call costs
    more to build and key for SQLAlchemy's compiled cache than to run."""
    found = _INSERTS.get(table)
    if found is None:
        found = _INSERTS[table] = table.insert()
    return found


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of scalar columns (all rows with the same keys), in the
    session's transaction. On PostgreSQL with ``COPY … FROM STDIN``, because a
    per-row executemany costs a round trip a row and a batch job writes
    hundreds of thousands; elsewhere, and for fewer than ``_COPY_FROM`` rows,
    an executemany."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or len(rows) < _COPY_FROM:
        session.execute(_insert_of(table), rows)
        return
    # COPY passes no before_cursor_execute hook: mark the write here.
    _mark(session.connection(), table.name)
    names = list(rows[0])
    binders: list[TypeDecorator[Any] | None] = []
    for name in names:
        column_type = table.c[name].type
        binders.append(column_type if isinstance(column_type, TypeDecorator) else None)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    row[name] if bind is None else bind.process_bind_param(row[name], dialect)
                    for name, bind in zip(names, binders, strict=True)
                ]
            )
