"""Exchange credentials: derived secrets, hashed keys on disk, revocation, the master secret."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.service.binance.credentials import ExchangeCredentials, load_master


def test_the_secret_is_the_master_keyed_hmac_of_the_api_key(tmp_path: Path) -> None:
    store = ExchangeCredentials.open(tmp_path)
    issued = store.issue("alice")
    master = bytes.fromhex((tmp_path / "exchange-master.key").read_text())
    expected = hmac.new(master, issued.api_key.encode(), hashlib.sha256).hexdigest()
    assert issued.secret == expected == store.secret_for(issued.api_key)
    assert len(issued.api_key) == 64 and issued.api_key.isalnum()
    assert store.account_of(issued.api_key) == "alice"


def test_files_hold_no_key_and_no_secret_and_are_owner_only(tmp_path: Path) -> None:
    issued = ExchangeCredentials.open(tmp_path).issue("alice")
    keys = (tmp_path / "exchange-keys.json").read_text()
    assert issued.api_key not in keys and issued.secret not in keys
    assert hashlib.sha256(issued.api_key.encode()).hexdigest() in keys
    for name in ("exchange-keys.json", "exchange-master.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_issuing_again_revokes_the_previous_credentials(tmp_path: Path) -> None:
    store = ExchangeCredentials.open(tmp_path)
    first, other = store.issue("alice"), store.issue("bob")
    second = store.issue("alice")
    assert store.account_of(first.api_key) is None
    assert store.account_of(second.api_key) == "alice"
    assert store.account_of(other.api_key) == "bob"


def test_credentials_survive_a_restart_with_the_same_master(tmp_path: Path) -> None:
    issued = ExchangeCredentials.open(tmp_path).issue("alice")
    reopened = ExchangeCredentials.open(tmp_path)
    assert reopened.account_of(issued.api_key) == "alice"
    assert reopened.secret_for(issued.api_key) == issued.secret


def test_a_master_from_the_environment_replaces_the_file(tmp_path: Path) -> None:
    given = "ab" * 32
    store = ExchangeCredentials.open(tmp_path, given)
    issued = store.issue("alice")
    assert not (tmp_path / "exchange-master.key").exists()
    assert (
        issued.secret
        == hmac.new(bytes.fromhex(given), issued.api_key.encode(), hashlib.sha256).hexdigest()
    )
    with pytest.raises(InvalidInput, match="64 hex digits"):
        ExchangeCredentials.open(tmp_path, "not-hex")


def test_a_damaged_key_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "exchange-keys.json").write_text("{not json")
    with pytest.raises(StorageError, match="exchange key file"):
        ExchangeCredentials.open(tmp_path)
    (tmp_path / "exchange-master.key").write_text("short")
    with pytest.raises(InvalidInput):
        load_master(tmp_path / "exchange-master.key", None)


def test_credentials_that_cannot_be_saved_are_not_issued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ExchangeCredentials.open(tmp_path)
    first = store.issue("alice")

    def refuse(*_: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match=r"exchange-keys\.json"):
        store.issue("alice")
    assert store.account_of(first.api_key) == "alice"  # the previous credentials still work
    monkeypatch.undo()
    assert ExchangeCredentials.open(tmp_path).account_of(first.api_key) == "alice"
