"""PostgreSQL-only behaviour of the event store: sessions are durable and survive a dropped link."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from crossmargin.core.errors import StorageError
from crossmargin.ledger import open_store
from crossmargin.ledger.postgres import PostgresEventStore, redact_url
from tests.contract.backends import Backend, drop_postgres_schema, new_postgres_backend


@pytest.fixture
def postgres() -> Iterator[Backend]:
    backend = new_postgres_backend()
    try:
        yield backend
    finally:
        drop_postgres_schema(backend)


def _session_setting(store: PostgresEventStore, name: str) -> str:
    with store._reading() as cursor:
        cursor.execute("SELECT current_setting(%s)", (name,))
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def test_the_session_commits_synchronously_inside_its_own_schema(postgres: Backend) -> None:
    store = open_store(postgres.url, schema=postgres.schema)
    try:
        assert isinstance(store, PostgresEventStore)
        assert _session_setting(store, "synchronous_commit") == "on"
        assert _session_setting(store, "search_path").strip('"') == postgres.schema
        assert store.server_fsync is True
    finally:
        store.close()


def test_a_dropped_connection_fails_one_call_and_the_next_call_reconnects(
    postgres: Backend,
) -> None:
    store = open_store(postgres.url, schema=postgres.schema)
    try:
        assert store.append_batch([("before", {}, {}, [])]) == [1]
        with store._reading() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            row = cursor.fetchone()
        assert row is not None
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        with pytest.raises(StorageError):
            store.append_batch([("lost", {}, {}, [])])
        assert store.append_batch([("after", {}, {}, [])]) == [2]
        assert [entry.command_id for entry in store.read()] == ["before", "after"]
        assert _session_setting(store, "synchronous_commit") == "on"
    finally:
        store.close()


def test_the_password_is_hidden_in_the_store_description() -> None:
    assert redact_url("postgresql://me:hunter2@db.internal:5433/x") == (
        "postgresql://me:***@db.internal:5433/x"
    )
    assert redact_url("postgresql://db.internal/x") == "postgresql://db.internal/x"
