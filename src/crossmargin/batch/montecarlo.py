"""Monte Carlo: the probability that each account is liquidated within a horizon.

Price paths are hourly and correlated, drawn from the bundled real returns
(:mod:`crossmargin.batch.history`) by one of two seeded models:

* ``bootstrap``: blocks of consecutive joint hours resampled with replacement (the joint rows keep
  the cross-correlation, the blocks keep some volatility clustering);
* ``gbm``: correlated geometric Brownian motion whose hourly drift and covariance of log returns
  are estimated from the same history.

Each book symbol follows one history series: its own where the base asset matches (BTCUSDT,
BTC-USDT-SWAP, BTC-USD and BTC all follow BTC), else a proxy series assigned round-robin in symbol
order (:func:`series_for_symbols`, reported with the result).

A scope is liquidated on a path when at some hour ``t = 0..horizon`` (the start included) it is
liquidatable at that hour's prices (``MB <= MM``, as :mod:`crossmargin.batch.risk`): the cross
scope of an account, or any of its isolated positions. The numba kernel first bounds each scope
from below with every position at its own worst price over the path (exact for one position of a
continuous table, whose ``UPNL - MM`` is monotone in the price); only scopes the bound cannot
clear are walked hour by hour. The numpy fallback walks every hour of every path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import use_numba
from crossmargin.batch.convert import BookArrays, Floats
from crossmargin.batch.history import MarketHistory, base_asset, market_history
from crossmargin.batch.montecarlo_kernel import probability_kernel
from crossmargin.batch.risk import account_positions, position_values
from crossmargin.core.errors import InvalidInput

MODELS = ("bootstrap", "gbm")


@dataclass(frozen=True, slots=True, kw_only=True)
class Paths:
    """``log_moves[path, hour, series]``: log of price / start price; hour 0 is all zeros."""

    series: tuple[str, ...]
    log_moves: Floats
    model: str
    seed: int

    @property
    def count(self) -> int:
        return int(self.log_moves.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.log_moves.shape[1]) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class MonteCarloResult:
    cross_probability: Floats  # (accounts,) 0 where the account holds no cross position
    isolated_probability: Floats  # (accounts,) any isolated position liquidated
    series_of_symbol: tuple[str, ...]  # the history series each book symbol followed
    paths: int
    horizon_hours: int
    model: str


def simulate_paths(
    count: int,
    horizon: int,
    *,
    seed: int,
    model: str = "bootstrap",
    block_hours: int = 6,
    history: MarketHistory | None = None,
) -> Paths:
    """``count`` correlated hourly paths of ``horizon`` hours, reproducible from ``seed``."""
    if count < 1:
        raise InvalidInput("paths", "must be at least 1")
    if horizon < 1:
        raise InvalidInput("horizon", "must be at least 1 hour")
    if block_hours < 1:
        raise InvalidInput("block_hours", "must be at least 1")
    if model not in MODELS:
        raise InvalidInput("model", f"expected one of {', '.join(MODELS)}, got {model!r}")
    data = market_history() if history is None else history
    returns = data.log_returns
    rng = np.random.default_rng(seed)
    if model == "bootstrap":
        blocks = -(-horizon // block_hours)
        starts = rng.integers(0, returns.shape[0] - block_hours + 1, size=(count, blocks))
        hours = (starts[:, :, None] + np.arange(block_hours)).reshape(count, -1)[:, :horizon]
        steps = returns[hours]
    else:
        mean = returns.mean(axis=0)
        factor = np.linalg.cholesky(np.cov(returns, rowvar=False))
        normal = rng.standard_normal((count, horizon, returns.shape[1]))
        steps = normal @ factor.T + mean
    moves = np.zeros((count, horizon + 1, returns.shape[1]))
    np.cumsum(steps, axis=1, out=moves[:, 1:, :])
    return Paths(series=data.symbols, log_moves=moves, model=model, seed=seed)


def series_for_symbols(symbols: Sequence[str], series: Sequence[str]) -> npt.NDArray[np.int64]:
    """Index of the series each symbol follows: same base asset, else round-robin proxies."""
    bases = [base_asset(s) for s in series]
    result = np.zeros(len(symbols), dtype=np.int64)
    proxy = 0
    for index, symbol in enumerate(symbols):
        base = base_asset(symbol)
        if base in bases:
            result[index] = bases.index(base)
        else:
            result[index] = proxy % len(series)
            proxy += 1
    return result


def liquidation_probability(
    arrays: BookArrays, paths: Paths, *, backend: str | None = None
) -> MonteCarloResult:
    """Per account, the share of ``paths`` on which the cross scope / an isolated position is
    liquidated within the horizon."""
    mapping = series_for_symbols(arrays.symbols, paths.series)
    growth = np.exp(paths.log_moves)  # (paths, hours + 1, series)
    accounts = arrays.account_count
    cross_hits = np.zeros(accounts, dtype=np.int64)
    isolated_hits = np.zeros(accounts, dtype=np.int64)
    if use_numba(backend):
        tables = arrays.tables
        # cross positions first within each account (a stable sort keeps the account order)
        order = np.lexsort((arrays.isolated, arrays.account)).astype(np.int64)
        home = risk_brackets(arrays, order)
        lowest, highest = growth.min(axis=1).T.copy(), growth.max(axis=1).T.copy()
        probability_kernel(
            arrays.marks,
            mapping,
            growth,
            lowest,
            highest,
            np.stack([lowest.min(axis=1), lowest.max(axis=1)], axis=1),
            np.stack([highest.min(axis=1), highest.max(axis=1)], axis=1),
            *tables.kernel_arrays(),
            tables.continuous,
            arrays.account_start,
            order,
            arrays.isolated[order],
            home,
            *arrays.kernel_columns(),
            arrays.wallet,
            cross_hits,
            isolated_hits,
        )
    else:
        _probability_numpy(arrays, mapping, growth, cross_hits, isolated_hits)
    return MonteCarloResult(
        cross_probability=cross_hits / paths.count,
        isolated_probability=isolated_hits / paths.count,
        series_of_symbol=tuple(paths.series[i] for i in mapping),
        paths=paths.count,
        horizon_hours=paths.horizon,
        model=paths.model,
    )


def risk_brackets(arrays: BookArrays, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The bracket of each position at the book's marks."""
    return position_values(arrays, arrays.marks, positions).bracket


def _probability_numpy(
    arrays: BookArrays,
    mapping: npt.NDArray[np.int64],
    growth: Floats,
    cross_hits: npt.NDArray[np.int64],
    isolated_hits: npt.NDArray[np.int64],
) -> None:
    accounts = np.arange(arrays.account_count, dtype=np.int64)
    positions, owner = account_positions(arrays, accounts)
    isolated = arrays.isolated[positions]
    weight = 1.0 - isolated
    count = len(accounts)
    has_cross = np.bincount(owner, weights=weight, minlength=count) > 0
    for path in range(growth.shape[0]):
        cross = np.zeros(count, dtype=np.bool_)
        hit = np.zeros(count, dtype=np.bool_)
        for hour in range(growth.shape[1]):
            prices = arrays.marks * growth[path, hour, mapping]
            values = position_values(arrays, prices, positions)
            headroom = values.unrealized_pnl - values.maintenance_margin
            cross_headroom = arrays.wallet + np.bincount(
                owner, weights=weight * headroom, minlength=count
            )
            cross |= has_cross & (cross_headroom <= 0)
            isolated_down = isolated & (arrays.collateral[positions] + headroom <= 0)
            hit |= np.bincount(owner, weights=isolated_down, minlength=count) > 0
        cross_hits += cross
        isolated_hits += hit
