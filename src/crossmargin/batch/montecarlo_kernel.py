"""The numba kernel of :mod:`crossmargin.batch.montecarlo`: liquidation hits per account.

Per account, every position is first bounded over all paths at once: ``UPNL - MM`` is affine in
the price move while the bracket stays the one at the mark (``home_line``), so when every path
stays inside that bracket the bound is one line evaluated per path; otherwise ``headroom`` values
the position at each path's worst move. Only the cross scopes whose bound does not clear are
walked hour by hour. ``home_line`` and ``headroom`` are inner functions that numba inlines; they
read the position arrays of the kernel directly and value MM with the one maintenance helper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import jit_parallel, prange
from crossmargin.batch.maintenance import (
    bracket_near,
    maintenance_line,
    maintenance_value,
    position_terms,
)

Array = npt.NDArray[Any]


@jit_parallel
def probability_kernel(  # noqa: PLR0912, PLR0915 - one pass per account: bound, shortcuts, walk
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

    def home_line(mark: float, position: int, home: int) -> tuple[float, float, float, float]:
        """UPNL - MM as ``intercept + slope * move`` (price = mark * move) while the bracket stays
        ``home``, and the open/closed move interval where it does."""
        table = instrument[position]
        sign = side[position]
        entry = entry_notional[position]
        constant, rate = maintenance_line(rates, amounts, table, home, at_entry[position], entry)
        scale = quantity[position] * mark
        if at_entry[position]:
            return -sign * entry - constant, scale * sign, -np.inf, np.inf
        low = caps[table, home - 1] / scale if home > 0 else -np.inf
        high = caps[table, home] / scale if home < counts[table] - 1 else np.inf
        return -sign * entry - constant, scale * (sign - rate), low, high

    def headroom(price: float, position: int, guess: int) -> float:
        """UPNL - MM of one position at ``price``; ``guess`` is the bracket at the mark, checked
        first because prices mostly stay in it."""
        table = instrument[position]
        _, upnl, valued = position_terms(
            quantity[position], side[position], entry_notional[position], price, at_entry[position]
        )
        bracket = bracket_near(caps, counts, table, valued, guess)
        result: float = upnl - maintenance_value(rates, amounts, table, bracket, valued)
        return result

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
            intercept, slope, low_move, high_move = home_line(mark, position, home)
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
