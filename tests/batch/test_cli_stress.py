"""``crossmargin stress``: the command line over the batch path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.batch.stress import grid, stress
from crossmargin.batch.synthetic import synthetic_book
from tests.helpers import run_cli


def test_synthetic_stress_json_matches_the_library() -> None:
    code, out, err = run_cli(
        "stress",
        "--synthetic",
        "900",
        "--seed",
        "3",
        "--shock-grid",
        "BTCUSDT=-30%..0%/4",
        "--shock-grid",
        "*=-20%,10%",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)["stress"]
    arrays = synthetic_book(900, seed=3).arrays
    shocks = grid(arrays.symbols, [("BTCUSDT", list(np.linspace(-0.3, 0, 4))), ("*", [-0.2, 0.1])])
    result = stress(arrays, shocks)
    assert report["shocks"] == 8
    assert [row["cross_liquidated"] for row in report["by_shock"]] == list(
        result.cross_liquidated.sum(axis=0)
    )
    assert report["by_shock"][0]["shock"] == "BTCUSDT-30% *-20%"
    assert len(report["accounts_at_risk"]) == 10
    for row in report["accounts_at_risk"]:
        shocks_hit = np.flatnonzero(result.cross_liquidated[row["account"]]).tolist()
        assert row["cross_liquidated_by"] == shocks_hit
        assert row["cross_liquidating_shocks"] == len(shocks_hit)


def portfolio(wallet: str, mark: str = "29000") -> dict[str, Any]:
    return {
        "wallet_balance": wallet,
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "quantity": "1",
                "entry_price": "30000",
                "leverage": "10",
                "margin_mode": "cross",
            }
        ],
        "mark_prices": {"BTCUSDT": mark},
    }


def test_a_file_of_portfolios_is_stressed_and_printed_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps([portfolio("3100"), portfolio("20000")]))
    code, out, err = run_cli(
        "stress",
        str(path),
        "--shock-grid",
        "BTCUSDT=-10%,-50%",
        "--monte-carlo",
        "50",
        "--horizon",
        "12",
        "--seed",
        "1",
    )
    assert code == 0, err
    assert "2 accounts, 2 positions, 1 symbol;" in out
    assert "accounts liquidated by at least one shock: cross 1, isolated 0" in out
    assert "Monte Carlo: 50 bootstrap paths of 12 h (seed 1)" in out


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps([portfolio("100"), portfolio("100", mark="1")]))
    cases = [
        (("stress", str(path), "--shock-grid", "BTCUSDT=-10%"), "[1].mark_prices.BTCUSDT"),
        (("stress", "--synthetic", "10", "--shock-grid", "BTCUSDT=-10"), "--shock-grid BTCUSDT"),
        (
            ("stress", "--synthetic", "10", "--shock-grid", "BTCUSDT=-5%..5%"),
            "--shock-grid BTCUSDT",
        ),
        (("stress", "--synthetic", "0", "--shock-grid", "*=1%"), "--synthetic"),
        (("stress", "--synthetic", "10", "--monte-carlo", "0"), "--monte-carlo"),
        (("stress", str(path), "--synthetic", "5", "--shock-grid", "*=1%"), "BOOK"),
    ]
    for args, field in cases:
        code, out, err = run_cli(*args)
        assert code == 2 and out == "", (args, err)
        assert f"error: {field}:" in err, (args, err)


def test_without_a_grid_the_default_grid_runs_and_is_named() -> None:
    from crossmargin.cli.stress import DEFAULT_GRID

    code, out, err = run_cli("stress", "--synthetic", "900", "--seed", "3", "--json")
    assert code == 0, err
    report = json.loads(out)["stress"]
    assert report["grid"].startswith(DEFAULT_GRID) and "default" in report["grid"]
    assert report["shocks"] == 13
    assert [row["shock"] for row in report["by_shock"]][:2] == ["*-30%", "*-25%"]
    code, out, err = run_cli("stress", "--synthetic", "900", "--seed", "3")
    assert code == 0, err
    assert "shock grid: *=-30%..30%/13 (the default; choose with --shock-grid)" in out


def test_the_tables_say_how_much_of_each_ranking_they_show() -> None:
    code, out, err = run_cli(
        "stress", "--synthetic", "900", "--seed", "3", "--shock-grid", "*=-20%"
    )
    assert code == 0, err
    accounts = synthetic_book(900, seed=3).arrays.account_count
    assert f"accounts at risk (top 10 of {accounts:,} accounts, largest worst loss first):" in out
    assert "by shock (the only shock):" in out and "1 shock;" in out
    code, out, err = run_cli(
        "stress", "--synthetic", "900", "--seed", "3", "--shock-grid", "*=-20%..20%/5", "--top", "3"
    )
    assert code == 0, err
    assert "by shock (top 3 of 5 shocks, most liquidations first):" in out


def test_a_book_of_one_is_not_called_accounts(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(portfolio("3100")))
    code, out, err = run_cli("stress", str(path), "--shock-grid", "BTCUSDT=-10%,-50%")
    assert code == 0, err
    assert "1 account, 1 position, 1 symbol;" in out
    assert "accounts at risk (the only account):" in out
    assert "by shock (all 2 shocks, most liquidations first):" in out
