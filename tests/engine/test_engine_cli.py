"""``crossmargin engine`` over stdin/stdout: one answer per line, whatever the line holds.

Hostile or malformed input must be answered with a rejection naming the problem, never take the
engine down: the commands after it are still processed, and the log stays checkable.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli

HOSTILE = [
    "this is not json",
    "[1, 2, 3]",
    '"a string"',
    json.dumps({"type": "open_account", "account": "a"}),  # no command id
    json.dumps({"type": "open_account", "command_id": 7, "account": "a"}),
    json.dumps({"type": "open_account", "command_id": "x" * 129, "account": "a"}),
    json.dumps({"type": "open_account", "command_id": "y" * 250, "account": "a"}),
    json.dumps({"type": "open_account", "command_id": "h1", "account": {"$decimal": "1"}}),
    json.dumps({"type": "deposit", "command_id": "h2", "account": "a", "amount": "1", "$x": 1}),
    '{"type": "deposit", "command_id": "h3", "account": "a", "amount": 1e999999}',
    '{"type": "deposit", "command_id": "h4", "account": "a", "amount": NaN}',
    json.dumps({"type": "deposit", "command_id": "h5", "account": "a", "amount": True}),
    json.dumps({"type": "update_mark", "command_id": "h6", "symbol": "BTCUSDT", "price": "-1"}),
    json.dumps({"type": "settle_funding", "command_id": "h7", "symbol": "BTCUSDT", "rate": "2"}),
    json.dumps({"type": "place_order", "command_id": "h8", "account": "a", "order_id": "o",
                "symbol": "BTCUSDT", "side": "up", "order_type": "market", "quantity": "1"}),
    json.dumps({"type": "place_order", "command_id": "h9", "account": "a", "order_id": "o",
                "symbol": "BTCUSDT", "side": "buy", "order_type": "market", "quantity": "1",
                "price": "100"}),
]  # fmt: skip


def test_malformed_lines_are_each_answered_and_the_engine_goes_on(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    good = json.dumps({"type": "open_account", "command_id": "ok-1", "account": "alice"})
    code, out, err = run_cli("engine", db, stdin="\n".join([*HOSTILE, good]) + "\n")
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(HOSTILE) + 1
    for line, answer in zip(HOSTILE, answers, strict=False):
        assert answer["status"] == "rejected", line
        assert answer["reason"] == "INVALID_COMMAND", line
    assert answers[-1] == {"status": "accepted", "events": 1}
    fields = [answer.get("field") for answer in answers[3:-1]]
    assert fields == ["command_id"] * 4 + ["account", "$x", "amount", "amount", "amount"] + [
        "price",
        "rate",
        "side",
        "price",
    ]

    code, out, err = run_cli("check", db)
    assert code == 0, err
    assert "conservation holds" in out
    code, out, err = run_cli("replay", db)
    assert code == 0, err
    # the rejections that carried a usable id were logged (so a retry gets the same answer)
    again = json.dumps({"type": "deposit", "command_id": "h2", "account": "a", "amount": "1"})
    code, out, err = run_cli("engine", db, stdin=again + "\n")
    assert json.loads(out) == {**answers[8], "duplicate": True}
