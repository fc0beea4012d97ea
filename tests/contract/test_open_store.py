"""Choosing a backend from a database URL, and the errors a bad URL gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.ledger import open_store
from crossmargin.ledger.sqlite import SqliteEventStore


def test_a_plain_path_and_a_sqlite_url_open_the_same_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "cm.db"
    with open_store(str(path)) as first:
        assert isinstance(first, SqliteEventStore)
        first.append_batch([("a", {}, {}, [])])
    with open_store(f"sqlite://{path}", create=False) as second:
        assert second.last_seq() == 1
    with open_store(path, create=False) as third:
        assert third.last_seq() == 1


def test_the_sqlite_file_uses_wal_journaling(tmp_path: Path) -> None:
    path = tmp_path / "cm.db"
    open_store(path).close()
    assert path.read_bytes()[18:20] == b"\x02\x02"  # file format bytes: 2 = WAL


@pytest.mark.parametrize("url", ["", "   ", "sqlite://"])
def test_an_empty_location_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        open_store(url)
    assert raised.value.field == "url"


def test_an_unknown_scheme_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unsupported database scheme 'mysql'"):
        open_store("mysql://user:pw@localhost/db")


def test_a_schema_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        open_store(tmp_path / "x.db", schema="other")
    assert raised.value.field == "schema"


def test_a_sqlite_path_in_a_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        open_store(tmp_path / "missing" / "cm.db")


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not a database, just some words " * 100)
    with pytest.raises(StorageError):
        open_store(path)


def test_an_unreachable_postgres_server_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError) as raised:
        open_store("postgresql://someone:s3cret-word@127.0.0.1:1/nothing")
    message = str(raised.value)
    assert "s3cret-word" not in message
    assert "someone:***@127.0.0.1:1" in message


def test_a_malformed_postgres_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError) as raised:
        open_store("postgresql://someone:pw@127.0.0.1:notaport/db")
    assert "pw@" not in str(raised.value)
