"""Bad input to ``crossmargin risk``: exit code 2, nothing on stdout, one stderr line naming the field.

Most cases run the CLI in-process (``run_cli``); a few run the installed ``crossmargin`` console
script in a subprocess so the exit code and the two streams are the real ones. Valid but unhealthy
states (the calculator evaluates a state, it does not pre-trade check it) get a report instead.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import postgres_url
from tests.helpers import report, run_cli

D = Decimal

CROSS: dict[str, Any] = {
    "venue": "binance-usdm",
    "wallet_balance": "1000",
    "positions": [
        {
            "symbol": "ETHUSDT",
            "side": "long",
            "quantity": "2",
            "entry_price": "2000",
            "leverage": "10",
            "margin_mode": "cross",
        },
        {
            "symbol": "BTCUSDT",
            "side": "short",
            "quantity": "0.075",
            "entry_price": "40000",
            "leverage": "5",
            "margin_mode": "cross",
        },
    ],
    "mark_prices": {"ETHUSDT": "1900", "BTCUSDT": "40400"},
}


def changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    portfolio = copy.deepcopy(CROSS)
    edit(portfolio)
    return portfolio


def position(index: int, **fields: Any) -> Callable[[dict[str, Any]], object]:
    return lambda portfolio: portfolio["positions"][index].update(fields)


def without(index: int, key: str) -> Callable[[dict[str, Any]], object]:
    return lambda portfolio: portfolio["positions"][index].pop(key)


def top(**fields: Any) -> Callable[[dict[str, Any]], object]:
    return lambda portfolio: portfolio.update(fields)


def assert_refused(code: int, out: str, err: str, field: str, *problem: str) -> None:
    """Exit 2, empty stdout, exactly one stderr line ``crossmargin: error: FIELD: PROBLEM``."""
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith(f"crossmargin: error: {field}: "), lines[0]
    for words in problem:
        assert words in lines[0], (words, lines[0])


def refuse(document: object, field: str, *problem: str, raw: str | None = None) -> None:
    text = raw if raw is not None else json.dumps(document)
    code, out, err = run_cli("risk", "-", stdin=text)
    assert_refused(code, out, err, field, *problem)


# Every class of bad input the issue names, each as (edit, field path, words of the problem).
CASES: list[tuple[str, Callable[[dict[str, Any]], object], str, tuple[str, ...]]] = [
    ("missing wallet", lambda p: p.pop("wallet_balance"), "wallet_balance", ("is required",)),
    ("missing positions", lambda p: p.pop("positions"), "positions", ("is required",)),
    ("null wallet", top(wallet_balance=None), "wallet_balance", ("is required",)),
    ("missing quantity", without(0, "quantity"), "positions[0].quantity", ("is required",)),
    ("missing side", without(1, "side"), "positions[1].side", ("is required",)),
    ("missing symbol", without(0, "symbol"), "positions[0].symbol", ("is required",)),
    ("missing margin mode", without(1, "margin_mode"), "positions[1].margin_mode", ("required",)),
    ("unknown top field", top(walet_balance="1"), "walet_balance", ("unknown field",)),
    ("unknown position field", position(1, colour="red"), "positions[1].colour", ("unknown",)),
    (
        "non-numeric quantity",
        position(0, quantity="two"),
        "positions[0].quantity",
        ("not a number",),
    ),
    ("non-numeric wallet", top(wallet_balance="lots"), "wallet_balance", ("not a number", "lots")),
    ("boolean quantity", position(0, quantity=True), "positions[0].quantity", ("got true",)),
    ("list as a price", position(0, entry_price=[1]), "positions[0].entry_price", ("number",)),
    ("NaN string", position(0, quantity="NaN"), "positions[0].quantity", ("NaN",)),
    ("signalling NaN", position(1, entry_price="sNaN"), "positions[1].entry_price", ("NaN",)),
    (
        "infinite string",
        position(0, entry_price="Infinity"),
        "positions[0].entry_price",
        ("finite",),
    ),
    ("minus infinity", top(wallet_balance="-inf"), "wallet_balance", ("finite",)),
    ("overflowing number", position(0, quantity="1e400"), "positions[0].quantity", ("range",)),
    ("vanishing number", position(0, leverage="1e-999999999"), "positions[0].leverage", ("range",)),
    ("zero quantity", position(0, quantity="0"), "positions[0].quantity", ("positive", "0")),
    ("negative quantity", position(1, quantity="-0.075"), "positions[1].quantity", ("positive",)),
    ("zero entry price", position(0, entry_price="0"), "positions[0].entry_price", ("positive",)),
    (
        "negative entry",
        position(1, entry_price="-40000"),
        "positions[1].entry_price",
        ("positive",),
    ),
    ("zero mark", top(mark_prices={"ETHUSDT": "0"}), "mark_prices.ETHUSDT", ("positive",)),
    ("negative mark", top(mark_prices={"BTCUSDT": "-1"}), "mark_prices.BTCUSDT", ("positive",)),
    ("zero leverage", position(0, leverage="0"), "positions[0].leverage", ("positive",)),
    ("negative wallet", top(wallet_balance="-5"), "wallet_balance", ("negative",)),
    ("unknown venue", top(venue="ftx"), "venue", ("unknown venue", "ftx")),
    (
        "symbol without brackets",
        position(0, symbol="NOPEUSDT"),
        "positions[0].symbol",
        ("brackets",),
    ),
    ("mark of unknown symbol", top(mark_prices={"NOPE": "1"}), "mark_prices.NOPE", ("unknown",)),
    (
        "isolated without margin",
        position(1, margin_mode="isolated"),
        "positions[1].isolated_margin",
        ("required", "isolated"),
    ),
    (
        "cross with isolated margin",
        position(0, isolated_margin="100"),
        "positions[0].isolated_margin",
        ("only isolated",),
    ),
    (
        "leverage above the bracket maximum",
        position(1, leverage="126"),
        "positions[1].leverage",
        ("126x", "maximum 125x"),
    ),
    ("unknown side", position(0, side="buy"), "positions[0].side", ("long", "short", "buy")),
    ("unknown margin mode", position(0, margin_mode="x"), "positions[0].margin_mode", ("cross",)),
    ("unknown position mode", top(position_mode="both"), "position_mode", ("hedge", "one-way")),
    ("positions not a list", top(positions={}), "positions", ("expected a list",)),
    ("position not an object", top(positions=["ETHUSDT"]), "positions[0]", ("expected an object",)),
    (
        "two positions on one symbol in one-way mode",
        position(1, symbol="ETHUSDT", entry_price="2000"),
        "positions[1]",
        ("second ETHUSDT", "positions[0]"),
    ),
    (
        "a bracket table with a gap",
        top(
            instruments={
                "ETHUSDT": {
                    "brackets": [
                        {
                            "notional_floor": "0",
                            "notional_cap": "1000",
                            "maintenance_margin_rate": "0.01",
                        },
                        {
                            "notional_floor": "2000",
                            "notional_cap": None,
                            "maintenance_margin_rate": "0.02",
                        },
                    ]
                }
            }
        ),
        "instruments.ETHUSDT.brackets[1].notional_floor",
        ("contiguous",),
    ),
]


@pytest.mark.parametrize(
    ("edit", "field", "problem"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_is_refused_with_one_line_naming_the_field(
    edit: Callable[[dict[str, Any]], object], field: str, problem: tuple[str, ...]
) -> None:
    refuse(changed(edit), field, *problem)


def test_the_cases_above_start_from_a_valid_portfolio() -> None:
    # Otherwise every refusal above could be the same unrelated one.
    code, out, err = run_cli("risk", "-", stdin=json.dumps(CROSS))
    assert (code, err) == (0, "")
    assert json.loads(out)["liquidatable"] is False


def test_a_list_input_names_the_index_of_the_bad_portfolio() -> None:
    bad = changed(position(1, quantity="0"))
    refuse([CROSS, CROSS, bad], "[2].positions[1].quantity", "positive")
    refuse([CROSS, {"positions": []}], "[1].wallet_balance", "is required")
    refuse([CROSS, "text"], "[1].portfolio", "expected an object")


def test_a_json_syntax_error_names_the_source_line_and_column() -> None:
    refuse(None, "stdin", "invalid JSON at line 2 column", raw='{"wallet_balance": "1",\n}')
    refuse(None, "stdin", "invalid JSON at line 1 column 1", raw="")


def test_a_document_that_is_not_a_portfolio_is_refused() -> None:
    refuse(None, "portfolio", "expected an object, got a string", raw='"risk"')
    refuse(None, "portfolio", "expected an object", raw="42")


def test_a_duplicate_key_is_refused_not_silently_overwritten() -> None:
    # The JSON decoder sees the key before the contract knows where it is, so the line names the
    # key itself (not yet its path).
    raw = '{"wallet_balance": "1000", "wallet_balance": "5", "positions": []}'
    refuse(None, "wallet_balance", "appears twice", raw=raw)
    nested = json.dumps(CROSS).replace('"quantity": "2"', '"quantity": "2", "quantity": "3"')
    refuse(None, "quantity", "appears twice", raw=nested)


@pytest.mark.parametrize(
    ("literal", "problem"), [("NaN", "NaN"), ("Infinity", "finite"), ("-Infinity", "finite")]
)
def test_nan_and_infinity_literals_are_refused(literal: str, problem: str) -> None:
    raw = json.dumps(CROSS).replace('"wallet_balance": "1000"', f'"wallet_balance": {literal}')
    refuse(None, "wallet_balance", problem, raw=raw)
    raw = json.dumps(CROSS).replace('"quantity": "2"', f'"quantity": {literal}')
    refuse(None, "positions[0].quantity", problem, raw=raw)


def test_numbers_as_json_numbers_and_as_strings_give_the_same_report() -> None:
    as_strings = report(CROSS)
    raw = (
        json.dumps(CROSS)
        .replace('"quantity": "0.075"', '"quantity": 0.075')
        .replace('"wallet_balance": "1000"', '"wallet_balance": 1000')
        .replace('"1900"', "1.9e3")
        .replace('"entry_price": "40000"', '"entry_price": 40000.00')
    )
    code, out, err = run_cli("risk", "-", stdin=raw)
    assert (code, err) == (0, "")
    assert json.loads(out) == json.loads(json.dumps(as_strings))
    # The binary-float trap: 0.075 read through a float would be 0.07499999999999999722...
    assert json.loads(out)["positions"][1]["quantity"] == "0.075"


def test_floats_written_as_strings_are_read_exactly() -> None:
    portfolio = changed(position(1, quantity=" 0.1 "))
    result = report(portfolio)
    btc = result["positions"][1]
    assert btc["quantity"] == "0.1"
    assert D(btc["notional"]) == D("0.1") * D("40400")


# --- valid but unhealthy states get a report -------------------------------------------------


def test_an_isolated_margin_below_the_initial_margin_is_valid_and_reported() -> None:
    # Fees and losses eat into isolated margin: 150 against an initial margin of 400 (2 x 2000/10).
    portfolio = changed(top(wallet_balance="0"))
    portfolio["positions"] = [
        {**CROSS["positions"][0], "margin_mode": "isolated", "isolated_margin": "150"}
    ]
    portfolio["mark_prices"] = {"ETHUSDT": "2000"}
    eth = report(portfolio)["positions"][0]
    assert D(eth["isolated_margin"]) < D(eth["initial_margin"]) == 400
    assert eth["liquidatable"] is False  # MB 150 > MM 16 at 2,000: healthy, just thin
    portfolio["mark_prices"] = {"ETHUSDT": "1900"}  # MB 150 - 200 < 0
    code, out, err = run_cli("risk", "-", stdin=json.dumps(portfolio))
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["liquidatable"] is True and result["positions"][0]["liquidatable"] is True
    assert result["cross_liquidatable"] is False  # no cross position


def test_an_account_already_past_maintenance_is_valid_and_reported_liquidatable() -> None:
    portfolio = changed(
        top(wallet_balance="200", mark_prices={"ETHUSDT": "1900", "BTCUSDT": "41000"})
    )
    code, out, err = run_cli("risk", "-", stdin=json.dumps(portfolio))
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert D(result["margin_balance"]) <= D(result["maintenance_margin"])  # 200 - 200 - 75 < 27
    assert result["liquidatable"] is True and result["cross_liquidatable"] is True
    assert all(p["liquidatable"] for p in result["positions"])


def test_a_shock_that_is_not_understood_is_refused_naming_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(CROSS), encoding="utf-8")
    for shock, field, *words in (
        ("ETHUSDT", "--shock", "expected SYMBOL=+5%"),
        ("ETHUSDT=-100%", "--shock ETHUSDT", "-100%"),
        ("ETHUSDT=abc%", "--shock ETHUSDT", "not a number"),
        ("XRPUSDT=-5%", "--shock XRPUSDT", "no position or mark price"),
        ("BTCUSDT=-20", "--shock BTCUSDT", "-20 is not a price; did you mean -20%?"),
        ("BTCUSDT=0", "--shock BTCUSDT", "0 is not a price; give a new price", "=-20%"),
        ("BTCUSDT=-150", "--shock BTCUSDT", "-150 is not a price; give a new price"),
    ):
        code, out, err = run_cli("scenario", str(path), "--shock", shock)
        assert_refused(code, out, err, field, *words)
    code, out, err = run_cli("scenario", str(path))
    assert_refused(code, out, err, "--shock", "give at least one")


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    code, out, err = run_cli("risk", str(missing))
    assert_refused(code, out, err, "FILE", "no such file")


@pytest.mark.parametrize("command", ["risk", "scenario", "stress"])
def test_a_directory_given_as_the_file_is_called_a_directory(tmp_path: Path, command: str) -> None:
    extra = ["--shock", "ETHUSDT=-5%"] if command == "scenario" else []
    code, out, err = run_cli(command, str(tmp_path), *extra)
    argument = "BOOK" if command == "stress" else "FILE"  # the argument's name in --help
    assert_refused(code, out, err, argument, f"{tmp_path} is a directory")


@pytest.mark.parametrize("command", ["replay", "check"])
def test_replaying_or_checking_a_missing_log_is_a_user_error(tmp_path: Path, command: str) -> None:
    for target, problem in (
        (tmp_path / "absent.db", "no such file"),
        (tmp_path, "is a directory"),
    ):
        code, out, err = run_cli(command, str(target))
        assert_refused(code, out, err, "DB", problem)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("command", ["replay", "check"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a database, just some text long enough to fill a header\n" * 4, "not an SQLite"),
        (b"", "an SQLite database without a log"),
    ],
    ids=["text", "empty"],
)
def test_a_file_that_is_not_a_log_is_a_user_error_and_stays_as_it_was(
    tmp_path: Path, command: str, content: bytes, problem: str
) -> None:
    target = tmp_path / "notes.db"
    target.write_bytes(content)
    code, out, err = run_cli(command, str(target))
    assert_refused(code, out, err, "DB", problem)
    assert target.read_bytes() == content  # not turned into a log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


@pytest.mark.parametrize("command", ["replay", "check"])
def test_a_postgres_schema_with_no_log_is_a_user_error(command: str) -> None:
    url = postgres_url()
    schema = f"absent_{uuid.uuid4().hex[:12]}"
    code, out, err = run_cli(command, url, "--schema", schema)
    assert_refused(code, out, err, "DB", f"no event store in schema '{schema}'")


# --- the real console script: real exit codes, real streams ----------------------------------


def console_script() -> str:
    beside = Path(sys.executable).parent / "crossmargin"
    found = str(beside) if beside.exists() else shutil.which("crossmargin")
    if found is None:
        pytest.skip("the crossmargin console script is not installed")
    return found


def run_script(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (json.dumps(changed(position(0, quantity="-1"))), "positions[0].quantity", "positive"),
        (
            json.dumps([CROSS, changed(position(1, leverage="500"))]),
            "[1].positions[1].leverage",
            "500x",
        ),
        ('{"wallet_balance": NaN, "positions": []}', "wallet_balance", "NaN"),
    ],
    ids=["negative quantity", "list index", "NaN literal"],
)
def test_the_installed_command_exits_2_with_one_stderr_line(
    text: str, field: str, problem: str
) -> None:
    done = run_script("risk", "-", stdin=text)
    assert_refused(done.returncode, done.stdout, done.stderr, field, problem)


def test_the_installed_command_reports_a_valid_portfolio_with_exit_0() -> None:
    done = run_script("risk", "-", stdin=json.dumps(CROSS))
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == json.loads(json.dumps(report(CROSS)))
