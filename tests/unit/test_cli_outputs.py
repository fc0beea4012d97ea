"""What ``crossmargin risk``, ``scenario`` and ``demo`` print, checked against the core's own numbers."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crossmargin.cli.render import money
from tests.helpers import report, run_cli

D = Decimal
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (EXAMPLES / f"worked-example-{name}.json").read_text(encoding="utf-8")
    )
    return loaded


def run_ok(*args: str, stdin: str | None = None) -> str:
    code, out, err = run_cli(*args, stdin=stdin)
    assert (code, err) == (0, ""), err
    return out


def run_json(*args: str, stdin: str | None = None) -> Any:
    return json.loads(run_ok(*args, stdin=stdin), parse_float=D)


def as_json(value: Any) -> Any:
    """``value`` as it reads back from the CLI's JSON (Decimals stay exact)."""
    return json.loads(json.dumps(value), parse_float=D)


# --- risk ------------------------------------------------------------------------------------


def test_a_list_of_portfolios_gives_a_list_of_reports_in_the_same_order() -> None:
    cross, isolated = example("cross"), example("isolated")
    result = run_json("risk", "-", stdin=json.dumps([cross, isolated, cross]))
    assert isinstance(result, list) and len(result) == 3
    assert result == [as_json(report(cross)), as_json(report(isolated)), as_json(report(cross))]
    assert result[0] != result[1]


def test_one_portfolio_gives_one_report_object() -> None:
    result = run_json("risk", str(EXAMPLES / "worked-example-cross.json"))
    assert isinstance(result, dict)
    assert result == as_json(report(example("cross")))


def test_an_empty_list_gives_an_empty_list() -> None:
    assert run_json("risk", "-", stdin="[]") == []


def test_the_table_shows_the_key_figures_of_the_report() -> None:
    book = example("cross")
    figures = report(book)
    table = run_ok("risk", "-", "--table", stdin=json.dumps(book))
    for key in ("wallet_balance", "margin_balance", "maintenance_margin", "initial_margin"):
        assert money(figures[key]) in table, key
    for position in figures["positions"]:
        row = next(line for line in table.splitlines() if line.startswith(position["symbol"]))
        assert money(position["liquidation_price"]) in row
        assert money(position["unrealized_pnl"]) in row
        assert position["side"] in row
    assert "healthy" in table and "LIQUIDATABLE" not in table


def test_the_table_flags_a_liquidatable_account() -> None:
    book = copy.deepcopy(example("cross"))
    book["mark_prices"] = {"ETHUSDT": "1500", "BTCUSDT": "44000"}
    table = run_ok("risk", "-", "--table", stdin=json.dumps(book))
    assert "LIQUIDATABLE" in table
    assert sum(line.endswith(" LIQ") for line in table.splitlines()) == 2


def test_the_table_of_a_list_titles_each_account() -> None:
    books = [example("cross"), example("isolated")]
    table = run_ok("risk", "-", "--table", stdin=json.dumps(books))
    assert "account (#0)" in table and "account (#1)" in table


# --- scenario --------------------------------------------------------------------------------


@pytest.fixture
def cross_file() -> str:
    return str(EXAMPLES / "worked-example-cross.json")


def test_a_scenario_reports_the_current_and_the_shocked_book(cross_file: str) -> None:
    result = run_json("scenario", cross_file, "--shock", "ETHUSDT=-20%", "--shock", "BTCUSDT=+5%")
    assert set(result) == {"shocks", "current", "shocked"}
    assert result["shocks"] == ["ETHUSDT=-20%", "BTCUSDT=+5%"]
    assert result["current"] == as_json(report(example("cross")))
    now = {p["symbol"]: D(p["mark_price"]) for p in result["current"]["positions"]}
    then = {p["symbol"]: D(p["mark_price"]) for p in result["shocked"]["positions"]}
    assert then["ETHUSDT"] == now["ETHUSDT"] * D("0.8")  # exactly, no rounding
    assert then["BTCUSDT"] == now["BTCUSDT"] * D("1.05")


def test_a_shocked_report_is_the_report_of_the_book_at_the_shocked_marks(cross_file: str) -> None:
    result = run_json("scenario", cross_file, "--shock", "ETHUSDT=-20%", "--shock", "BTCUSDT=+5%")
    moved = copy.deepcopy(example("cross"))
    moved["mark_prices"] = {"ETHUSDT": "1520", "BTCUSDT": "42420"}
    assert result["shocked"] == as_json(report(moved))


def test_an_absolute_shock_sets_the_mark(cross_file: str) -> None:
    result = run_json("scenario", cross_file, "--shock", "BTCUSDT=25000")
    assert result["shocks"] == ["BTCUSDT=25000"]
    btc = next(p for p in result["shocked"]["positions"] if p["symbol"] == "BTCUSDT")
    eth = next(p for p in result["shocked"]["positions"] if p["symbol"] == "ETHUSDT")
    assert D(btc["mark_price"]) == 25000
    assert D(eth["mark_price"]) == 1900  # unshocked marks stay


