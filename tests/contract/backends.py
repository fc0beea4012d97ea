"""The event store backends under test: a fresh SQLite file, a fresh PostgreSQL schema.

``POSTGRES_URL_ENV`` names the server; unset, the PostgreSQL cases skip locally and fail in CI
(``CI=true``), because there the server is part of the suite (``.ci/run`` starts it).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from crossmargin.ledger import EventStore, open_store

POSTGRES_URL_ENV = "CROSSMARGIN_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def postgres_url() -> str:
    """The test server's URL, or skip (locally) / fail (in CI) when there is none."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    if in_ci():
        pytest.fail(
            f"CI=true but {POSTGRES_URL_ENV} is unset: the PostgreSQL contract tests must run in "
            "CI (.ci/run installs and starts the server and sets it)"
        )
    pytest.skip(
        f"PostgreSQL contract tests need {POSTGRES_URL_ENV}=postgresql://USER:PASS@HOST:PORT/DB "
        "(.ci/run sets it up)"
    )


@dataclass(frozen=True)
class Backend:
    """Where one test's store lives; ``open`` may be called again to reopen the same store."""

    name: str
    url: str
    schema: str | None

    def open(self, *, create: bool = True) -> EventStore:
        return open_store(self.url, schema=self.schema, create=create)

    def execute(self, statement: str) -> None:
        """Run raw SQL against the store's tables, bypassing the store (to simulate damage)."""
        if self.name == "sqlite":
            connection = sqlite3.connect(self.url, isolation_level=None)
            try:
                connection.execute(statement)
            finally:
                connection.close()
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema or "public"))
            )
            connection.execute(statement.encode())


def sqlite_backend(tmp_path: Path) -> Backend:
    return Backend(name="sqlite", url=str(tmp_path / "ledger.db"), schema=None)


def new_postgres_backend() -> Backend:
    return Backend(name="postgresql", url=postgres_url(), schema=f"cm_test_{uuid.uuid4().hex[:16]}")


def drop_postgres_schema(backend: Backend) -> None:
    import psycopg
    from psycopg import sql

    assert backend.schema is not None
    with psycopg.connect(backend.url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(backend.schema))
        )
