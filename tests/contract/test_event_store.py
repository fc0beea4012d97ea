"""One contract suite, run against every EventStore backend (SQLite file, PostgreSQL schema).

Each test states one rule from ``crossmargin.ledger.store``; the ``backend`` fixture runs it once
per implementation.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO

import pytest

from crossmargin.core.errors import (
    Conflict,
    InvalidInput,
    InvariantViolation,
    NoEventStore,
    StorageError,
)
from crossmargin.ledger import DuplicateCommand, Entry, EventStore
from crossmargin.ledger.codec import canonical_json, text_hash
from crossmargin.ledger.store import READ_PAGE_SIZE
from tests.contract.backends import Backend

CRASH_WRITER = Path(__file__).with_name("crash_writer.py")


class Colour(Enum):
    RED = "red"


def entry(command_id: str, amount: str = "1.25", events: int = 1) -> Entry:
    return Entry(
        command_id=command_id,
        command={"kind": "deposit", "account": "alice", "amount": Decimal(amount)},
        result={"accepted": True, "balance": Decimal(amount)},
        events=[
            {"type": "deposited", "index": index, "amount": Decimal(amount)}
            for index in range(events)
        ],
    )


def test_an_empty_store_has_no_entries_and_no_snapshot(store: EventStore) -> None:
    assert store.last_seq() == 0
    assert list(store.read()) == []
    assert store.latest_snapshot() is None
    assert store.lookup_command("nothing") is None


def test_sequence_numbers_start_at_one_and_are_gapless_across_batches(store: EventStore) -> None:
    first = store.append_batch([entry("a"), entry("b"), entry("c")])
    second = store.append_batch([entry("d")])
    third = store.append_batch([entry("e"), entry("f")])
    assert first + second + third == [1, 2, 3, 4, 5, 6]
    assert store.last_seq() == 6
    assert [record.seq for record in store.read()] == [1, 2, 3, 4, 5, 6]
    assert [record.command_id for record in store.read()] == ["a", "b", "c", "d", "e", "f"]


def test_payloads_come_back_exactly_with_decimals_as_decimals(store: EventStore) -> None:
    command = {
        "amount": Decimal("0.000000012345678901234567890"),
        "price": Decimal("-71200.811450"),
        "colour": Colour.RED,
        "path": ("x", 1, True, None),
        "label": "1.5",
        "nested": {"list": [Decimal("1E+3"), {"deep": Decimal("0")}], "unicode": "café €"},
    }
    store.append_batch([Entry(command_id="c1", command=command, result={}, events=[])])
    (record,) = store.read()
    assert record.command == {
        "amount": Decimal("1.2345678901234567890E-8"),
        "price": Decimal("-71200.81145"),
        "colour": "red",
        "path": ["x", 1, True, None],
        "label": "1.5",
        "nested": {"list": [Decimal(1000), {"deep": Decimal(0)}], "unicode": "café €"},
    }
    assert isinstance(record.command["amount"], Decimal)
    assert isinstance(record.command["label"], str)
    assert record.result == {}
    assert record.events == []


def test_read_after_seq_returns_only_later_entries_in_order(store: EventStore) -> None:
    store.append_batch([entry(f"id-{index}") for index in range(10)])
    assert [record.seq for record in store.read(after_seq=7)] == [8, 9, 10]
    assert list(store.read(after_seq=10)) == []
    assert list(store.read(after_seq=99)) == []


def test_read_pages_through_a_log_longer_than_one_page(store: EventStore) -> None:
    count = READ_PAGE_SIZE * 2 + 7
    store.append_batch([entry(f"id-{index}", amount=str(index)) for index in range(count)])
    records = list(store.read())
    assert [record.seq for record in records] == list(range(1, count + 1))
    assert [record.command["amount"] for record in records] == [Decimal(i) for i in range(count)]


def test_read_rejects_a_negative_position(store: EventStore) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.read(after_seq=-1)
    assert raised.value.field == "after_seq"


def test_lookup_returns_the_first_result_for_a_command_id(store: EventStore) -> None:
    store.append_batch([entry("first", amount="10"), entry("second", amount="20")])
    found = store.lookup_command("second")
    assert found is not None
    assert found.seq == 2
    assert found.result == {"accepted": True, "balance": Decimal(20)}
    assert found.events == [{"type": "deposited", "index": 0, "amount": Decimal(20)}]


def test_a_stored_command_id_makes_the_whole_batch_fail_and_write_nothing(
    store: EventStore,
) -> None:
    store.append_batch([entry("kept", amount="1")])
    with pytest.raises(DuplicateCommand) as raised:
        store.append_batch([entry("new-1"), entry("kept", amount="999"), entry("new-2")])
    assert raised.value.command_ids == ("kept",)
    assert isinstance(raised.value, Conflict)
    assert "kept" in str(raised.value)
    assert store.last_seq() == 1
    assert store.lookup_command("new-1") is None
    assert store.lookup_command("new-2") is None
    kept = store.lookup_command("kept")
    assert kept is not None
    assert kept.result["balance"] == Decimal(1)
    assert store.append_batch([entry("new-1")]) == [2]


def test_a_command_id_repeated_within_one_batch_writes_nothing(store: EventStore) -> None:
    with pytest.raises(DuplicateCommand) as raised:
        store.append_batch([entry("x"), entry("y"), entry("x")])
    assert raised.value.command_ids == ("x",)
    assert store.last_seq() == 0
    assert store.lookup_command("y") is None


def test_an_empty_batch_writes_nothing(store: EventStore) -> None:
    assert store.append_batch([]) == []
    assert store.last_seq() == 0


def test_plain_tuples_are_accepted_as_entries(store: EventStore) -> None:
    seqs = store.append_batch([("t1", {"a": 1}, {"ok": True}, [{"e": 1}])])
    assert seqs == [1]
    found = store.lookup_command("t1")
    assert found is not None
    assert (found.command, found.result, found.events) == ({"a": 1}, {"ok": True}, [{"e": 1}])


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (Entry(command_id="", command={}, result={}), "entries[0].command_id"),
        (Entry(command_id="x" * 201, command={}, result={}), "entries[0].command_id"),
        (Entry(command_id="f", command={"price": 1.5}, result={}), "$.price"),
        (Entry(command_id="n", command={}, result={"v": Decimal("NaN")}), "$.v"),
        (Entry(command_id="e", command={}, result={}, events="oops"), "entries[0].events"),
        (Entry(command_id="d", command={"$decimal": "1"}, result={}), "$.$decimal"),
    ],
)
def test_malformed_entries_name_the_field_and_write_nothing(
    store: EventStore, bad: Entry, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.append_batch([bad])
    assert raised.value.field == field
    assert store.last_seq() == 0


def test_entries_survive_closing_and_reopening(backend: Backend) -> None:
    first = backend.open()
    first.append_batch([entry("a", amount="3.5"), entry("b")])
    first.save_snapshot(
        1, canonical_json({"alice": Decimal("3.5")}), text_hash('{"alice":{"$decimal":"3.5"}}')
    )
    first.close()
    second = backend.open(create=False)
    try:
        assert second.last_seq() == 2
        assert [record.command_id for record in second.read()] == ["a", "b"]
        snapshot = second.latest_snapshot()
        assert snapshot is not None
        assert snapshot.seq == 1
        assert snapshot.state_json == '{"alice":{"$decimal":"3.5"}}'
        assert second.append_batch([entry("c")]) == [3]
    finally:
        second.close()


def test_opening_a_missing_store_without_create_fails(backend: Backend) -> None:
    with pytest.raises(NoEventStore, match="no event store"):
        backend.open(create=False)


def test_a_closed_store_refuses_work(backend: Backend) -> None:
    opened = backend.open()
    opened.close()
    opened.close()
    with pytest.raises(StorageError, match="closed"):
        opened.append_batch([entry("late")])
    with pytest.raises(StorageError, match="closed"):
        opened.last_seq()


def snapshot_of(state: object) -> tuple[str, str]:
    text = canonical_json(state)
    return text, text_hash(text)


def test_the_latest_snapshot_is_the_one_with_the_highest_seq(store: EventStore) -> None:
    store.append_batch([entry(f"id-{index}") for index in range(5)])
    early, early_hash = snapshot_of({"seq": 2})
    late, late_hash = snapshot_of({"seq": 4, "wallet": Decimal("12.5")})
    store.save_snapshot(4, late, late_hash)
    store.save_snapshot(2, early, early_hash)
    snapshot = store.latest_snapshot()
    assert snapshot is not None
    assert (snapshot.seq, snapshot.state_json, snapshot.state_hash) == (4, late, late_hash)


def test_a_snapshot_at_seq_zero_describes_the_empty_log(store: EventStore) -> None:
    text, digest = snapshot_of({})
    store.save_snapshot(0, text, digest)
    snapshot = store.latest_snapshot()
    assert snapshot is not None
    assert snapshot.seq == 0


def test_a_snapshot_beyond_the_log_is_refused(store: EventStore) -> None:
    store.append_batch([entry("a")])
    text, digest = snapshot_of({"x": 1})
    with pytest.raises(InvalidInput) as raised:
        store.save_snapshot(2, text, digest)
    assert raised.value.field == "seq"
    assert store.latest_snapshot() is None


def test_a_snapshot_whose_hash_does_not_match_its_text_is_refused(store: EventStore) -> None:
    store.append_batch([entry("a")])
    text, _ = snapshot_of({"x": 1})
    _, other_hash = snapshot_of({"x": 2})
    with pytest.raises(InvalidInput) as raised:
        store.save_snapshot(1, text, other_hash)
    assert raised.value.field == "state_hash"
    assert store.latest_snapshot() is None


def test_saving_the_same_snapshot_twice_is_harmless_but_a_different_one_conflicts(
    store: EventStore,
) -> None:
    store.append_batch([entry("a")])
    text, digest = snapshot_of({"x": 1})
    store.save_snapshot(1, text, digest)
    store.save_snapshot(1, text, digest)
    other, other_hash = snapshot_of({"x": 2})
    with pytest.raises(Conflict) as raised:
        store.save_snapshot(1, other, other_hash)
    assert raised.value.code == "snapshot_mismatch"
    snapshot = store.latest_snapshot()
    assert snapshot is not None
    assert snapshot.state_json == text


def test_a_tampered_snapshot_is_reported_as_an_invariant_violation(
    backend: Backend, store: EventStore
) -> None:
    store.append_batch([entry("a")])
    text, digest = snapshot_of({"wallet": Decimal(100)})
    store.save_snapshot(1, text, digest)
    backend.execute('UPDATE ledger_snapshots SET state = \'{"wallet":{"$decimal":"1000"}}\'')
    with pytest.raises(InvariantViolation, match="seq 1"):
        store.latest_snapshot()


def test_a_stored_record_with_an_unknown_schema_version_is_refused(
    backend: Backend, store: EventStore
) -> None:
    store.append_batch([entry("a")])
    backend.execute('UPDATE ledger_entries SET command = \'{"body":{},"schema":99}\' WHERE seq = 1')
    with pytest.raises(StorageError, match="schema version 99"):
        list(store.read())


def test_two_writers_on_one_store_keep_sequence_numbers_gapless(backend: Backend) -> None:
    backend.open().close()
    writers = [backend.open(), backend.open()]
    returned: list[list[int]] = [[], []]
    failures: list[BaseException] = []

    def write(number: int) -> None:
        try:
            for batch in range(25):
                entries = [entry(f"w{number}-b{batch}-e{index}") for index in range(3)]
                returned[number].extend(writers[number].append_batch(entries))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert sorted(returned[0] + returned[1]) == list(range(1, 151))
        records = {record.seq: record.command_id for record in writers[0].read()}
        for number in (0, 1):
            stored = [records[seq] for seq in returned[number]]
            assert all(command_id.startswith(f"w{number}-") for command_id in stored)
    finally:
        for writer in writers:
            writer.close()


def _read_lines(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _wait_for(predicate: Callable[[], bool], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _run_and_kill(backend: Backend, round_number: int, delay_seconds: float) -> list[str]:
    """Start the crash writer, let it acknowledge at least one batch, SIGKILL it after the delay."""
    child = subprocess.Popen(
        [sys.executable, str(CRASH_WRITER), backend.url, backend.schema or "", str(round_number)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert child.stdout is not None
    reader = threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    try:
        started = _wait_for(lambda: len(lines) >= 2 or child.poll() is not None, 60)
        assert started, "the crash writer acknowledged nothing within 60 s"
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        time.sleep(delay_seconds)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reader.join(timeout=10)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return lines


@pytest.mark.slow
def test_a_writer_killed_at_random_moments_loses_no_acknowledged_batch_and_leaves_no_partial_one(
    backend: Backend,
) -> None:
    backend.open().close()
    rng = random.Random(20261125)
    rounds = 6
    acknowledged: dict[tuple[int, int], tuple[int, int, int]] = {}
    last_acknowledged: dict[int, int] = {}
    for round_number in range(rounds):
        lines = _run_and_kill(backend, round_number, delay_seconds=rng.uniform(0.0, 0.25))
        complete = [line.split() for line in lines if line.endswith("\n") and line[0].isdigit()]
        assert complete, f"round {round_number}: no batch was acknowledged before the kill"
        for fields in complete:
            round_field, batch, size, first, last = (int(value) for value in fields)
            assert round_field == round_number
            acknowledged[(round_field, batch)] = (size, first, last)
        last_acknowledged[round_number] = max(int(fields[1]) for fields in complete)

    reopened = backend.open(create=False)
    try:
        records = list(reopened.read())
        assert reopened.append_batch([entry("after-the-crashes")]) == [len(records) + 1]
    finally:
        reopened.close()

    assert [record.seq for record in records] == list(range(1, len(records) + 1))
    batches: dict[tuple[int, int], list[int]] = defaultdict(list)
    sizes: dict[tuple[int, int], int] = {}
    for record in records:
        key = (int(record.command["round"]), int(record.command["batch"]))
        batches[key].append(record.seq)
        sizes[key] = int(record.command["size"])
    for key, seqs in batches.items():
        assert len(seqs) == sizes[key], f"partial batch {key}: {len(seqs)} of {sizes[key]} rows"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"batch {key} is not contiguous"
    for key, (size, first, last) in acknowledged.items():
        assert key in batches, f"acknowledged batch {key} was lost"
        assert batches[key] == list(range(first, last + 1))
        assert size == len(batches[key])
    for round_number in range(rounds):
        stored = sorted(batch for (number, batch) in batches if number == round_number)
        # Everything acknowledged, plus at most the one batch committed just before the kill.
        assert stored[: last_acknowledged[round_number] + 1] == list(
            range(last_acknowledged[round_number] + 1)
        )
        assert len(stored) - (last_acknowledged[round_number] + 1) in (0, 1)
