"""``crossmargin engine`` over stdin/stdout: one answer per line, whatever the line holds.

Hostile or malformed input must be answered with a rejection naming the problem, never take the
engine down: the commands after it are still processed, and the log stays checkable.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli

HOSTILE = [
    b"this is not json",
    b"[1, 2, 3]",
    b'"a string"',
    json.dumps({"type": "open_account", "account": "a"}).encode(),  # no command id
    json.dumps({"type": "open_account", "command_id": 7, "account": "a"}).encode(),
    json.dumps({"type": "open_account", "command_id": "x" * 65, "account": "a"}).encode(),
    json.dumps({"type": "open_account", "command_id": "y" * 250, "account": "a"}).encode(),
    json.dumps({"type": "open_account", "command_id": "sp ace", "account": "a"}).encode(),
    json.dumps({"type": "open_account", "command_id": "h1", "account": {"$decimal": "1"}}).encode(),
    json.dumps({"type": "open_account", "command_id": "h1b", "account": "desk:7"}).encode(),
    json.dumps({"type": "open_account", "command_id": "h1c", "account": "é"}).encode(),
    json.dumps({"type": "deposit", "command_id": "h2", "account": "a", "amount": "1", "$x": 1}).encode(),
    b'{"type": "deposit", "command_id": "h3", "account": "a", "amount": 1e999999}',
    b'{"type": "deposit", "command_id": "h4", "account": "a", "amount": NaN}',
    json.dumps({"type": "deposit", "command_id": "h5", "account": "a", "amount": True}).encode(),
    json.dumps({"type": "deposit", "command_id": "h5b", "account": "a", "amount": "1e20"}).encode(),
    json.dumps({"type": "deposit", "command_id": "h5c", "account": "a", "amount": "1_000"}).encode(),
    json.dumps({"type": "update_mark", "command_id": "h6", "symbol": "BTCUSDT", "price": "-1"}).encode(),
    json.dumps({"type": "settle_funding", "command_id": "h7", "symbol": "BTCUSDT", "rate": "2"}).encode(),
    json.dumps({"type": "place_order", "command_id": "h8", "account": "a", "order_id": "o",
                "symbol": "BTCUSDT", "side": "up", "order_type": "market", "quantity": "1"}).encode(),
    json.dumps({"type": "place_order", "command_id": "h9", "account": "a", "order_id": "o",
                "symbol": "BTCUSDT", "side": "buy", "order_type": "market", "quantity": "1",
                "price": "100"}).encode(),
    json.dumps({"type": "set_leverage", "command_id": "h9b", "account": "a", "symbol": "BTCUSDT",
                "leverage": "0.5"}).encode(),
    b'{"type": "deposit", "command_id": "h10", "account": "a", "amount": ' + b"9" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"type": "open_account", "command_id": "\\ud800", "account": "a"}',
    b'{"type": "open_account", "command_id": "h\xff", "account": "a"}',
    b'{"type": "open_account", "command_id": "h11", "command_id": "h12", "account": "a"}',
]  # fmt: skip
FIELDS = (
    ["line", "command", "command"]
    + ["command_id"] * 5
    + ["account"] * 3
    + ["$x", "amount", "amount", "amount", "amount", "amount", "price", "rate", "side", "price"]
    + ["leverage"]
    + ["line"] * 4
    + ["command_id"]
)


def test_hostile_lines_are_each_answered_and_the_engine_goes_on(tmp_path: Path) -> None:
    """Every line gets one answer naming the offending field; nothing takes the engine down, nothing
    malformed is logged, and the log stays checkable."""
    db = str(tmp_path / "engine.db")
    good = json.dumps({"type": "open_account", "command_id": "ok-1", "account": "alice"}).encode()
    code, out, err = run_cli("engine", db, stdin=b"\n".join([*HOSTILE, good]) + b"\n")
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(HOSTILE) + 1
    for line, answer in zip(HOSTILE, answers, strict=False):
        assert answer["status"] == "rejected", line[:80]
        assert answer["reason"] == "INVALID_COMMAND", line[:80]
    assert answers[-1] == {"status": "accepted", "events": 1}
    assert [answer.get("field") for answer in answers[:-1]] == FIELDS
    assert all(line.isascii() for line in out.splitlines())

    code, out, err = run_cli("check", db)
    assert code == 0, err
    assert "conservation holds" in out
    assert "events checked: 1" in out  # only the good line reached the log
    code, out, err = run_cli("replay", db)
    assert code == 0, err


def test_a_refused_command_id_stays_free_for_the_corrected_retry(tmp_path: Path) -> None:
    """A validation failure is not logged, so the same command id, corrected, applies; a business
    rejection is logged, and its retry is answered from the log."""
    db = str(tmp_path / "engine.db")
    lines = [
        {"type": "open_account", "command_id": "a1", "account": "alice"},
        {"type": "deposit", "command_id": "d1", "account": "alice", "amount": "1_000"},
        {"type": "deposit", "command_id": "d1", "account": "alice", "amount": "1000"},
        {"type": "withdraw", "command_id": "w1", "account": "alice", "amount": "5000"},
        {"type": "withdraw", "command_id": "w1", "account": "alice", "amount": "50"},
    ]
    code, out, err = run_cli("engine", db, stdin="\n".join(json.dumps(c) for c in lines) + "\n")
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert answers[1]["reason"] == "INVALID_COMMAND" and answers[1]["field"] == "amount"
    assert answers[2] == {"status": "accepted", "events": 1}
    assert answers[3]["reason"] == "INSUFFICIENT_BALANCE"
    assert answers[4] == {**answers[3], "duplicate": True}
