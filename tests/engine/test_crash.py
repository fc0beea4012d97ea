"""Crash safety of ``crossmargin engine``: SIGKILL at random moments, restart, nothing acknowledged lost.

The engine runs as a subprocess (``python -m crossmargin.cli.engine_cmd engine URL``, and
``python -m crossmargin.cli.main engine URL`` for the last, uninterrupted run) fed a
deterministic command stream (tests/engine/streams.py: orders, marks that liquidate, bankrupt
and auto-deleverage, funding, malformed commands, client retries). It is killed with SIGKILL at
seeded random moments, many times, and restarted each time from the first unacknowledged
command, re-sending that one too (it may have been appended just before the kill: idempotency
must answer it as a duplicate and apply nothing twice). At the end:

* every acknowledged result is in the log, under its command id, with the same answer;
* the log holds each command id of the stream exactly once (nothing lost, nothing doubled);
* replaying the log reproduces the live state hash of a reopened engine (and the snapshots);
* the conservation check passes after every event;
* the final state equals the state of the same stream run once, in process, without crashes.

One test, parametrised over SQLite and PostgreSQL (fewer kills there: a restart is slower).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from crossmargin.app.audit import check, replay
from crossmargin.app.writer import OPERATOR, Engine, log_key
from crossmargin.cli.engine_cmd import dumps
from crossmargin.ledger import open_store
from tests.contract.backends import Backend
from tests.engine.streams import SYMBOLS, command_stream

KILLS = {"sqlite": 20, "postgresql": 6}
# Long enough that no round can drain the stream on a fast, idle machine (an "after_start" kill
# can let several hundred commands through): every planned kill must have commands left to hit.
LENGTH = {"sqlite": 4000, "postgresql": 1200}
READY_TIMEOUT_SECONDS = 60
# The killed runs start the engine through its own module (the same cmd_engine, without importing
# the rest of the CLI, so each restart is cheaper); the last run goes through crossmargin.cli.main.
LIGHT_ENTRY = "crossmargin.cli.engine_cmd"
FULL_ENTRY = "crossmargin.cli.main"


def engine_argv(backend: Backend, module: str) -> list[str]:
    argv = [sys.executable, "-m", module, "engine", backend.url]
    argv += ["--symbols", ",".join(SYMBOLS)]
    if backend.schema is not None:
        argv += ["--schema", backend.schema]
    return argv


def _feed(stdin: IO[str], lines: list[str]) -> None:
    try:
        for line in lines:
            stdin.write(line + "\n")
            stdin.flush()
        stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the engine was killed while we were still writing


def run_engine(
    backend: Backend,
    commands: list[dict[str, Any]],
    kill: tuple[str, int, float] | None,
    log: Path,
    module: str = LIGHT_ENTRY,
) -> tuple[list[dict[str, Any]], bool]:
    """Send ``commands``; return the acknowledged results (complete lines) and whether it was killed.

    ``kill`` is ``("after_acks", n, seconds)`` (SIGKILL ``seconds`` after the n-th acknowledgement),
    ``("after_start", 0, seconds)`` (``seconds`` after the process started), or None (run to EOF).
    """
    with log.open("a") as errors:
        child = subprocess.Popen(
            engine_argv(backend, module),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert child.stdin is not None and child.stdout is not None
    lines = [json.dumps(command) for command in commands]
    writer = threading.Thread(target=_feed, args=(child.stdin, lines), daemon=True)
    writer.start()
    killed = threading.Event()

    def do_kill() -> None:
        killed.set()
        child.send_signal(signal.SIGKILL)

    timer: threading.Timer | None = None
    if kill is not None and kill[0] == "after_start":
        timer = threading.Timer(kill[2], do_kill)
        timer.start()
    watchdog = threading.Timer(READY_TIMEOUT_SECONDS + 240, child.kill)
    watchdog.start()
    results: list[dict[str, Any]] = []
    try:
        for line in child.stdout:
            if not line.endswith("\n"):
                break  # cut off by the kill: not an acknowledgement
            results.append(json.loads(line))
            if kill is not None and kill[0] == "after_acks" and len(results) == kill[1]:
                timer = threading.Timer(kill[2], do_kill)
                timer.start()
    finally:
        child.wait()
        watchdog.cancel()
        if timer is not None:
            timer.cancel()
        writer.join(timeout=10)
    if not killed.is_set():
        assert child.returncode == 0, log.read_text()
    return results, killed.is_set() and child.returncode == -signal.SIGKILL


def comparable(result: dict[str, Any]) -> Any:
    """A result as the client sees it on the wire, without the duplicate flag."""
    plain = {key: value for key, value in result.items() if key != "duplicate"}
    return json.loads(dumps(plain))


def test_engine_killed_at_random_moments_loses_no_acknowledged_command(
    backend: Backend, tmp_path: Path
) -> None:
    rng = random.Random(f"crash-{backend.name}")
    commands = command_stream(seed=7, length=LENGTH[backend.name])
    log = tmp_path / "engine-stderr.log"
    acknowledged: list[tuple[dict[str, Any], dict[str, Any]]] = []
    sent_from = 0
    kills = 0
    started = time.monotonic()
    for round_number in range(KILLS[backend.name]):
        # Kills land a few milliseconds after a random acknowledgement (so mid-command, mid-append
        # or between commands), and sometimes while the engine starts and loads the log; counting
        # acknowledgements rather than seconds keeps the progress per round independent of speed.
        kill: tuple[str, int, float]
        if round_number % 5 == 4:
            kill = ("after_start", 0, rng.uniform(0.0, 0.3))
        else:
            kill = ("after_acks", rng.randint(1, 20), rng.uniform(0.0, 0.02))
        results, was_killed = run_engine(backend, commands[sent_from:], kill, log)
        kills += was_killed
        acknowledged += list(zip(commands[sent_from:], results, strict=False))
        sent_from += len(results)
        if sent_from == len(commands):
            break
    if sent_from < len(commands):
        results, was_killed = run_engine(backend, commands[sent_from:], None, log, FULL_ENTRY)
        assert not was_killed
        acknowledged += list(zip(commands[sent_from:], results, strict=True))
        sent_from += len(results)
    assert sent_from == len(commands)
    assert kills >= KILLS[backend.name] - 2, f"only {kills} kills landed"
    assert time.monotonic() - started < 240

    store = backend.open(create=False)
    try:
        # every acknowledged answer is the logged answer for its command id
        for command, result in acknowledged:
            stored = store.lookup_command(log_key(OPERATOR, command["command_id"]))
            if result.get("reason") == "INVALID_COMMAND":  # refused by validation: never logged
                assert stored is None, command["command_id"]
                continue
            assert stored is not None, f"acknowledged {command['command_id']} is not in the log"
            assert comparable(stored.result) == comparable(result), command["command_id"]
            if not result.get("duplicate"):
                assert stored.command == json.loads(json.dumps(command), parse_float=Decimal)
        # each command id exactly once: nothing lost, nothing applied twice
        logged = [entry.command_id for entry in store.read(0)]
        assert len(logged) == len(set(logged))
        valid = {
            log_key(OPERATOR, command["command_id"])
            for command, result in acknowledged
            if result.get("reason") != "INVALID_COMMAND"
        }
        assert set(logged) == {"genesis"} | valid
        replayed = replay(store)
        assert replayed.snapshot_matches is not False
        live = Engine(store).state_hash()
        assert replayed.state_hash == live
        report = check(store)
        assert report.ok, report.violations
        assert report.totals["sum"] == 0
        kinds = {event["type"] for entry in store.read(0) for event in entry.events}
        assert {"PositionLiquidated", "PositionAutoDeleveraged", "FundingSettled"} <= kinds
    finally:
        store.close()

    reference_store = open_store(tmp_path / "reference.db")
    reference = Engine(reference_store, symbols=SYMBOLS)
    for command in commands:
        reference.execute(command)
    assert reference.state_hash() == live, "crash and restart changed the outcome"
    reference_store.close()
