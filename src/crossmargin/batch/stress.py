"""Stress grids: a set of joint price shocks applied to every account of a book.

A shock ``k`` multiplies each mark by ``1 + relative[k, symbol]`` (the batch twin of
:func:`crossmargin.core.scenario.apply_shocks` for relative shocks). For every account and shock
the book is revalued (the formulas of :mod:`crossmargin.batch.risk`) and folded into:

* cross scope: the worst margin ratio (+inf where the margin balance is gone), which shocks make it
  liquidatable, and the worst loss;
* isolated positions: the worst margin ratio over the account's isolated positions, which shocks
  liquidate at least one of them, and the worst loss summed over them.

Loss of a scope under a shock = ``MB_base - MB_shocked`` capped at ``max(MB_base, 0)``: a scope
cannot lose more than it holds (the rest is the venue's bad debt). Negative values are gains. The
per-shock total ``loss_by_shock`` adds the losing scopes only (gains of others are not netted).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossmargin.batch._accel import jit, use_numba
from crossmargin.batch.convert import BookArrays, Floats
from crossmargin.batch.maintenance import bracket_of, maintenance_value, position_terms
from crossmargin.batch.risk import (
    Array,
    Bools,
    account_positions,
    position_values,
    ratio,
    summed,
)
from crossmargin.batch.risk_kernel import scope_ratio
from crossmargin.core.errors import InvalidInput

MAX_SHOCKS = 100_000
ALL_SYMBOLS = "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShockGrid:
    """``relative[k, s]``: the move of symbol ``s`` in shock ``k`` (-0.3 for -30%)."""

    labels: tuple[str, ...]
    relative: Floats

    @property
    def count(self) -> int:
        return int(self.relative.shape[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class StressResult:
    grid: ShockGrid
    cross_worst_ratio: Floats
    cross_liquidated: Bools  # (accounts, shocks)
    cross_worst_loss: Floats
    isolated_worst_ratio: Floats  # NaN for accounts without isolated positions
    isolated_liquidated: Bools  # (accounts, shocks): at least one isolated position
    isolated_worst_loss: Floats
    loss_by_shock: Floats  # (shocks,) losses of the losing scopes (cross and isolated), summed


def grid(symbols: Sequence[str], axes: Sequence[tuple[str, Sequence[float]]]) -> ShockGrid:
    """The cartesian product of per-symbol moves; ``"*"`` moves every symbol not named."""
    if not axes:
        raise InvalidInput("--shock-grid", "give at least one axis, e.g. BTCUSDT=-30%..0%/7")
    named = {symbol for symbol, _ in axes if symbol != ALL_SYMBOLS}
    seen: set[str] = set()
    for symbol, moves in axes:
        if symbol in seen:
            raise InvalidInput(f"--shock-grid {symbol}", "appears twice")
        seen.add(symbol)
        if symbol != ALL_SYMBOLS and symbol not in symbols:
            raise InvalidInput(f"--shock-grid {symbol}", "no position in this book")
        if not moves:
            raise InvalidInput(f"--shock-grid {symbol}", "has no moves")
        if min(moves) <= -1.0:
            raise InvalidInput(f"--shock-grid {symbol}", "a move of -100% or less leaves no price")
    count = int(np.prod([len(moves) for _, moves in axes]))
    if count > MAX_SHOCKS:
        raise InvalidInput("--shock-grid", f"{count} shocks; at most {MAX_SHOCKS}")
    relative = np.zeros((count, len(symbols)))
    labels = []
    for row, combination in enumerate(itertools.product(*(moves for _, moves in axes))):
        parts = []
        for (symbol, _), move in zip(axes, combination, strict=True):
            if symbol == ALL_SYMBOLS:
                columns = [i for i, s in enumerate(symbols) if s not in named]
            else:
                columns = [symbols.index(symbol)]
            relative[row, columns] = move
            parts.append(f"{symbol}{move * 100:+g}%")
        labels.append(" ".join(parts))
    return ShockGrid(labels=tuple(labels), relative=relative)


def empty_result(shocks: ShockGrid, accounts: int) -> StressResult:
    """A result to fold shocks into: worst values -inf, nothing liquidated, no loss."""
    return StressResult(
        grid=shocks,
        cross_worst_ratio=np.full(accounts, -np.inf),
        cross_liquidated=np.zeros((accounts, shocks.count), dtype=np.bool_),
        cross_worst_loss=np.full(accounts, -np.inf),
        isolated_worst_ratio=np.full(accounts, -np.inf),
        isolated_liquidated=np.zeros((accounts, shocks.count), dtype=np.bool_),
        isolated_worst_loss=np.full(accounts, -np.inf),
        loss_by_shock=np.zeros(shocks.count),
    )


def shocked_marks(arrays: BookArrays, shocks: ShockGrid) -> Floats:
    marks: Floats = arrays.marks[None, :] * (1.0 + shocks.relative)
    return marks


def stress(arrays: BookArrays, shocks: ShockGrid, *, backend: str | None = None) -> StressResult:
    """Every account under every shock of ``shocks``."""
    if shocks.relative.shape[1] != len(arrays.symbols):
        raise InvalidInput("shocks", "built for another book's symbols")
    marks = shocked_marks(arrays, shocks)
    accounts = arrays.account_count
    result = empty_result(shocks, accounts)
    if use_numba(backend):
        _stress_kernel(
            arrays.marks,
            marks,
            *arrays.tables.kernel_arrays(),
            *arrays.kernel_columns(),
            arrays.account_start,
            arrays.isolated,
            arrays.wallet,
            result.cross_worst_ratio,
            result.cross_liquidated,
            result.cross_worst_loss,
            result.isolated_worst_ratio,
            result.isolated_liquidated,
            result.isolated_worst_loss,
            result.loss_by_shock,
        )
    else:
        _stress_numpy(arrays, marks, result)
    has_isolated = np.bincount(arrays.account, weights=arrays.isolated, minlength=accounts) > 0
    result.isolated_worst_ratio[~has_isolated] = np.nan
    result.isolated_worst_loss[~has_isolated] = 0.0
    has_cross = np.bincount(arrays.account, weights=~arrays.isolated, minlength=accounts) > 0
    result.cross_worst_ratio[~has_cross] = 0.0
    result.cross_worst_loss[~has_cross] = 0.0
    return result


def _capped_loss(base: Floats, shocked: Floats) -> Floats:
    loss: Floats = np.minimum(base - shocked, np.maximum(base, 0.0))
    return loss


def _stress_numpy(arrays: BookArrays, marks: Floats, out: StressResult) -> None:
    accounts = np.arange(arrays.account_count, dtype=np.int64)
    positions, owner = account_positions(arrays, accounts)
    isolated = arrays.isolated[positions]
    weight = 1.0 - isolated
    collateral = arrays.collateral[positions]
    count = len(accounts)

    def scopes(prices: Floats) -> tuple[Floats, Floats, Floats, Floats]:
        values = position_values(arrays, prices, positions)
        balance = arrays.wallet + summed(owner, weight * values.unrealized_pnl, count)
        maintenance = summed(owner, weight * values.maintenance_margin, count)
        isolated_balance = collateral + values.unrealized_pnl
        return balance, maintenance, isolated_balance, values.maintenance_margin

    base_balance, _, base_isolated, _ = scopes(arrays.marks)
    has_cross = _has_cross(arrays)
    for shock in range(marks.shape[0]):
        balance, maintenance, isolated_balance, position_mm = scopes(marks[shock])
        cross_ratio = np.nan_to_num(ratio(maintenance, balance), nan=np.inf)
        np.maximum(out.cross_worst_ratio, cross_ratio, out=out.cross_worst_ratio)
        out.cross_liquidated[:, shock] = balance <= maintenance
        cross_loss = _capped_loss(base_balance, balance)
        np.maximum(out.cross_worst_loss, cross_loss, out=out.cross_worst_loss)
        isolated_ratio = np.where(
            isolated, np.nan_to_num(ratio(position_mm, isolated_balance), nan=np.inf), -np.inf
        )
        worst = np.full(count, -np.inf)
        np.maximum.at(worst, owner, isolated_ratio)
        np.maximum(out.isolated_worst_ratio, worst, out=out.isolated_worst_ratio)
        liquidated = isolated & (isolated_balance <= position_mm)
        out.isolated_liquidated[:, shock] = (
            np.bincount(owner, weights=liquidated, minlength=count) > 0
        )
        position_loss = np.where(isolated, _capped_loss(base_isolated, isolated_balance), 0.0)
        isolated_loss = np.bincount(owner, weights=position_loss, minlength=count)
        np.maximum(out.isolated_worst_loss, isolated_loss, out=out.isolated_worst_loss)
        out.loss_by_shock[shock] = float(
            np.sum(np.where(has_cross, np.maximum(cross_loss, 0.0), 0.0))
            + np.sum(np.maximum(position_loss, 0.0))
        )
    np.logical_and(out.cross_liquidated, has_cross[:, None], out=out.cross_liquidated)


def _has_cross(arrays: BookArrays) -> Bools:
    counts = np.bincount(arrays.account, weights=~arrays.isolated, minlength=arrays.account_count)
    result: Bools = counts > 0
    return result


def summary_by_shock(result: StressResult) -> list[dict[str, Any]]:
    """Per shock: how many accounts are liquidated (cross, isolated) and the total loss."""
    cross = result.cross_liquidated.sum(axis=0)
    isolated = result.isolated_liquidated.sum(axis=0)
    return [
        {
            "shock": label,
            "cross_liquidated": int(cross[k]),
            "isolated_liquidated": int(isolated[k]),
            "loss": float(result.loss_by_shock[k]),
        }
        for k, label in enumerate(result.grid.labels)
    ]


@jit
def _stress_kernel(
    base_marks: Array,
    marks: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    symbol: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    collateral: Array,
    at_entry: Array,
    account_start: Array,
    isolated: Array,
    wallet: Array,
    cross_worst_ratio: Array,
    cross_liquidated: Array,
    cross_worst_loss: Array,
    isolated_worst_ratio: Array,
    isolated_liquidated: Array,
    isolated_worst_loss: Array,
    loss_by_shock: Array,
) -> None:
    shocks = marks.shape[0]
    for account in range(wallet.shape[0]):
        start, stop = account_start[account], account_start[account + 1]
        cross_positions = 0
        for position in range(start, stop):
            cross_positions += 1 - isolated[position]
        for shock in range(-1, shocks):
            upnl_sum = 0.0
            maintenance_sum = 0.0
            isolated_ratio = -np.inf
            any_isolated = False
            isolated_loss = 0.0
            for position in range(start, stop):
                price = (
                    base_marks[symbol[position]] if shock < 0 else marks[shock, symbol[position]]
                )
                entry, table = entry_notional[position], instrument[position]
                _, upnl, valued = position_terms(
                    quantity[position], side[position], entry, price, at_entry[position]
                )
                bracket = bracket_of(caps, counts, table, valued)
                maintenance = maintenance_value(rates, amounts, table, bracket, valued)
                if isolated[position]:
                    balance = collateral[position] + upnl
                    if shock < 0:
                        continue
                    any_isolated |= balance <= maintenance
                    position_ratio = scope_ratio(maintenance, balance, np.inf)
                    isolated_ratio = max(isolated_ratio, position_ratio)
                    base_notional = quantity[position] * base_marks[symbol[position]]
                    base_balance = collateral[position] + side[position] * (base_notional - entry)
                    position_loss = min(base_balance - balance, max(base_balance, 0.0))
                    isolated_loss += position_loss
                    loss_by_shock[shock] += max(position_loss, 0.0)
                else:
                    upnl_sum += upnl
                    maintenance_sum += maintenance
            balance = wallet[account] + upnl_sum
            if shock < 0:
                base_cross = balance
                continue
            cross_ratio = scope_ratio(maintenance_sum, balance, np.inf)
            cross_loss = min(base_cross - balance, max(base_cross, 0.0))
            if cross_positions > 0:
                cross_worst_ratio[account] = max(cross_worst_ratio[account], cross_ratio)
                cross_liquidated[account, shock] = balance <= maintenance_sum
                cross_worst_loss[account] = max(cross_worst_loss[account], cross_loss)
                loss_by_shock[shock] += max(cross_loss, 0.0)
            isolated_worst_ratio[account] = max(isolated_worst_ratio[account], isolated_ratio)
            isolated_liquidated[account, shock] = any_isolated
            isolated_worst_loss[account] = max(isolated_worst_loss[account], isolated_loss)
