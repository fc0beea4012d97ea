"""The event store over SQL: what the SQLite and PostgreSQL backends share.

What it owns: ``SqlEventStore``, the rules of ``ledger.store`` written once as SQL over a DB-API
cursor. Both backends keep the same three tables (``ledger_meta``, ``ledger_entries``,
``ledger_snapshots``) and run the same statements; each supplies only what differs:

* ``PARAM``: its placeholder (``?`` for sqlite3, ``%s`` for psycopg);
* ``_connection`` (used under ``_lock``; ``_closed`` once closed);
* ``_transaction()``: one durable transaction (COMMIT on exit, ROLLBACK on any exception), a
  unique-constraint failure raised as ``ConstraintFailed`` and any other database error as
  ``StorageError``;
* ``_reading()``: a cursor for reads outside a write transaction, database errors raised as
  ``StorageError``;
* ``_hold_log(cursor)``: whatever keeps ``MAX(seq)`` from moving until COMMIT, so sequence numbers
  stay gapless and a snapshot's seq is checked against the log it is saved with;
* ``_existing_ids(encoded)``: which of a batch's command ids the log already holds.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol, Self

from crossmargin.core.errors import Conflict, StorageError
from crossmargin.ledger.store import (
    READ_PAGE_SIZE,
    DuplicateCommand,
    EncodedEntry,
    EntryLike,
    Snapshot,
    StoredEntry,
    decode_entry,
    encode_entries,
    snapshot_from_row,
    validate_after_seq,
    validate_command_id,
    validate_snapshot,
)

SELECT_ENTRY = "SELECT seq, command_id, command, result, events FROM ledger_entries"
_MAX_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM ledger_entries"


class ConstraintFailed(StorageError):
    """A unique constraint (the command id) refused a write transaction; it was rolled back."""


class Cursor(Protocol):
    """The DB-API cursor calls ``SqlEventStore`` makes (``sqlite3`` and ``psycopg`` have them)."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, query: str, rows: Iterable[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class _Connection(Protocol):
    def close(self) -> None: ...


def _max_seq(cursor: Cursor) -> int:
    cursor.execute(_MAX_SEQ)
    row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


class SqlEventStore(ABC):
    """``ledger.store.EventStore`` over SQL (see the module docstring for what a backend adds)."""

    PARAM: ClassVar[str]
    _lock: threading.RLock
    _closed: bool
    _connection: _Connection

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]: ...

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Cursor]: ...

    @abstractmethod
    def _hold_log(self, cursor: Cursor) -> None: ...

    @abstractmethod
    def _existing_ids(self, encoded: list[EncodedEntry]) -> list[str]: ...

    def append_batch(self, entries: Sequence[EntryLike]) -> list[int]:
        encoded = encode_entries(entries)
        if not encoded:
            return []
        p = self.PARAM
        try:
            with self._transaction() as cursor:
                self._hold_log(cursor)
                first = _max_seq(cursor) + 1
                cursor.executemany(
                    "INSERT INTO ledger_entries (seq, command_id, command, result, events)"
                    f" VALUES ({p}, {p}, {p}, {p}, {p})",
                    [
                        (first + offset, e.command_id, e.command_text, e.result_text, e.events_text)
                        for offset, e in enumerate(encoded)
                    ],
                )
        except ConstraintFailed as error:
            duplicates = self._existing_ids(encoded)
            if duplicates:
                raise DuplicateCommand(duplicates) from None
            raise StorageError(str(error)) from None
        return list(range(first, first + len(encoded)))

    def read(self, after_seq: int = 0) -> Iterator[StoredEntry]:
        return self._pages(validate_after_seq(after_seq))

    def _pages(self, after_seq: int) -> Iterator[StoredEntry]:
        p = self.PARAM
        cursor_seq = after_seq
        while True:
            with self._reading() as cursor:
                cursor.execute(
                    f"{SELECT_ENTRY} WHERE seq > {p} ORDER BY seq LIMIT {p}",
                    (cursor_seq, READ_PAGE_SIZE),
                )
                rows = cursor.fetchall()
            for row in rows:
                yield decode_entry(int(row[0]), row[1], row[2], row[3], row[4])
            if len(rows) < READ_PAGE_SIZE:
                return
            cursor_seq = int(rows[-1][0])

    def lookup_command(self, command_id: str) -> StoredEntry | None:
        validate_command_id(command_id)
        with self._reading() as cursor:
            cursor.execute(f"{SELECT_ENTRY} WHERE command_id = {self.PARAM}", (command_id,))
            row = cursor.fetchone()
        if row is None:
            return None
        return decode_entry(int(row[0]), row[1], row[2], row[3], row[4])

    def last_seq(self) -> int:
        with self._reading() as cursor:
            return _max_seq(cursor)

    def save_snapshot(self, seq: int, state_json: str, state_hash: str) -> None:
        p = self.PARAM
        with self._transaction() as cursor:
            self._hold_log(cursor)  # the seq checked here cannot move until COMMIT
            validate_snapshot(seq, state_json, state_hash, _max_seq(cursor))
            cursor.execute(f"SELECT state_hash FROM ledger_snapshots WHERE seq = {p}", (seq,))
            existing = cursor.fetchone()
            if existing is not None:
                if existing[0] != state_hash:
                    raise Conflict(
                        "snapshot_mismatch",
                        f"a different state is already saved at seq {seq}: replay is not "
                        "deterministic or the log changed",
                    )
                return
            cursor.execute(
                f"INSERT INTO ledger_snapshots (seq, state, state_hash) VALUES ({p}, {p}, {p})",
                (seq, state_json, state_hash),
            )

    def latest_snapshot(self) -> Snapshot | None:
        with self._reading() as cursor:
            cursor.execute(
                "SELECT seq, state, state_hash FROM ledger_snapshots ORDER BY seq DESC LIMIT 1"
            )
            row = cursor.fetchone()
        return snapshot_from_row(row)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
