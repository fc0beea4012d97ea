"""The key ring: hashed at rest, operator key from the environment or generated once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossmargin.core.errors import Forbidden, InvalidInput, StorageError, Unauthorized
from crossmargin.service.keys import KeyRing, key_hash


def test_a_generated_operator_key_is_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing(path)
    generated = ring.ensure_operator(None)
    assert generated is not None
    assert generated not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    again = KeyRing(path)
    assert again.ensure_operator(None) is None
    assert again.resolve(generated).operator


def test_an_operator_key_from_the_environment_replaces_the_stored_one(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys.json")
    old = ring.ensure_operator(None)
    assert ring.ensure_operator("a-key-given-by-the-environment") is None
    assert ring.resolve("a-key-given-by-the-environment").operator
    with pytest.raises(Unauthorized):
        ring.resolve(old)
    with pytest.raises(InvalidInput) as short:
        ring.ensure_operator("short")
    assert short.value.field == "CROSSMARGIN_OPERATOR_KEY"


def test_an_account_key_is_scoped_and_a_new_one_revokes_the_old(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing(path)
    first = ring.issue("alice")
    who = ring.resolve(first)
    assert not who.operator and who.account == "alice"
    who.require_account("alice")
    with pytest.raises(Forbidden):
        who.require_account("bob")
    with pytest.raises(Forbidden):
        who.require_operator()
    second = KeyRing(path).issue("alice")
    reloaded = KeyRing(path)
    assert reloaded.resolve(second).account == "alice"
    with pytest.raises(Unauthorized):
        reloaded.resolve(first)


@pytest.mark.parametrize("key", [None, "", "op_guess"])
def test_a_missing_or_unknown_key_is_unauthorized(key: str | None) -> None:
    ring = KeyRing(None)
    ring.ensure_operator("operator-key-0123456789")
    with pytest.raises(Unauthorized):
        ring.resolve(key)


def test_replacing_or_revoking_a_key_tells_the_listeners_which_key_stopped(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys.json")
    heard: list[frozenset[str]] = []
    stop = ring.on_revoke(heard.append)
    first = ring.issue("alice")
    assert heard == []  # nothing stopped working yet
    second = ring.issue("alice")
    assert heard == [frozenset({key_hash(first)})]
    assert not ring.current(key_hash(first)) and ring.current(key_hash(second))
    assert ring.revoke("alice") is True
    assert heard[-1] == frozenset({key_hash(second)})
    with pytest.raises(Unauthorized):
        KeyRing(tmp_path / "keys.json").resolve(second)
    assert ring.revoke("alice") is False and len(heard) == 2  # no key left: nothing to tell
    stop()
    ring.issue("bob")
    ring.issue("bob")
    assert len(heard) == 2


def test_a_key_that_cannot_be_saved_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing(path)
    heard: list[frozenset[str]] = []
    ring.on_revoke(heard.append)
    first = ring.issue("alice")

    def refuse(*_: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match="cannot write the key file"):
        ring.issue("alice")
    with pytest.raises(StorageError):
        ring.revoke("alice")
    assert ring.resolve(first).account == "alice"  # the old key still works
    assert heard == []  # and no socket was told otherwise
    monkeypatch.undo()
    assert KeyRing(path).resolve(first).account == "alice"


def test_a_key_file_whose_folder_runs_into_a_file_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "var"
    blocker.write_text("a file where the folder should be\n")
    ring = KeyRing(blocker / "keys" / "keys.json")
    with pytest.raises(StorageError, match="cannot write the key file"):
        ring.issue("alice")
    with pytest.raises(StorageError, match="cannot write the key file"):
        ring.ensure_operator(None)
    assert blocker.read_text() == "a file where the folder should be\n"
