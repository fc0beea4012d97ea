"""The embedded event store: one SQLite file in WAL mode, fsync on every commit.

What it owns: the SQLite side of ``ledger.store.EventStore`` (see that module for the rules
every backend keeps): the file, its durability settings, transactions and schema. The statements
that append, read and snapshot are ``ledger.sql_store``'s, shared with PostgreSQL.

Durability: ``journal_mode=WAL`` and ``synchronous=FULL``, so each COMMIT fsyncs the write-ahead
log before it returns; ``append_batch`` returns only after its COMMIT. A process killed at any
moment (SIGKILL, power loss after the fsync) leaves the file with every returned batch and no part
of an unreturned one: SQLite rolls back an uncommitted WAL tail when the file is next opened.

Concurrency: one connection per store object, used by one writer at a time (a lock serialises
calls from several threads of the same process). Every write transaction starts with
``BEGIN IMMEDIATE``, which takes the database's write lock up front, so two processes that open
the same file still get gapless sequence numbers; readers in other processes (``crossmargin
check``) run concurrently under WAL without blocking the writer.

Schema (``STORE_SCHEMA_VERSION``)::

    ledger_meta      (key TEXT PRIMARY KEY, value TEXT)            store_schema = 1
    ledger_entries   (seq INTEGER PRIMARY KEY, command_id TEXT UNIQUE, command TEXT,
                      result TEXT, events TEXT)                    texts from codec.encode_record
    ledger_snapshots (seq INTEGER PRIMARY KEY, state TEXT, state_hash TEXT)
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from crossmargin.core.errors import NoEventStore, StorageError
from crossmargin.ledger.sql_store import ConstraintFailed, Cursor, SqlEventStore
from crossmargin.ledger.store import EncodedEntry

STORE_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
_ID_CHUNK = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_entries ("
    " seq INTEGER PRIMARY KEY,"
    " command_id TEXT NOT NULL UNIQUE,"
    " command TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " events TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_snapshots ("
    " seq INTEGER PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " state_hash TEXT NOT NULL)",
)


def _create_private(path: Path) -> None:
    """Create the log file readable and writable by its owner only (0600), before SQLite does.

    SQLite would create it 0644 (less the umask); it gives the ``-wal`` and ``-shm`` files the
    database file's own mode, so creating the database private keeps all three private. An
    existing file keeps its mode.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as error:
        raise StorageError(f"cannot open SQLite event store {path}: {error}") from None
    os.close(descriptor)


class SqliteEventStore(SqlEventStore):
    """The event store in one SQLite file (created when missing unless ``create=False``)."""

    PARAM = "?"
    _connection: sqlite3.Connection

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise NoEventStore(f"no event store at {self.path}")
        self._lock = threading.RLock()
        if create and str(path) != ":memory:":
            _create_private(self.path)
        try:
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise StorageError(f"cannot open SQLite event store {self.path}: {error}") from None
        self._closed = False
        try:
            if not create:
                self._require_log()
            self._configure()
            self._create_schema()
        except BaseException:
            self._connection.close()
            self._closed = True
            raise

    def _configure(self) -> None:
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._connection.execute("PRAGMA journal_mode = WAL").fetchone()
            self._connection.execute("PRAGMA synchronous = FULL")
            # macOS only: make fsync reach the platter, not just the drive cache.
            self._connection.execute("PRAGMA fullfsync = ON")
            synchronous = self._connection.execute("PRAGMA synchronous").fetchone()
        except sqlite3.Error as error:
            raise StorageError(f"cannot open SQLite event store {self.path}: {error}") from None
        if mode is None or str(mode[0]).lower() != "wal":
            raise StorageError(f"{self.path}: SQLite refused WAL journaling (got {mode!r})")
        if synchronous is None or synchronous[0] != 2:  # 2 = FULL
            raise StorageError(f"{self.path}: SQLite refused synchronous=FULL")

    def _require_log(self) -> None:
        """Before anything writes: the file is an SQLite database holding the log's table (opening
        without ``create`` leaves any other file as it was)."""
        try:
            row = self._connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_entries'"
            ).fetchone()
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorname", None) == "SQLITE_NOTADB":
                raise NoEventStore(f"{self.path} is not an SQLite database") from None
            raise StorageError(f"cannot open SQLite event store {self.path}: {error}") from None
        if row is None:
            raise NoEventStore(f"no event store in {self.path} (an SQLite database without a log)")

    def _create_schema(self) -> None:
        with self._transaction() as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement)
            cursor.execute(
                "INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('store_schema', ?)",
                (str(STORE_SCHEMA_VERSION),),
            )
            row = cursor.execute(
                "SELECT value FROM ledger_meta WHERE key = 'store_schema'"
            ).fetchone()
        if row is None or row[0] != str(STORE_SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise StorageError(
                f"{self.path} has store schema {found}; this build reads {STORE_SCHEMA_VERSION}"
            )

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        """A cursor under the lock (for reads, and under each transaction)."""
        with self._lock:
            self._check_open()
            cursor = self._connection.cursor()
            try:
                yield cursor
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: {error}") from None
            finally:
                cursor.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT (which fsyncs); roll back on any exception."""
        with self._reading() as cursor:
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: cannot start a transaction: {error}") from None
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException as error:
                if self._connection.in_transaction:
                    with suppress(sqlite3.Error):
                        self._connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.IntegrityError):
                    raise ConstraintFailed(f"{self.path}: {error}") from None
                if isinstance(error, sqlite3.Error):
                    raise StorageError(f"{self.path}: {error}") from None
                raise

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the event store {self.path} is closed")

    def _hold_log(self, cursor: Cursor) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` took the database's write lock already."""

    def _existing_ids(self, encoded: list[EncodedEntry]) -> list[str]:
        ids = [entry.command_id for entry in encoded]
        found: set[str] = set()
        with self._reading() as cursor:
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = cursor.execute(
                    f"SELECT command_id FROM ledger_entries WHERE command_id IN ({marks})", chunk
                ).fetchall()
                found.update(str(row[0]) for row in rows)
        return [command_id for command_id in ids if command_id in found]

    def __repr__(self) -> str:
        return f"SqliteEventStore({str(self.path)!r})"
