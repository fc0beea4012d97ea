"""What the service leaves on disk is its owner's only (0600); /docs works with no network."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from crossmargin.service.keys import KeyRing
from tests.service.conftest import World, populate
from tests.service.server import serve


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_log_its_journal_files_and_the_key_file_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    key_file = tmp_path / "keys.json"
    with serve(str(database), keys=KeyRing(key_file)) as server:
        world = populate(server)
        with server.client(world.alice) as alice:
            alice.post("/v1/accounts/alice/deposits", json={"amount": "1"}).raise_for_status()
        written = [database, database.with_name("log.db-wal"), database.with_name("log.db-shm")]
        written.append(key_file)
        for path in written:
            assert path.exists(), path
            assert mode(path) & 0o077 == 0, (path.name, oct(mode(path)))
    leftovers = [p.name for p in tmp_path.iterdir() if mode(p) & 0o077 and p.is_file()]
    assert leftovers == []


def test_docs_load_nothing_from_another_host(world: World) -> None:
    with world.server.client(None) as anonymous:
        page = anonymous.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        references = re.findall(r"""(?:src|href|url)\s*[:=]\s*["']([^"']+)["']""", page.text)
        assert references, page.text
        for reference in references:
            assert not re.match(r"^([a-z][a-z0-9+.-]*:)?//", reference, re.IGNORECASE), reference
            assert anonymous.get(reference).status_code == 200, reference
        assert anonymous.get("/redoc").status_code == 404  # ReDoc would load from a CDN
