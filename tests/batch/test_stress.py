"""Stress grids: each shock is a full revaluation, folded per account."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.batch.convert import from_books
from crossmargin.batch.risk import revalue
from crossmargin.batch.stress import grid, shocked_marks, stress, summary_by_shock
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.errors import InvalidInput


def test_every_shock_matches_a_revaluation_at_the_shocked_marks(backend: str) -> None:
    arrays = synthetic_book(3000, seed=21).arrays
    shocks = grid(arrays.symbols, [("BTCUSDT", [-0.3, -0.1, 0.1]), ("*", [-0.25, 0.0, 0.2])])
    result = stress(arrays, shocks, backend=backend)
    base = revalue(arrays, backend=backend)
    has_cross = base.cross_positions > 0
    worst_ratio = np.full(arrays.account_count, -np.inf)
    worst_loss = np.full(arrays.account_count, -np.inf)
    for k, marks in enumerate(shocked_marks(arrays, shocks)):
        valued = revalue(arrays, marks, backend=backend)
        assert np.array_equal(result.cross_liquidated[:, k], valued.cross_liquidatable)
        assert np.array_equal(result.isolated_liquidated[:, k], valued.isolated_any_liquidatable)
        worst_ratio = np.maximum(worst_ratio, np.nan_to_num(valued.margin_ratio, nan=np.inf))
        loss = np.minimum(
            base.margin_balance - valued.margin_balance, np.maximum(base.margin_balance, 0)
        )
        worst_loss = np.maximum(worst_loss, loss)
    assert np.allclose(result.cross_worst_ratio[has_cross], worst_ratio[has_cross], rtol=1e-12)
    assert np.allclose(result.cross_worst_loss[has_cross], worst_loss[has_cross], rtol=1e-9)
    assert result.cross_liquidated.any() and not result.cross_liquidated.all()


def test_both_backends_agree_on_a_stress_grid() -> None:
    arrays = synthetic_book(2000, seed=22).arrays
    shocks = grid(arrays.symbols, [("ETHUSDT", [-0.4, -0.2, 0.0]), ("*", [-0.1, 0.1])])
    fast, slow = stress(arrays, shocks, backend="numba"), stress(arrays, shocks, backend="numpy")
    for field in (
        "cross_worst_ratio",
        "cross_worst_loss",
        "isolated_worst_ratio",
        "isolated_worst_loss",
        "loss_by_shock",
    ):
        assert np.allclose(getattr(fast, field), getattr(slow, field), rtol=1e-9, equal_nan=True)
    assert np.array_equal(fast.cross_liquidated, slow.cross_liquidated)
    assert np.array_equal(fast.isolated_liquidated, slow.isolated_liquidated)


def test_an_isolated_position_loses_at_most_its_margin_balance(backend: str) -> None:
    book = parse_portfolio(
        {
            "wallet_balance": "1000",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "30000",
                    "leverage": "20",
                    "margin_mode": "isolated",
                    "isolated_margin": "1500",
                },
                {
                    "symbol": "ETHUSDT",
                    "side": "short",
                    "quantity": "1",
                    "entry_price": "2000",
                    "leverage": "10",
                    "margin_mode": "cross",
                },
            ],
            "mark_prices": {"BTCUSDT": "29900", "ETHUSDT": "2000"},
        }
    )
    arrays = from_books([book])
    result = stress(arrays, grid(arrays.symbols, [("*", [-0.9, -0.5, 0.3, 3.0])]), backend=backend)
    assert result.isolated_worst_loss[0] == pytest.approx(1500 - 100)  # its balance at the mark
    assert result.isolated_liquidated[0].tolist() == [True, True, False, False]
    # the cross short loses its whole margin balance under +300%, not more
    assert result.cross_worst_loss[0] == pytest.approx(1000)
    assert result.cross_liquidated[0].tolist() == [False, False, False, True]
    rows = summary_by_shock(result)
    assert [r["cross_liquidated"] for r in rows] == [0, 0, 0, 1]
    assert rows[3]["loss"] == pytest.approx(1000)


def test_the_grid_is_the_cartesian_product_and_star_moves_the_rest() -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    shocks = grid(symbols, [("BTCUSDT", [-0.3, 0.0]), ("*", [-0.1, 0.1, 0.2])])
    assert shocks.count == 6
    assert shocks.relative[1].tolist() == [-0.3, 0.1, 0.1]
    assert shocks.labels[1] == "BTCUSDT-30% *+10%"
    only = grid(symbols, [("ETHUSDT", [-0.5])])
    assert only.relative.tolist() == [[0.0, -0.5, 0.0]]


@pytest.mark.parametrize(
    ("axes", "field"),
    [
        ([("DOGEUSDT", [-0.1])], "--shock-grid DOGEUSDT"),
        ([("BTCUSDT", [-1.0])], "--shock-grid BTCUSDT"),
        ([("BTCUSDT", [-0.1]), ("BTCUSDT", [0.1])], "--shock-grid BTCUSDT"),
        ([], "--shock-grid"),
    ],
)
def test_bad_grids_are_refused_naming_the_axis(
    axes: list[tuple[str, list[float]]], field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        grid(("BTCUSDT",), axes)
    assert error.value.field == field
