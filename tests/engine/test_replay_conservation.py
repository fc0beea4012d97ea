"""Replay equals live, conservation, and rejections change nothing, over long random streams.

A seeded stream (tests/engine/streams.py) runs through an in-process engine on each store, with
frequent snapshots. Then: replaying the whole log from genesis gives the live state hash and
matches the latest snapshot; an engine reopened on the log (snapshot + tail) has the same hash;
the conservation check passes after every event; and every rejected command left the state hash
unchanged and appended no event. The streams are checked to contain liquidations, bankruptcies
and auto-deleveraging, so the properties are exercised where they are hardest to keep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crossmargin.app.audit import check, replay
from crossmargin.app.writer import OPERATOR, Engine, log_key
from crossmargin.ledger import open_store
from tests.contract.backends import Backend
from tests.engine.streams import SYMBOLS, command_stream

LENGTH = {"sqlite": 900, "postgresql": 600}


@pytest.mark.parametrize("seed", [2, 6])
def test_replay_equals_live_and_money_is_conserved(backend: Backend, seed: int) -> None:
    store = backend.open()
    engine = Engine(store, symbols=SYMBOLS, snapshot_every=97)
    rejected = 0
    for command in command_stream(seed, LENGTH[backend.name]):
        before, last = engine.state_hash(), store.last_seq()
        result = engine.execute(command)
        if result.get("duplicate"):  # a client retry: answered from the log, nothing applied
            assert engine.state_hash() == before, command
            assert store.last_seq() == last
        elif result["status"] == "rejected":
            rejected += 1
            assert engine.state_hash() == before, command
            stored = store.lookup_command(log_key(OPERATOR, command["command_id"]))
            if result["reason"] == "INVALID_COMMAND":  # not logged: the id stays free
                assert stored is None
                assert store.last_seq() == last
            else:  # recorded (for retries) with no event
                assert stored is not None and stored.events == []
                assert store.last_seq() == last + 1
    assert rejected > 20
    live = engine.state_hash()
    report = replay(store)
    assert report.state_hash == live
    assert report.snapshot_seq is not None and report.snapshot_matches is True
    store.close()

    reopened_store = backend.open(create=False)
    try:
        reopened = Engine(reopened_store)
        assert reopened.state_hash() == live
        audit = check(reopened_store)
        assert audit.ok, audit.violations
        assert audit.totals["sum"] == 0
        kinds = {event["type"] for entry in reopened_store.read(0) for event in entry.events}
        assert {
            "PositionLiquidated",
            "PositionAutoDeleveraged",
            "InsuranceFundPaid",
            "BadDebtRecorded",
        } <= kinds
    finally:
        reopened_store.close()


def test_replay_equals_live_and_money_is_conserved_on_bybit(tmp_path: Path) -> None:
    """The same properties under Bybit's rules: account-wide margin mode, isolated maintenance
    valued at entry, the fee to close in initial margin, no clearance fee."""
    store = open_store(tmp_path / "bybit.db")
    engine = Engine(store, venue_name="bybit-linear", symbols=SYMBOLS, snapshot_every=61)
    for command in command_stream(2, 600):
        before = engine.state_hash()
        if engine.execute(command)["status"] == "rejected":
            assert engine.state_hash() == before, command
    report = replay(store)
    assert report.state_hash == engine.state_hash()
    assert report.snapshot_matches is True
    audit = check(store)
    assert audit.ok, audit.violations
    kinds = {event["type"] for entry in store.read(0) for event in entry.events}
    assert {"PositionAutoDeleveraged", "BadDebtRecorded", "MarginModeChanged"} <= kinds
    store.close()


@pytest.mark.parametrize("seed", [5])
def test_the_float_liquidation_screen_never_changes_a_decision(tmp_path: Path, seed: int) -> None:
    """The writer's float pre-screen only picks which accounts the Decimal core examines; the
    same stream with the screen switched off must reach the same state, event for event."""
    hashes = []
    events = []
    for screened in (True, False):
        store = open_store(tmp_path / f"screened-{screened}.db")
        engine = Engine(store, symbols=SYMBOLS)
        if not screened:
            engine.state.screen = None
        for command in command_stream(seed, 700):
            engine.execute(command)
        hashes.append(engine.state_hash())
        events.append([entry.events for entry in store.read(0)])
        store.close()
    assert events[0] == events[1]
    assert hashes[0] == hashes[1]


def test_replay_and_check_catch_a_tampered_log(backend: Backend) -> None:
    """The audits can fail: an edited posting breaks conservation (check), an edit that keeps the
    sum at zero still changes the state, so replay no longer matches the snapshot."""
    store = backend.open()
    engine = Engine(store, symbols=SYMBOLS)
    engine.execute({"type": "open_account", "command_id": "a", "account": "alice"})
    engine.execute({"type": "deposit", "command_id": "d", "account": "alice", "amount": "1000"})
    engine.snapshot()
    store.close()
    assert replay(backend.open(create=False)).snapshot_matches is True

    backend.execute(
        'UPDATE ledger_entries SET events = REPLACE(events, \'"$decimal":"1000"\', '
        "'\"$decimal\":\"2000\"') WHERE command_id = 'operator/d'"
    )
    tampered = backend.open(create=False)
    try:
        report = check(tampered)
        assert not report.ok
        assert any("postings sum to" in violation for violation in report.violations)
    finally:
        tampered.close()

    backend.execute(
        'UPDATE ledger_entries SET events = REPLACE(events, \'"$decimal":"-1000"\', '
        "'\"$decimal\":\"-2000\"') WHERE command_id = 'operator/d'"
    )
    balanced = backend.open(create=False)
    try:
        assert check(balanced).ok  # money still sums to zero ...
        assert replay(balanced).snapshot_matches is False  # ... but it is not the state we had
    finally:
        balanced.close()
