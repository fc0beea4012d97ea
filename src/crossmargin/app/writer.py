"""The single writer: load -> decide -> append (durably) -> commit to memory -> answer.

* One writer per log. Commands are decided one after another against the live state; a batch of
  them (group commit) is appended to the event store in ONE durable transaction, and only then
  are the drafts committed to memory and the results returned. Nothing is acknowledged before it
  is durable. If the append fails, memory is untouched (drafts are dropped) and StorageError
  propagates.
* Idempotency, per principal: a command's key is ``<principal>/<command_id>``, the principal being
  who sent it (``operator``, ``feed`` or ``account:<id>``; see :func:`log_key`). A repeated key
  returns the first result and applies nothing; the same id from another principal is another
  command, so no principal can pre-empt, block or read another's command. A command refused by
  validation (INVALID_COMMAND) is answered but not logged: its id stays free for the corrected
  retry. Loading reads every entry's key and result (events only after the snapshot), so the check
  is a dictionary lookup; the store's unique index on the key is the backstop.
* The first entry of a log is ``genesis``: the engine's configuration (venue, symbols, matching),
  so a restart cannot silently change the rules the log was written under.
* Snapshots (state JSON + state hash) are written every ``snapshot_every`` entries; loading starts
  from the latest snapshot (its hash re-checked) and replays the entries after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crossmargin.app import screening
from crossmargin.app.commands import Command
from crossmargin.app.decide import decide
from crossmargin.app.evolve import apply_record
from crossmargin.app.model import EngineState
from crossmargin.app.snapshot import state_from_data, state_to_data
from crossmargin.core.errors import InvalidInput, InvariantViolation
from crossmargin.core.ids import is_id
from crossmargin.core.instrument import Instrument
from crossmargin.core.venues import venue
from crossmargin.ledger.codec import JsonValue, canonical_json, decode, state_hash, text_hash
from crossmargin.ledger.store import EventStore, StoredEntry

GENESIS_ID = "genesis"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "DOGEUSDT", "LINKUSDT", "AVAXUSDT")
OPERATOR = "operator"
FEED = "feed"
ACCOUNT_PRINCIPAL = "account:"


def account_principal(account_id: str) -> str:
    """The principal of ``account_id``'s own key."""
    return ACCOUNT_PRINCIPAL + account_id


def check_principal(principal: str) -> str:
    if principal in (OPERATOR, FEED):
        return principal
    if principal.startswith(ACCOUNT_PRINCIPAL) and is_id(principal[len(ACCOUNT_PRINCIPAL) :]):
        return principal
    raise InvalidInput("principal", f"{principal!a} is not operator, feed or account:<id>")


def log_key(principal: str, command_id: str) -> str:
    """The idempotency key under which a command is logged: ids are unique per principal."""
    return f"{principal}/{command_id}"


def _loaded_key(stored: str) -> str:
    # logs written before keys were namespaced hold bare ids: they were the operator's
    return stored if "/" in stored or stored == GENESIS_ID else log_key(OPERATOR, stored)


def build_state(config: dict[str, Any]) -> EngineState:
    rules = venue(str(config["venue"]))
    instruments: dict[str, Instrument] = {}
    for symbol in config["symbols"]:
        instrument = rules.instrument(str(symbol))
        if instrument is None:
            raise InvalidInput("symbols", f"{symbol!r} is not in the {rules.name} table")
        instruments[str(symbol)] = instrument
    return EngineState(rules, instruments)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch produced: a result per command, and the entries it appended."""

    results: list[dict[str, Any]]
    committed: list[StoredEntry]


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
            self.results[_loaded_key(entry.command_id)] = dict(entry.result)
            if entry.seq <= after:
                continue
            for event in entry.events:
                if not isinstance(event, dict):
                    raise InvariantViolation(f"entry {entry.seq} holds a non-object event")
                apply_record(self.state, event)
            self.last_seq = entry.seq
        self.last_seq = max(self.last_seq, after)
        screening.rebuild(self.state)

    def execute(self, command: object, principal: str = OPERATOR) -> dict[str, Any]:
        return self.execute_batch([command], [principal])[0]

    def execute_batch(
        self, commands: Sequence[object], principals: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Decide each command in order, append all of them in one transaction, then answer.

        ``principals[i]`` sent ``commands[i]`` (default: the operator)."""
        return self.run_batch(commands, principals).results

    def run_batch(
        self, commands: Sequence[object], principals: Sequence[str] | None = None
    ) -> Batch:
        """:meth:`execute_batch`, also returning the entries it committed (what a publisher
        sends on: each entry's sequence number, key, command, result and event records, as the
        log holds them), so nobody reads back what was just written."""
        if principals is None:
            principals = [OPERATOR] * len(commands)
        elif len(principals) != len(commands):
            raise InvalidInput("principals", "one principal per command is required")
        results: list[dict[str, Any]] = []
        pending: list[tuple[str, Any, dict[str, Any], list[Any]]] = []
        seen_here: dict[str, dict[str, Any]] = {}
        for command, principal in zip(commands, principals, strict=True):
            check_principal(principal)
            command_id = (
                command.command_id
                if isinstance(command, Command)
                else command.get("command_id")
                if isinstance(command, dict)
                else None
            )
            key = log_key(principal, command_id) if is_id(command_id) else None
            if key is not None:
                earlier = seen_here.get(key) or self.results.get(key)
                if earlier is not None:
                    results.append({**earlier, "duplicate": True})
                    continue
            outcome = decide(self.state, command, matching=self.matching)
            results.append(outcome.result)
            if key is None or outcome.result.get("reason") == "INVALID_COMMAND":
                continue  # refused by validation: not logged, the id stays free
            if outcome.draft is not None:
                outcome.draft.commit()  # later commands of the batch see this one
                # the screen is brought up to date lazily, at the next mark tick
                self.state.screen_dirty |= screening.touched_accounts(outcome.events)
            records: list[JsonValue] = [event.to_record() for event in outcome.events]
            logged = command.to_record() if isinstance(command, Command) else command
            pending.append((key, logged, outcome.result, records))
            seen_here[key] = outcome.result
        committed: list[StoredEntry] = []
        if pending:
            try:
                seqs = self.store.append_batch(pending)
            except Exception:
                self._reload()
                raise
            for (key, logged, result, records), seq in zip(pending, seqs, strict=True):
                self.results[key] = result
                self.last_seq = seq
                committed.append(
                    StoredEntry(
                        seq=seq, command_id=key, command=logged, result=result, events=records
                    )
                )
            self._maybe_snapshot(len(pending))
        return Batch(results=results, committed=committed)

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