def test_a_scenario_over_a_list_gives_a_list() -> None:
    books = [example("cross"), example("isolated")]
    result = run_json("scenario", "-", "--shock", "ETHUSDT=-10%", stdin=json.dumps(books))
    assert isinstance(result, list) and len(result) == 2
    for item, book in zip(result, books, strict=True):
        assert item["current"] == as_json(report(book))
        eth = next(p for p in item["shocked"]["positions"] if p["symbol"] == "ETHUSDT")
        assert D(eth["mark_price"]) == D(1900) * D("0.9")


def test_the_scenario_table_shows_marks_and_balances_before_and_after(cross_file: str) -> None:
    result = run_json("scenario", cross_file, "--shock", "ETHUSDT=-20%")
    table = run_ok("scenario", cross_file, "--shock", "ETHUSDT=-20%", "--table")
    assert table.startswith("scenario: ETHUSDT=-20%")
    mark_row = next(
        line for line in table.splitlines() if line.startswith("ETHUSDT long (cross) mark")
    )
    assert money("1900") in mark_row and money("1520") in mark_row
    balance_row = next(
        line for line in table.splitlines() if line.startswith("cross margin balance")
    )
    assert money(result["current"]["margin_balance"]) in balance_row
    assert money(result["shocked"]["margin_balance"]) in balance_row


# --- demo ------------------------------------------------------------------------------------

LIQUIDATION = re.compile(
    r"^  (?P<mode>cross|isolated): (?P<scope>.+?) liquidated at a (?P<move>[\d.]+)% move "
    r"\(ETH (?P<eth>[\d,.]+), BTC (?P<btc>[\d,.]+)\)$"
)


@pytest.fixture(scope="module")
def demo() -> str:
    return run_ok("demo")


def liquidations(text: str, path: str) -> dict[tuple[str, str], dict[str, Decimal]]:
    """The liquidation lines of one path section of the demo: (mode, scope) -> numbers."""
    section = text.split(f"({path}) ", 1)[1].split("\n(", 1)[0]
    found = {}
    for line in section.splitlines():
        match = LIQUIDATION.match(line)
        if match:
            found[(match["mode"], match["scope"])] = {
                key: D(match[key].replace(",", "")) for key in ("move", "eth", "btc")
            }
    return found


def isolated_leg_price(symbol: str) -> Decimal:
    """The core's liquidation price of one isolated leg of the worked example, at the start."""
    book = example("isolated")
    book["positions"] = [p for p in book["positions"] if p["symbol"] == symbol]
    book["mark_prices"] = {symbol: book["positions"][0]["entry_price"]}
    price = report(book)["positions"][0]["liquidation_price"]
    assert price is not None
    return D(price)


def test_the_demo_shows_both_paths_and_both_modes(demo: str) -> None:
    assert "(a) both prices fall" in demo
    assert "(b) ETH falls while BTC rises" in demo
    assert "cross: nothing is liquidated on this path" in demo
    assert set(liquidations(demo, "a")) == {("isolated", "ETH leg")}
    assert set(liquidations(demo, "b")) == {
        ("cross", "cross account"),
        ("isolated", "ETH leg"),
        ("isolated", "BTC leg"),
    }


# The demo prints moves to 0.01% (half a step of rounding) from a bisection to 1e-6, and marks to
# the cent (half a cent of rounding) of a price moved by that bisected amount.
MOVE_TOLERANCE = D("0.005") + D("0.0001")


def price_tolerance(start: Decimal) -> Decimal:
    return D("0.005") + start * D("1e-6")


@pytest.mark.parametrize("path", ["a", "b"])
def test_the_demo_isolated_eth_leg_dies_at_the_cores_liquidation_price(
    demo: str, path: str
) -> None:
    price = isolated_leg_price("ETHUSDT")
    line = liquidations(demo, path)[("isolated", "ETH leg")]
    assert abs(line["move"] - (1 - price / 2000) * 100) <= MOVE_TOLERANCE
    assert abs(line["eth"] - price) <= price_tolerance(D(2000))


def test_the_demo_isolated_btc_short_dies_at_the_cores_liquidation_price(demo: str) -> None:
    price = isolated_leg_price("BTCUSDT")
    line = liquidations(demo, "b")[("isolated", "BTC leg")]
    assert abs(line["move"] - (price / 40000 - 1) * 100) <= MOVE_TOLERANCE
    assert abs(line["btc"] - price) <= price_tolerance(D(40000))


def cross_book_at(move: Decimal) -> dict[str, Any]:
    book = example("cross")
    book["mark_prices"] = {
        "ETHUSDT": str(D(2000) * (1 - move)),
        "BTCUSDT": str(D(40000) * (1 + move)),
    }
    return book


def test_the_demo_cross_account_dies_where_the_core_says_it_becomes_liquidatable(demo: str) -> None:
    line = liquidations(demo, "b")[("cross", "cross account")]
    move = line["move"] / 100
    step = MOVE_TOLERANCE / 100
    assert report(cross_book_at(move - step))["liquidatable"] is False
    assert report(cross_book_at(move + step))["liquidatable"] is True


def test_the_demo_cross_account_survives_path_a_in_the_core_too(demo: str) -> None:
    book = example("cross")
    book["mark_prices"] = {"ETHUSDT": str(D(2000) * D("0.7")), "BTCUSDT": str(D(40000) * D("0.7"))}
    assert report(book)["liquidatable"] is False
    assert "cross keeps 1,000.00, isolated keeps 600.00" in demo
