"""Event store URLs for the engine tests: a fresh SQLite file, a fresh PostgreSQL schema.

The PostgreSQL cases use the server named by ``CROSSMARGIN_TEST_POSTGRES_URL`` (``.ci/run``
starts one and sets it); unset, they skip locally and fail in CI, like the contract tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
