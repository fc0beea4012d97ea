"""The event store contract: a durable, append-only log of command entries plus snapshots.

What it owns: the shapes the engine appends and reads back, and the rules every backend keeps
(SQLite in ``ledger.sqlite``, PostgreSQL in ``ledger.postgres``; one contract test suite runs over
both).

Shapes
------
* ``Entry`` (what the caller appends): ``command_id`` (the client's idempotency key, 1 to
  ``MAX_COMMAND_ID_LENGTH`` characters), ``command`` (a dict), ``result`` (a dict: what the
  client is told), ``events`` (a list of dicts, possibly empty: a rejected command still records
  its result so that a retry gets the same answer). Payloads are anything ``ledger.codec`` can
  encode (Decimals, enums, tuples, dataclasses, nested dicts); a plain 4-tuple
  ``(command_id, command, result, events)`` is accepted wherever an ``Entry`` is.
* ``StoredEntry`` (what comes back): the same fields decoded (Decimals are ``Decimal``, enums are
  their values, tuples are lists) plus ``seq``, the entry's global sequence number.
* ``Snapshot``: ``seq`` (the state after applying every entry with ``seq' <= seq``),
  ``state_json`` (canonical JSON text from ``codec.canonical_json``) and ``state_hash``
  (``codec.text_hash(state_json)``).

Rules (invariants every backend keeps)
--------------------------------------
1. ``append_batch(entries)`` writes the whole batch in ONE transaction and returns only after it is
   durable (committed with fsync: SQLite ``synchronous=FULL``, PostgreSQL
   ``synchronous_commit=on``). Either every entry of the batch is stored or none is. This is group
   commit: the caller acknowledges each command of the batch only after the call returns.
2. Sequence numbers start at 1 and are gapless and strictly increasing in append order; the
   returned list gives each entry's ``seq``, in the order given.
3. ``command_id`` is unique across the log. Appending an id that is already stored, or the same id
   twice in one batch, raises ``DuplicateCommand`` (a ``Conflict``) naming the ids, and writes
   nothing. ``lookup_command(id)`` returns the stored entry (its ``result`` is the first answer),
   or ``None``.
4. ``read(after_seq)`` yields entries with ``seq > after_seq`` in ``seq`` order, reading in pages
   so a long log is never held in memory at once.
5. ``save_snapshot(seq, state_json, state_hash)`` requires ``0 <= seq <= last_seq()`` and
   ``state_hash == text_hash(state_json)``; saving the same snapshot twice is a no-op, a different
   state at a ``seq`` that already has one raises ``Conflict``. ``latest_snapshot()`` returns the
   one with the highest ``seq`` after re-checking its hash (``InvariantViolation`` on mismatch).
6. Failures of the database itself surface as ``StorageError`` with a readable message; bad
   arguments as ``InvalidInput`` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeAlias

from crossmargin.core.errors import Conflict, InvalidInput, InvariantViolation, StorageError
from crossmargin.ledger.codec import JsonValue, decode_record, encode_record, text_hash

MAX_COMMAND_ID_LENGTH = 200
READ_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One command as the engine appends it: the id, the command, the answer and its events."""

    command_id: str
    command: Mapping[str, Any]
    result: Mapping[str, Any]
    events: Sequence[Any] = ()


