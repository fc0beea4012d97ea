"""The production event store: PostgreSQL through psycopg 3, one transaction per batch.

What it owns: the PostgreSQL side of ``ledger.store.EventStore`` (see that module for the rules
every backend keeps): the session, its durability settings, transactions and schema. The
statements that append, read and snapshot are ``ledger.sql_store``'s, shared with SQLite.

Durability: the session sets ``synchronous_commit = on``, so COMMIT returns only after the server
has flushed its WAL (and, where configured, a synchronous standby has it); ``append_batch`` returns
only after its COMMIT. The server's own ``fsync`` setting is read at connect time and exposed as
``server_fsync`` so a benchmark or health check can report a server that does not really sync.

Concurrency: one connection per store object, calls serialised by a lock. Each append locks
``ledger_entries`` in SHARE ROW EXCLUSIVE mode (writers queue, readers do not) before reading
``MAX(seq)``, so sequence numbers stay gapless even with several writer processes; a sequence
object would leave gaps on rollback. A batch's rows go to the server in one pipeline
(``executemany``), so a batch costs a few round trips and one WAL flush regardless of its size.

If the connection drops, the call that saw it raises ``StorageError`` and the next call opens a
fresh session. A drop during COMMIT leaves that batch's outcome unknown: the caller asks
``lookup_command`` for its ids before deciding anything again.

Schema: the same three tables as the SQLite store (``ledger_meta``, ``ledger_entries``,
``ledger_snapshots``; JSON kept as TEXT so the stored bytes are exactly the canonical encoding),
created if missing inside the PostgreSQL schema given at open (``public`` by default; created if
missing too).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from crossmargin.core.errors import InvalidInput, NoEventStore, StorageError
from crossmargin.ledger.sql_store import ConstraintFailed, Cursor, SqlEventStore
from crossmargin.ledger.store import EncodedEntry

STORE_SCHEMA_VERSION = 1
CONNECT_TIMEOUT_SECONDS = 10
DEFAULT_SCHEMA = "public"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_entries ("
    " seq BIGINT PRIMARY KEY,"
    " command_id TEXT NOT NULL UNIQUE,"
    " command TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " events TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_snapshots ("
    " seq BIGINT PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " state_hash TEXT NOT NULL)",
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to show in messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _describe(error: psycopg.Error) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


class PostgresEventStore(SqlEventStore):
    """The event store in a PostgreSQL database (tables created if missing unless ``create=False``)."""

    PARAM = "%s"
    _connection: psycopg.Connection[Any]

    def __init__(self, url: str, *, schema: str = DEFAULT_SCHEMA, create: bool = True) -> None:
        if not isinstance(schema, str) or not schema or len(schema) > 63:
            raise InvalidInput("schema", "must be a PostgreSQL identifier of 1 to 63 characters")
        self.url = redact_url(url)
        self.schema = schema
        self._conninfo = url
        self._lock = threading.RLock()
        self._closed = True
        self._connection = self._connect()
        self._closed = False
        try:
            self._create_schema(create)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        """A new session: autocommit (transactions are explicit), durable commits, our schema."""
        try:
            connection = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as error:
            raise StorageError(f"cannot connect to {self.url}: {_describe(error)}") from None
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO on")
                cursor.execute(
                    "SELECT set_config('search_path', %s, false)",
                    (sql.Identifier(self.schema).as_string(connection),),
                )
                cursor.execute("SHOW fsync")
                row = cursor.fetchone()
        except psycopg.Error as error:
            connection.close()
            raise StorageError(f"{self.url}: {_describe(error)}") from None
        self.server_fsync = row is not None and str(row[0]) == "on"
        return connection

    def _create_schema(self, create: bool) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name = 'ledger_entries'",
                (self.schema,),
            )
            exists = cursor.fetchone() is not None
            if not exists:
                if not create:
                    raise NoEventStore(f"no event store in schema {self.schema!r} at {self.url}")
                # Serialise concurrent creators: CREATE ... IF NOT EXISTS alone can still race.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
                cursor.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                for statement in _SCHEMA:
                    cursor.execute(statement)
            cursor.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('store_schema', %s)"
                " ON CONFLICT (key) DO NOTHING",
                (str(STORE_SCHEMA_VERSION),),
            )
            cursor.execute("SELECT value FROM ledger_meta WHERE key = 'store_schema'")
            row = cursor.fetchone()
        if row is None or row[0] != str(STORE_SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise StorageError(
                f"schema {self.schema!r} at {self.url} has store schema {found}; "
                f"this build reads {STORE_SCHEMA_VERSION}"
            )

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """BEGIN ... COMMIT (durable: synchronous_commit=on); rolled back on any exception."""
        with self._lock:
            self._check_open()
            try:
                with self._connection.transaction(), self._connection.cursor() as cursor:
                    yield cursor
            except psycopg.errors.UniqueViolation as error:
                raise ConstraintFailed(f"{self.url}: {_describe(error)}") from None
            except psycopg.Error as error:
                raise StorageError(f"{self.url}: {_describe(error)}") from None

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            self._check_open()
            try:
                with self._connection.cursor() as cursor:
                    yield cursor
            except psycopg.Error as error:
                raise StorageError(f"{self.url}: {_describe(error)}") from None

    def _check_open(self) -> None:
        """Refuse a closed store; replace a connection the server or network dropped.

        Only the call that saw the drop fails (its outcome unknown if it was a COMMIT); the next
        call gets a fresh session.
        """
        if self._closed:
            raise StorageError(f"the event store at {self.url} is closed")
        if self._connection.closed or self._connection.broken:
            self._connection.close()
            self._connection = self._connect()

    def _hold_log(self, cursor: Cursor) -> None:
        # writers queue here, readers do not; a sequence object would leave gaps on rollback
        cursor.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")

    def _existing_ids(self, encoded: list[EncodedEntry]) -> list[str]:
        ids = [entry.command_id for entry in encoded]
        with self._reading() as cursor:
            cursor.execute(
                "SELECT command_id FROM ledger_entries WHERE command_id = ANY(%s)", (ids,)
            )
            found = {str(row[0]) for row in cursor.fetchall()}
        return [command_id for command_id in ids if command_id in found]

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.url!r}, schema={self.schema!r})"
