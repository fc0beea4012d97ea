"""The in-memory event store keeps the EventStore rules that do not involve durability."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crossmargin.core.errors import Conflict, InvalidInput, StorageError
from crossmargin.ledger.codec import text_hash
from crossmargin.ledger.store import DuplicateCommand
from crossmargin.sim.memory_store import MemoryEventStore


def test_sequence_numbers_are_gapless_and_payloads_come_back_decoded() -> None:
    store = MemoryEventStore()
    assert store.append_batch([("a", {"x": Decimal("1.50")}, {"ok": True}, [])]) == [1]
    assert store.append_batch([("b", {}, {}, [{"amount": Decimal("2")}]), ("c", {}, {}, [])]) == [
        2,
        3,
    ]
    entries = list(store.read(1))
    assert [e.seq for e in entries] == [2, 3]
    assert entries[0].events == [{"amount": Decimal("2")}]
    found = store.lookup_command("a")
    assert found is not None and found.command == {"x": Decimal("1.5")}
    assert store.last_seq() == 3


def test_a_repeated_command_id_writes_nothing() -> None:
    store = MemoryEventStore()
    store.append_batch([("a", {}, {}, [])])
    with pytest.raises(DuplicateCommand):
        store.append_batch([("b", {}, {}, []), ("a", {}, {}, [])])
    with pytest.raises(DuplicateCommand):
        store.append_batch([("c", {}, {}, []), ("c", {}, {}, [])])
    assert store.last_seq() == 1


def test_floats_are_refused_like_every_store_refuses_them() -> None:
    store = MemoryEventStore()
    with pytest.raises(InvalidInput):
        store.append_batch([("a", {"x": 0.1}, {}, [])])
    assert store.last_seq() == 0


def test_snapshots_are_checked_and_the_latest_is_returned() -> None:
    store = MemoryEventStore()
    store.append_batch([("a", {}, {}, []), ("b", {}, {}, [])])
    store.save_snapshot(1, "{}", text_hash("{}"))
    store.save_snapshot(2, "[]", text_hash("[]"))
    store.save_snapshot(2, "[]", text_hash("[]"))  # the same again: harmless
    latest = store.latest_snapshot()
    assert latest is not None and latest.seq == 2
    with pytest.raises(Conflict):
        store.save_snapshot(2, "{}", text_hash("{}"))
    with pytest.raises(InvalidInput):
        store.save_snapshot(3, "{}", text_hash("{}"))
    with pytest.raises(InvalidInput):
        store.save_snapshot(1, "{}", "0" * 64)


def test_a_closed_store_refuses_work() -> None:
    with MemoryEventStore() as store:
        store.append_batch([("a", {}, {}, [])])
    with pytest.raises(StorageError):
        store.last_seq()