EntryLike: TypeAlias = Entry | tuple[str, Mapping[str, Any], Mapping[str, Any], Sequence[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEntry:
    """An entry read back from the log, decoded."""

    seq: int
    command_id: str
    command: dict[str, JsonValue]
    result: dict[str, JsonValue]
    events: list[JsonValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Serialized state after entry ``seq``; ``state_hash == text_hash(state_json)``."""

    seq: int
    state_json: str
    state_hash: str


class DuplicateCommand(Conflict):
    """An append named command ids that are already in the log (or repeated within the batch)."""

    def __init__(self, command_ids: Sequence[str]) -> None:
        self.command_ids = tuple(command_ids)
        shown = ", ".join(repr(command_id) for command_id in self.command_ids[:5])
        more = f" and {len(self.command_ids) - 5} more" if len(self.command_ids) > 5 else ""
        super().__init__(
            "duplicate_command_id",
            f"command id {shown}{more} already recorded; nothing from this batch was written",
        )


class EventStore(Protocol):
    """The durable log every backend implements (see the module docstring for the rules)."""

    def append_batch(self, entries: Sequence[EntryLike]) -> list[int]: ...

    def read(self, after_seq: int = 0) -> Iterator[StoredEntry]: ...

    def lookup_command(self, command_id: str) -> StoredEntry | None: ...

    def last_seq(self) -> int: ...

    def save_snapshot(self, seq: int, state_json: str, state_hash: str) -> None: ...

    def latest_snapshot(self) -> Snapshot | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True, slots=True)
class EncodedEntry:
    """An entry validated and encoded for writing: the row every backend inserts."""

    command_id: str
    command_text: str
    result_text: str
    events_text: str


def _as_entry(item: object, index: int) -> Entry:
    if isinstance(item, Entry):
        return item
    if isinstance(item, tuple) and len(item) == 4:
        command_id, command, result, events = item
        return Entry(command_id=command_id, command=command, result=result, events=events)
    raise InvalidInput(
        f"entries[{index}]", "expected an Entry or (command_id, command, result, events)"
    )


def encode_entries(entries: Sequence[EntryLike]) -> list[EncodedEntry]:
    """Validate and encode a batch; refuses repeated ids within the batch (``DuplicateCommand``)."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise InvalidInput("entries", "expected a list of entries")
    encoded: list[EncodedEntry] = []
    seen: set[str] = set()
    repeated: list[str] = []
    for index, item in enumerate(entries):
        entry = _as_entry(item, index)
        field = f"entries[{index}]"
        command_id = validate_command_id(entry.command_id, f"{field}.command_id")
        if command_id in seen:
            repeated.append(command_id)
        seen.add(command_id)
        if not isinstance(entry.command, Mapping):
            raise InvalidInput(f"{field}.command", "expected an object")
        if not isinstance(entry.result, Mapping):
            raise InvalidInput(f"{field}.result", "expected an object")
        if isinstance(entry.events, str | bytes | Mapping) or not isinstance(
            entry.events, Sequence
        ):
            raise InvalidInput(f"{field}.events", "expected a list of events")
        encoded.append(
            EncodedEntry(
                command_id=command_id,
                command_text=encode_record(entry.command),
                result_text=encode_record(entry.result),
                events_text=encode_record(list(entry.events)),
            )
        )
    if repeated:
        raise DuplicateCommand(repeated)
    return encoded


def validate_command_id(command_id: object, field: str = "command_id") -> str:
    if not isinstance(command_id, str):
        raise InvalidInput(field, f"expected a string, got {type(command_id).__name__}")
    if not command_id or len(command_id) > MAX_COMMAND_ID_LENGTH:
        raise InvalidInput(field, f"must be 1 to {MAX_COMMAND_ID_LENGTH} characters")
    return command_id


def decode_entry(
    seq: int, command_id: str, command_text: str, result_text: str, events_text: str
) -> StoredEntry:
    """Rebuild a ``StoredEntry`` from one stored row."""
    command = decode_record(command_text)
    result = decode_record(result_text)
    events = decode_record(events_text)
    if (
        not isinstance(command, dict)
        or not isinstance(result, dict)
        or not isinstance(events, list)
    ):
        raise StorageError(f"entry {seq} is not shaped command/result/events")
    return StoredEntry(
        seq=seq, command_id=command_id, command=command, result=result, events=events
    )


def validate_snapshot(seq: object, state_json: object, state_hash: object, last_seq: int) -> None:
    """Check the arguments of ``save_snapshot`` against rule 5."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidInput("seq", "expected an integer")
    if not 0 <= seq <= last_seq:
        raise InvalidInput("seq", f"must be between 0 and the last seq {last_seq}, got {seq}")
    if not isinstance(state_json, str):
        raise InvalidInput("state_json", "expected JSON text")
    if not isinstance(state_hash, str):
        raise InvalidInput("state_hash", "expected a hex digest")
    if text_hash(state_json) != state_hash:
        raise InvalidInput("state_hash", "does not match the SHA-256 of state_json")


def snapshot_from_row(row: Sequence[Any] | None) -> Snapshot | None:
    """The snapshot of a ``(seq, state, state_hash)`` row, its hash re-checked (rule 5)."""
    if row is None:
        return None
    seq, state_json, stored_hash = int(row[0]), str(row[1]), str(row[2])
    if text_hash(state_json) != stored_hash:
        raise InvariantViolation(f"snapshot at seq {seq} does not match its stored hash")
    return Snapshot(seq=seq, state_json=state_json, state_hash=stored_hash)


def validate_after_seq(after_seq: object) -> int:
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        raise InvalidInput("after_seq", "expected a non-negative integer")
    return after_seq
