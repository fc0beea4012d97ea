"""Monte Carlo paths and liquidation probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.batch.convert import from_books
from crossmargin.batch.history import base_asset, market_history
from crossmargin.batch.montecarlo import (
    liquidation_probability,
    series_for_symbols,
    simulate_paths,
)
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.errors import InvalidInput


def test_the_bundled_history_is_six_aligned_series_of_plausible_hourly_returns() -> None:
    history = market_history()
    assert history.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "DOGEUSDT", "LINKUSDT", "AVAXUSDT")
    assert history.log_returns.shape[0] > 30_000
    volatility = history.log_returns.std(axis=0)
    assert np.all((volatility > 0.002) & (volatility < 0.05))
    correlation = np.corrcoef(history.log_returns, rowvar=False)
    assert correlation[0, 1] > 0.6  # BTC and ETH move together


def test_paths_are_reproducible_from_the_seed() -> None:
    for model in ("bootstrap", "gbm"):
        first = simulate_paths(50, 12, seed=7, model=model)
        assert np.array_equal(
            first.log_moves, simulate_paths(50, 12, seed=7, model=model).log_moves
        )
        assert not np.array_equal(
            first.log_moves, simulate_paths(50, 12, seed=8, model=model).log_moves
        )
        assert np.all(first.log_moves[:, 0, :] == 0)


def test_bootstrap_steps_are_real_joint_hours() -> None:
    history = market_history()
    paths = simulate_paths(20, 10, seed=3, block_hours=4)
    steps = np.diff(paths.log_moves, axis=1).reshape(-1, len(history.symbols))
    rows = {tuple(np.round(row, 9)) for row in history.log_returns}
    assert all(tuple(np.round(step, 9)) in rows for step in steps)


def test_gbm_reproduces_the_estimated_correlation() -> None:
    history = market_history()
    paths = simulate_paths(4000, 6, seed=5, model="gbm")
    steps = np.diff(paths.log_moves, axis=1).reshape(-1, len(history.symbols))
    target = np.corrcoef(history.log_returns, rowvar=False)
    assert np.abs(np.corrcoef(steps, rowvar=False) - target).max() < 0.03


def test_symbols_follow_their_base_asset_or_a_proxy() -> None:
    series = market_history().symbols
    assert base_asset("BTC-USDT-SWAP") == base_asset("BTC-USD") == base_asset("BTC") == "BTC"
    mapping = series_for_symbols(("ETH-USD", "BTC", "XYZUSDT", "ABCUSDT"), series)
    assert mapping.tolist() == [1, 0, 0, 1]


@pytest.mark.parametrize("model", ["bootstrap", "gbm"])
def test_the_screened_kernel_matches_the_hour_by_hour_walk(model: str) -> None:
    arrays = synthetic_book(1500, seed=31).arrays
    paths = simulate_paths(120, 24, seed=2, model=model)
    fast = liquidation_probability(arrays, paths, backend="numba")
    walk = liquidation_probability(arrays, paths, backend="numpy")
    assert np.array_equal(fast.cross_probability, walk.cross_probability)
    assert np.array_equal(fast.isolated_probability, walk.isolated_probability)
    assert 0 < fast.cross_probability.mean() < 1
    assert 0 < fast.isolated_probability.mean() < 1


def two_accounts(wallet: str) -> list[dict[str, object]]:
    marks = {"BTCUSDT": "30000", "ETHUSDT": "2000"}
    return [
        {
            "wallet_balance": wallet,
            "mark_prices": marks,
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "30000",
                    "leverage": "10",
                    "margin_mode": "cross",
                },
                {
                    "symbol": "ETHUSDT",
                    "side": "short",
                    "quantity": "10",
                    "entry_price": "2000",
                    "leverage": "10",
                    "margin_mode": "cross",
                },
            ],
        },
        {
            "wallet_balance": "0",
            "mark_prices": marks,
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "30000",
                    "leverage": "1",
                    "margin_mode": "isolated",
                    "isolated_margin": "30000",
                }
            ],
        },
    ]


def test_probability_is_one_when_liquidatable_now_and_zero_when_fully_collateralised(
    backend: str,
) -> None:
    books = [parse_portfolio(p) for p in two_accounts("10")]
    result = liquidation_probability(
        from_books(books), simulate_paths(64, 24, seed=1), backend=backend
    )
    assert result.cross_probability.tolist() == [1.0, 0.0]
    assert result.isolated_probability.tolist() == [0.0, 0.0]


def test_a_larger_wallet_never_raises_the_probability(backend: str) -> None:
    paths = simulate_paths(120, 48, seed=4)
    small, large = (
        liquidation_probability(
            from_books([parse_portfolio(p) for p in two_accounts(w)]), paths, backend=backend
        ).cross_probability[0]
        for w in ("2500", "6000")
    )
    assert small > 0 and large <= small


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"count": 0}, "paths"), ({"horizon": 0}, "horizon"), ({"model": "levy"}, "model")],
)
def test_bad_path_settings_are_refused(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"count": 10, "horizon": 5, "seed": 1} | kwargs
    with pytest.raises(InvalidInput) as error:
        simulate_paths(**settings)  # type: ignore[arg-type]
    assert error.value.field == field
