"""The single writer: load -> decide -> append (durably) -> commit to memory -> answer.

* One writer per log. Commands are decided one after another against the live state; a batch of
  them (group commit) is appended to the event store in ONE durable transaction, and only then
  are the drafts committed to memory and the results returned. Nothing is acknowledged before it
  is durable. If the append fails, memory is untouched (drafts are dropped) and StorageError
  propagates.
* Idempotency: each command's ``command_id`` is its key. A repeated id returns the first result
  and applies nothing. Loading reads every entry's id and result (events only after the
  snapshot), so the check is a dictionary lookup; the store's unique index on the id is the
  backstop (a duplicate that slipped through would fail the append, not apply twice).
* The first entry of a log is ``genesis``: the engine's configuration (venue, symbols, matching),
  so a restart cannot silently change the rules the log was written under.
* Snapshots (state JSON + state hash) are written every ``snapshot_every`` entries; loading starts
  from the latest snapshot (its hash re-checked) and replays the entries after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crossmargin.app import screening
from crossmargin.app.decide import Outcome, decide
from crossmargin.app.events import evolve
from crossmargin.app.model import EngineState
from crossmargin.app.snapshot import state_from_data, state_to_data
from crossmargin.core.errors import InvalidInput, InvariantViolation
from crossmargin.core.instrument import Instrument
from crossmargin.core.venues import venue
from crossmargin.ledger.codec import canonical_json, decode, encode_record, state_hash, text_hash
from crossmargin.ledger.store import MAX_COMMAND_ID_LENGTH, EventStore

GENESIS_ID = "genesis"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "DOGEUSDT", "LINKUSDT", "AVAXUSDT")


def build_state(config: dict[str, Any]) -> EngineState:
    rules = venue(str(config["venue"]))
    instruments: dict[str, Instrument] = {}
    for symbol in config["symbols"]:
        instrument = rules.instrument(str(symbol))
        if instrument is None:
            raise InvalidInput("symbols", f"{symbol!r} is not in the {rules.name} table")
        instruments[str(symbol)] = instrument
    return EngineState(rules, instruments)


def _recordable(command: object) -> object:
    """A rejected command as it can be logged: itself, or (when the codec cannot store it, e.g.
    a key starting with ``$``) its ``repr``, so that a malformed command cannot fail the append
    and take the engine down with it. Accepted commands passed validation and always encode."""
    try:
        encode_record(command)
    except InvalidInput:
        return {"unrecordable": repr(command)[:2000]}
    return command


class Engine:
    """The engine over one event store."""

    def __init__(
        self,
        store: EventStore,
        *,
        venue_name: str = "binance-usdm",
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        matching: str = "simulated",
        snapshot_every: int = 1000,
    ) -> None:
        if matching not in ("simulated", "external"):
            raise InvalidInput("matching", "expected simulated or external")
        self.store = store
        self.snapshot_every = snapshot_every
        genesis = store.lookup_command(GENESIS_ID)
        config: dict[str, Any]
        if genesis is None:
            config = {"venue": venue_name, "symbols": list(symbols), "matching": matching}
            build_state(config)  # validate before writing anything
            store.append_batch(
                [(GENESIS_ID, {"type": "configure", **config}, {"status": "accepted"}, [])]
            )
        else:
            config = {k: v for k, v in genesis.command.items() if k != "type"}
        self.config = config
        self.matching = str(config["matching"])
        self.state = build_state(config)
        self.results: dict[str, dict[str, Any]] = {}
        self.last_seq = 0
        self._load()

    def _load(self) -> None:
        snapshot = self.store.latest_snapshot()
        after = 0
        if snapshot is not None:
            data = decode(snapshot.state_json)
            if not isinstance(data, dict):
                raise InvariantViolation("snapshot is not an object")
            state_from_data(self.state, data)
            after = snapshot.seq
        for entry in self.store.read(0):
            # Every id's first result stays in memory, so a new command needs no store lookup.
            self.results[entry.command_id] = dict(entry.result)
            if entry.seq <= after:
                continue
            for event in entry.events:
                if not isinstance(event, dict):
                    raise InvariantViolation(f"entry {entry.seq} holds a non-object event")
                evolve(self.state, event)
            self.last_seq = entry.seq
        self.last_seq = max(self.last_seq, after)
        screening.rebuild(self.state)

    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        return self.execute_batch([command])[0]

    def execute_batch(self, commands: Sequence[object]) -> list[dict[str, Any]]:
        """Decide each command in order, append all of them in one transaction, then answer."""
        results: list[dict[str, Any]] = []
        pending: list[tuple[str, Any, dict[str, Any], list[Any]]] = []
        outcomes: list[Outcome] = []
        seen_here: dict[str, dict[str, Any]] = {}
        for command in commands:
            command_id = command.get("command_id") if isinstance(command, dict) else None
            if isinstance(command_id, str) and command_id:
                earlier = seen_here.get(command_id) or self._first_result(command_id)
                if earlier is not None:
                    results.append({**earlier, "duplicate": True})
                    continue
            outcome = decide(self.state, command, matching=self.matching)
            if not isinstance(command_id, str) or not 0 < len(command_id) <= MAX_COMMAND_ID_LENGTH:
                results.append(outcome.result)  # malformed beyond recording: not logged
                continue
            if outcome.draft is not None:
                outcome.draft.commit()  # later commands of the batch see this one
                # the screen is brought up to date lazily, at the next mark tick
                self.state.screen_dirty |= screening.touched_accounts(outcome.events)
            outcomes.append(outcome)
            logged = command if outcome.draft is not None else _recordable(command)
            pending.append((command_id, logged, outcome.result, outcome.events))
            seen_here[command_id] = outcome.result
            results.append(outcome.result)
        if pending:
            try:
                seqs = self.store.append_batch(pending)
            except Exception:
                self._reload()
                raise
            for (command_id, _, result, _), seq in zip(pending, seqs, strict=True):
                self.results[command_id] = result
                self.last_seq = seq
            self._maybe_snapshot(len(pending))
        return results

    def _first_result(self, command_id: str) -> dict[str, Any] | None:
        return self.results.get(command_id)

    def _reload(self) -> None:
        """Memory ran ahead of a failed append: rebuild it from the log."""
        self.state = build_state(self.config)
        self.results = {}
        self.last_seq = 0
        self._load()

    def _maybe_snapshot(self, appended: int) -> None:
        if self.snapshot_every <= 0:
            return
        if (
            self.last_seq // self.snapshot_every
            != (self.last_seq - appended) // self.snapshot_every
        ):
            self.snapshot()

    def snapshot(self) -> str:
        text = canonical_json(state_to_data(self.state))
        digest = text_hash(text)
        self.store.save_snapshot(self.last_seq, text, digest)
        return digest

    def state_hash(self) -> str:
        return state_hash(state_to_data(self.state))
