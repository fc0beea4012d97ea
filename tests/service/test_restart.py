"""Restart resumes from the log: same state hash, same account, idempotency kept, on SQLite and
PostgreSQL (the PostgreSQL case needs CROSSMARGIN_TEST_POSTGRES_URL, as the contract tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crossmargin.service.keys import KeyRing
from tests.contract.backends import Backend, drop_postgres_schema, new_postgres_backend
from tests.service.conftest import populate
from tests.service.server import serve


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield str(tmp_path / "log.db"), None
        return
    backend: Backend = new_postgres_backend()
    try:
        yield backend.url, backend.schema
    finally:
        drop_postgres_schema(backend)


def test_a_restarted_service_resumes_from_the_log(
    database: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = database
    keys = KeyRing(tmp_path / "keys.json")
    with serve(url, schema=schema, keys=keys) as first:
        world = populate(first)
        with first.client(world.alice) as alice:
            body = {"amount": "5", "command_id": "alice-top-up"}
            assert alice.post("/v1/accounts/alice/deposits", json=body).status_code == 200
            view = alice.get("/v1/accounts/alice").json()
        state_hash = first.state_hash()
    with serve(url, schema=schema, keys=KeyRing(tmp_path / "keys.json")) as second:
        assert second.state_hash() == state_hash
        with second.client(world.alice) as alice:
            assert alice.get("/v1/accounts/alice").json() == view
            repeated = alice.post("/v1/accounts/alice/deposits", json=body)
            assert repeated.json()["duplicate"] is True
            assert second.state_hash() == state_hash
            more = alice.post("/v1/accounts/alice/deposits", json={"amount": "1"})
            assert more.status_code == 200
        assert second.state_hash() != state_hash
