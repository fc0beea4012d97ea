"""Fixtures that run every contract test once per event store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crossmargin.ledger import EventStore
from tests.contract.backends import (
    Backend,
    drop_postgres_schema,
    new_postgres_backend,
    sqlite_backend,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield sqlite_backend(tmp_path)
        return
    chosen = new_postgres_backend()
    try:
        yield chosen
    finally:
        drop_postgres_schema(chosen)


@pytest.fixture
def store(backend: Backend) -> Iterator[EventStore]:
    opened = backend.open()
    try:
        yield opened
    finally:
        opened.close()
