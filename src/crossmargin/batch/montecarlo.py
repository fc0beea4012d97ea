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

from crossmargin.batch._accel import jit_inline, jit_parallel, prange, use_numba
from crossmargin.batch.convert import BookArrays, Floats
from crossmargin.batch.history import MarketHistory, base_asset, market_history
from crossmargin.batch.maintenance import maintenance_line, position_maintenance
from crossmargin.batch.risk import Array, account_positions, position_values
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
        _probability_kernel(
            arrays.marks,
            mapping,
            growth,
            lowest,
            highest,
            np.stack([lowest.min(axis=1), lowest.max(axis=1)], axis=1),
            np.stack([highest.min(axis=1), highest.max(axis=1)], axis=1),
            tables.caps,
            tables.rates,
            tables.amounts,
            tables.counts,
            tables.continuous,
            arrays.account_start,
            order,
            arrays.isolated[order],
            home,
            arrays.symbol,
            arrays.instrument,
            arrays.side,
            arrays.quantity,
            arrays.entry_notional,
            arrays.collateral,
            arrays.maintenance_at_entry,
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


@jit_parallel
def _probability_kernel(
    marks: Array,
    mapping: Array,
    growth: Array,
    lowest: Array,
    highest: Array,
    lowest_range: Array,
    highest_range: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    continuous: Array,
    scope_start: Array,
    scope_positions: Array,
    scope_isolated: Array,
    home_bracket: Array,
    symbol: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    collateral: Array,
    at_entry: Array,
    wallet: Array,
    cross_hits: Array,
    isolated_hits: Array,
) -> None:
    """Per account (cross positions first in ``scope_positions``), one position at a time over
    all paths: ``lowest``/``highest`` are (series, paths), so the inner loop is contiguous."""

    def headroom(price: float, position: int, guess: int) -> float:
        return _headroom(
            price,
            position,
            guess,
            caps,
            rates,
            amounts,
            counts,
            instrument,
            side,
            quantity,
            entry_notional,
            at_entry,
        )

    paths, hours = growth.shape[0], growth.shape[1]
    for account in prange(wallet.shape[0]):
        start, stop = scope_start[account], scope_start[account + 1]
        split = start
        while split < stop and not scope_isolated[split]:
            split += 1
        exact_cross = split - start == 1 and continuous[instrument[scope_positions[start]]]
        bound = np.full(paths, wallet[account])
        isolated_down = np.zeros(paths, dtype=np.bool_)
        # each cross position's line and whether every price of every path stays on it
        line_intercept = np.empty(split - start)
        line_slope = np.empty(split - start)
        line_exact = np.empty(split - start, dtype=np.bool_)
        for row in range(start, stop):
            position = scope_positions[row]
            series = mapping[symbol[position]]
            mark = marks[symbol[position]]
            long = side[position] > 0
            moves = lowest[series] if long else highest[series]
            extreme = lowest_range[series] if long else highest_range[series]
            home = home_bracket[row]
            intercept, slope, low_move, high_move = _home_line(
                mark,
                position,
                home,
                caps,
                rates,
                amounts,
                counts,
                instrument,
                side,
                quantity,
                entry_notional,
                at_entry,
            )
            # every path stays in the bracket at the mark: one affine line, a vectorised loop
            inside = low_move < extreme[0] and extreme[1] <= high_move
            if row < split:
                line_intercept[row - start] = intercept
                line_slope[row - start] = slope
                line_exact[row - start] = (
                    low_move < lowest_range[series, 0] and highest_range[series, 1] <= high_move
                )
            if row < split and inside:
                for path in range(paths):
                    bound[path] += intercept + slope * moves[path]
            elif row < split:
                for path in range(paths):
                    bound[path] += headroom(mark * moves[path], position, home)
            elif continuous[instrument[position]] and inside:
                margin = collateral[position] + intercept
                for path in range(paths):
                    isolated_down[path] |= margin + slope * moves[path] <= 0.0
            elif continuous[instrument[position]]:
                for path in range(paths):
                    isolated_down[path] |= (
                        collateral[position] + headroom(mark * moves[path], position, home) <= 0.0
                    )
            else:
                for path in range(paths):
                    for hour in range(hours):
                        price = mark * growth[path, hour, series]
                        if collateral[position] + headroom(price, position, home) <= 0.0:
                            isolated_down[path] = True
                            break
        hits = 0
        if split > start:
            for path in range(paths):
                if bound[path] > 0.0:
                    continue
                if exact_cross:
                    hits += 1
                    continue
                for hour in range(hours):
                    total = wallet[account]
                    for row in range(start, split):
                        position = scope_positions[row]
                        move = growth[path, hour, mapping[symbol[position]]]
                        if line_exact[row - start]:
                            total += line_intercept[row - start] + line_slope[row - start] * move
                            continue
                        price = marks[symbol[position]] * move
                        total += headroom(price, position, home_bracket[row])
                    if total <= 0.0:
                        hits += 1
                        break
        cross_hits[account] = hits
        isolated_hits[account] = isolated_down.sum()


@jit_inline
def _home_line(
    mark: float,
    position: int,
    home: int,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    at_entry: Array,
) -> tuple[float, float, float, float]:
    """UPNL - MM as ``intercept + slope * move`` (price = mark * move) while the bracket stays
    ``home``, and the open/closed move interval where it does."""
    table = instrument[position]
    sign = side[position]
    entry = entry_notional[position]
    fixed_maintenance, rate = maintenance_line(
        rates, amounts, table, home, at_entry[position], entry
    )
    scale = quantity[position] * mark
    if at_entry[position]:
        return -sign * entry - fixed_maintenance, scale * sign, -np.inf, np.inf
    low = caps[table, home - 1] / scale if home > 0 else -np.inf
    high = caps[table, home] / scale if home < counts[table] - 1 else np.inf
    return -sign * entry - fixed_maintenance, scale * (sign - rate), low, high


@jit_inline
def _headroom(
    price: float,
    position: int,
    guess: int,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    at_entry: Array,
) -> float:
    """UPNL - MM of one position at ``price`` (the formulas of batch.risk); ``guess`` is the
    bracket at the mark, checked first because prices mostly stay in it."""
    notional = quantity[position] * price
    entry = entry_notional[position]
    _, maintenance = position_maintenance(
        caps,
        rates,
        amounts,
        counts,
        instrument[position],
        at_entry[position],
        entry,
        notional,
        guess,
    )
    result: float = side[position] * (notional - entry) - maintenance
    return result
