"""Replay and conservation checks over a log (``crossmargin replay`` / ``crossmargin check``).

replay: rebuild the state from the genesis entry and every event, with no snapshot, and compare
its hash with the latest snapshot's hash at that snapshot's sequence number.

check: fold every event and verify after each one that (a) its postings sum to zero, (b) all
wallets + isolated margins + insurance fund + fee income + bad debt + external flows sum to
exactly zero, (d) the insurance fund is never negative; and after each entry (a command's events
are applied atomically) that (c) no scope without a position holds negative collateral (a
bankrupt scope ends at exactly zero: the fund or the bad-debt ledger made it whole) and (e) no
account the entry touched (named by its events, or holding a symbol it ticked or funded) is left
liquidatable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crossmargin.app.events import Event, FundingSettled, MarkPriceUpdated
from crossmargin.app.evolve import apply_record
from crossmargin.app.model import EngineState
from crossmargin.app.snapshot import money_total, state_to_data
from crossmargin.app.views import scope_ids, scope_state
from crossmargin.app.writer import GENESIS_ID, build_state
from crossmargin.core.errors import InvalidInput, InvariantViolation
from crossmargin.ledger.codec import state_hash
from crossmargin.ledger.store import EventStore


def _genesis_state(store: EventStore) -> EngineState:
    genesis = store.lookup_command(GENESIS_ID)
    if genesis is None:
        raise InvalidInput("DB", "not a crossmargin engine log (no genesis entry)")
    return build_state({k: v for k, v in genesis.command.items() if k != "type"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    entries: int
    events: int
    state_hash: str
    snapshot_seq: int | None
    snapshot_matches: bool | None


def replay(store: EventStore) -> ReplayReport:
    state = _genesis_state(store)
    snapshot = store.latest_snapshot()
    matches: bool | None = None
    entries = events = 0
    if snapshot is not None and snapshot.seq == 0:
        matches = state_hash(state_to_data(state)) == snapshot.state_hash
    for entry in store.read(0):
        for event in entry.events:
            if not isinstance(event, dict):
                raise InvariantViolation(f"entry {entry.seq}: an event is not an object")
            apply_record(state, event)
            events += 1
        entries += 1
        if snapshot is not None and entry.seq == snapshot.seq:
            matches = state_hash(state_to_data(state)) == snapshot.state_hash
    return ReplayReport(
        entries=entries,
        events=events,
        state_hash=state_hash(state_to_data(state)),
        snapshot_seq=None if snapshot is None else snapshot.seq,
        snapshot_matches=matches,
    )


@dataclass(slots=True)
class CheckReport:
    events: int = 0
    violations: list[str] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def check(store: EventStore, *, max_violations: int = 20) -> CheckReport:
    state = _genesis_state(store)
    report = CheckReport()
    for entry in store.read(0):
        touched: set[str] = set()
        for event in entry.events:
            if not isinstance(event, dict):
                report.violations.append(f"entry {entry.seq}: an event is not an object")
                continue
            try:
                applied = apply_record(state, event)
            except InvariantViolation as error:
                report.violations.append(f"entry {entry.seq} {event.get('type')!a}: {error}")
                continue
            report.events += 1
            touched |= _touched(state, applied)
            _check_state(state, entry.seq, applied.TYPE, report)
            if len(report.violations) >= max_violations:
                return report
        # An entry is atomic: a bankruptcy's events close the positions (the collateral goes
        # negative) and only then settle it, so (c) and (e) are judged once the entry is applied.
        _check_scopes(state, entry.seq, touched, report)
    report.totals = {
        "wallets": sum((a.wallet for a in state.accounts.values()), Decimal(0)),
        "isolated_margin": sum(
            (sum(a.isolated.values(), Decimal(0)) for a in state.accounts.values()), Decimal(0)
        ),
        "insurance_fund": state.ledgers.insurance_fund,
        "fee_income": state.ledgers.fee_income,
        "bad_debt": state.ledgers.bad_debt,
        **{f"external:{k}": v for k, v in sorted(state.ledgers.external.items())},
        "sum": money_total(state),
    }
    return report


def _touched(state: EngineState, event: Event) -> set[str]:
    if isinstance(event, MarkPriceUpdated | FundingSettled):
        return set(state.holders.members(event.symbol))
    account = event.account_named
    return {account} if account is not None and account in state.accounts else set()


def _check_state(state: EngineState, seq: int, kind: str, report: CheckReport) -> None:
    total = money_total(state)
    if total != 0:
        report.violations.append(f"entry {seq} {kind}: money sums to {total}, not zero")
    if state.ledgers.insurance_fund < 0:
        report.violations.append(f"entry {seq} {kind}: insurance fund is negative")


def _check_scopes(state: EngineState, seq: int, touched: set[str], report: CheckReport) -> None:
    for account in state.accounts.values():
        if account.wallet < 0 and not any(not p.is_isolated for p in account.positions.values()):
            report.violations.append(
                f"entry {seq}: account {account.account_id} has a negative wallet and no cross "
                "position"
            )
        for key, margin in account.isolated.items():
            if margin < 0 and key not in account.positions:
                report.violations.append(
                    f"entry {seq}: account {account.account_id} isolated {key[0]} {key[1]} is "
                    "negative without a position"
                )
    for account_id in sorted(touched):
        account = state.accounts[account_id]
        for scope in scope_ids(account):
            if scope_state(state, account, scope).liquidatable:
                report.violations.append(
                    f"entry {seq}: account {account_id} scope {scope} was left liquidatable"
                )
