"""An event store held in memory, for simulations: the EventStore contract without durability.

A backtest runs the real engine (decide -> append -> commit) over a log nobody needs to keep, and
an fsync per command would make a three-week episode take minutes. This store keeps every rule of
:mod:`crossmargin.ledger.store` except durability (rule 1's "durable" part): entries are validated
and encoded with the ledger's own codec (so a value SQLite would refuse is refused here too),
sequence numbers are gapless from 1, command ids are unique, snapshots are checked the same way.

Entries are decoded once, at append, and handed back by :meth:`read` without copying (callers
must not mutate them). ``crossmargin backtest --store FILE`` swaps in a SQLite store instead,
so the log of a backtest can be replayed and checked like any other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Self

from crossmargin.core.errors import Conflict, InvariantViolation, StorageError
from crossmargin.ledger.codec import text_hash
from crossmargin.ledger.store import (
    DuplicateCommand,
    EntryLike,
    Snapshot,
    StoredEntry,
    decode_entry,
    encode_entries,
    validate_after_seq,
    validate_command_id,
    validate_snapshot,
)


class MemoryEventStore:
    """The log in a Python list; lost when the process ends."""

    def __init__(self) -> None:
        self._entries: list[StoredEntry] = []
        self._by_id: dict[str, StoredEntry] = {}
        self._snapshots: dict[int, Snapshot] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the in-memory event store is closed")

    def append_batch(self, entries: Sequence[EntryLike]) -> list[int]:
        self._check_open()
        encoded = encode_entries(entries)
        existing = [item.command_id for item in encoded if item.command_id in self._by_id]
        if existing:
            raise DuplicateCommand(existing)
        seqs = []
        for item in encoded:
            seq = len(self._entries) + 1
            stored = decode_entry(
                seq, item.command_id, item.command_text, item.result_text, item.events_text
            )
            self._entries.append(stored)
            self._by_id[item.command_id] = stored
            seqs.append(seq)
        return seqs

    def read(self, after_seq: int = 0) -> Iterator[StoredEntry]:
        self._check_open()
        start = validate_after_seq(after_seq)
        return iter(self._entries[start:])

    def lookup_command(self, command_id: str) -> StoredEntry | None:
        self._check_open()
        return self._by_id.get(validate_command_id(command_id))

    def last_seq(self) -> int:
        self._check_open()
        return len(self._entries)

    def save_snapshot(self, seq: int, state_json: str, state_hash: str) -> None:
        self._check_open()
        validate_snapshot(seq, state_json, state_hash, len(self._entries))
        earlier = self._snapshots.get(seq)
        if earlier is not None:
            if earlier.state_json != state_json:
                raise Conflict("snapshot-exists", f"a different snapshot exists at seq {seq}")
            return
        self._snapshots[seq] = Snapshot(seq=seq, state_json=state_json, state_hash=state_hash)

    def latest_snapshot(self) -> Snapshot | None:
        self._check_open()
        if not self._snapshots:
            return None
        snapshot = self._snapshots[max(self._snapshots)]
        if text_hash(snapshot.state_json) != snapshot.state_hash:
            raise InvariantViolation(f"snapshot at seq {snapshot.seq} does not match its hash")
        return snapshot

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["MemoryEventStore"]
