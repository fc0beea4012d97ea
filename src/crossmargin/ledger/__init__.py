"""The durable event log: codec, the EventStore contract, SQLite and PostgreSQL backends.

``open_store(url)`` picks the backend from a database URL:

* a plain filesystem path, or ``sqlite://`` followed by a path (``sqlite:///var/lib/cm.db`` is the
  absolute path ``/var/lib/cm.db``; ``sqlite://cm.db`` is relative), opens ``SqliteEventStore``;
* ``postgresql://...`` or ``postgres://...`` (a libpq URL) opens ``PostgresEventStore``; psycopg is
  imported only then, so the embedded default needs no PostgreSQL client library.

Any other scheme is ``InvalidInput("url", ...)``; a database that cannot be opened or reached is
``StorageError`` with a readable message (a password in the URL is never echoed).
"""

from __future__ import annotations

import os
from pathlib import Path

from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.ledger.store import (
    DuplicateCommand,
    Entry,
    EventStore,
    Snapshot,
    StoredEntry,
)

SQLITE_PREFIX = "sqlite://"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def open_store(
    url: str | os.PathLike[str], *, create: bool = True, schema: str | None = None
) -> EventStore:
    """Open the event store named by ``url`` (see the module docstring).

    ``create=False`` refuses to create a new, empty store (for ``replay``/``check`` on a log that
    must already exist). ``schema`` is the PostgreSQL schema holding the tables (default
    ``public``); it is refused for SQLite.
    """
    if isinstance(url, os.PathLike):
        return _open_sqlite(Path(url), create=create, schema=schema)
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url", "expected a database URL or a file path")
    text = url.strip()
    if text.startswith(POSTGRES_PREFIXES):
        try:
            from crossmargin.ledger.postgres import DEFAULT_SCHEMA, PostgresEventStore
        except ImportError:
            raise StorageError(
                "PostgreSQL support needs psycopg 3: install crossmargin[postgres]"
            ) from None
        return PostgresEventStore(text, schema=schema or DEFAULT_SCHEMA, create=create)
    if text.startswith(SQLITE_PREFIX):
        path = text[len(SQLITE_PREFIX) :]
        if not path:
            raise InvalidInput("url", "sqlite:// needs a file path, e.g. sqlite:///var/lib/cm.db")
        return _open_sqlite(Path(path), create=create, schema=schema)
    scheme, separator, _ = text.partition("://")
    if separator and scheme.replace("+", "").isalnum():
        raise InvalidInput(
            "url", f"unsupported database scheme {scheme!r}; use a path, sqlite:// or postgresql://"
        )
    return _open_sqlite(Path(text), create=create, schema=schema)


def _open_sqlite(path: Path, *, create: bool, schema: str | None) -> EventStore:
    from crossmargin.ledger.sqlite import SqliteEventStore

    if schema is not None:
        raise InvalidInput("schema", "only PostgreSQL stores have a schema")
    return SqliteEventStore(path, create=create)


__all__ = [
    "DuplicateCommand",
    "Entry",
    "EventStore",
    "Snapshot",
    "StoredEntry",
    "open_store",
]
