"""The declared agreement between the batch path and the Decimal core, as one checking function.

Continuous outputs agree to a relative 1e-9 of the quantities involved, plus the core's rounding
(every requirement is rounded up to 1e-8, a liquidation price toward the mark to 1e-8, a ratio up
to 1e-8). Discrete outputs (bracket, liquidatable, which root is the liquidation price) agree
exactly outside a guard band around their thresholds:

* bracket: the valued notional within a relative 1e-9 of a cap;
* liquidatable: the margin balance within 1e-9 of the scope's size (plus one quantum per
  position) of the maintenance margin;
* liquidation price: the scope at the threshold already, a root within a relative 1e-7 of a
  bracket breakpoint (``cap / q``) or of the zero price (the core keeps only positive roots: a
  root at 0, as for a hedge of equal legs, comes out of floats as +-1e-14), or the roots below and
  above the mark about equally near.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from crossmargin.batch.convert import BookArrays
from crossmargin.batch.liquidation import position_scopes, solve
from crossmargin.batch.risk import Valuation
from crossmargin.core.risk import AccountReport, Book
from crossmargin.core.venues import VenueRules

RELATIVE = 1e-9
QUANTUM = 1e-8
BREAKPOINT_BAND = 1e-7


def close(batch: float, core: Decimal | float, scale: float, slack: float = QUANTUM) -> bool:
    exact = float(core)
    return abs(batch - exact) <= RELATIVE * max(abs(exact), scale) + slack


def _breakpoints(book: Book, rules: VenueRules, symbol: str) -> list[float]:
    points: list[float] = []
    for position in book.positions:
        if position.symbol != symbol:
            continue
        if rules.isolated_maintenance_at_entry and position.is_isolated:
            continue
        caps = book.instruments[symbol].caps
        points.extend(float(cap / position.quantity) for cap in caps)
    return points


def check_account(
    book: Book,
    report: AccountReport,
    arrays: BookArrays,
    valuation: Valuation,
    liquidation: np.ndarray,
    account: int,
) -> int:
    """Assert the batch account ``account`` agrees with ``report``; returns guarded comparisons."""
    guarded = 0
    start = int(arrays.account_start[account])
    scopes = position_scopes(arrays, valuation)
    crossings = solve(arrays.tables, scopes)
    cross_count = sum(1 for p in book.positions if not p.is_isolated)
    scale = float(book.wallet_balance)
    for offset, row in enumerate(report.positions):
        i = start + offset
        position = row.position
        notional = float(row.risk.notional)
        scale += notional + float(position.entry_notional) + float(position.isolated_margin or 0)
        assert close(valuation.notional[i], row.risk.notional, notional, 0.0)
        assert close(valuation.unrealized_pnl[i], row.risk.unrealized_pnl, notional, 0.0)
        assert close(valuation.initial_margin[i], row.risk.initial_margin, notional)
        assert close(valuation.maintenance_margin[i], row.risk.maintenance_margin, notional)
        valued = (
            position.entry_notional
            if arrays.maintenance_at_entry[i]
            else position.quantity * row.mark_price
        )
        caps = book.instruments[position.symbol].caps
        if any(abs(valued - cap) <= Decimal("1e-9") * cap for cap in caps):
            guarded += 1
        else:
            assert valuation.bracket[i] == row.bracket_index, (i, valued)
        guarded += _check_liquidation_price(book, row, arrays, valuation, crossings, i, liquidation)
        if position.is_isolated:
            balance = float(position.isolated_margin or 0) + float(row.risk.unrealized_pnl)
            gap = balance - float(row.risk.maintenance_margin)
            if abs(gap) <= RELATIVE * (abs(balance) + notional) + 2 * QUANTUM:
                guarded += 1
            else:
                assert bool(valuation.isolated_liquidatable[i]) == row.liquidatable, i
    balance = float(report.margin_balance)
    maintenance = float(report.cross.maintenance_margin)
    assert close(valuation.margin_balance[account], report.margin_balance, scale, 0.0)
    assert close(
        valuation.maintenance[account],
        report.cross.maintenance_margin,
        scale,
        QUANTUM * (cross_count + 1),
    )
    band = RELATIVE * scale + QUANTUM * (cross_count + 1)
    if abs(balance - maintenance) <= band:
        guarded += 1
    else:
        assert bool(valuation.cross_liquidatable[account]) == report.cross_liquidatable
    ratio = valuation.margin_ratio[account]
    if report.margin_ratio is None:
        assert math.isnan(ratio) or abs(balance) <= band
    elif abs(balance) > band:
        exact = float(report.margin_ratio)
        slack = QUANTUM + band / abs(balance) * (1 + exact)
        assert abs(ratio - exact) <= RELATIVE * exact + slack, (ratio, exact)
    return guarded


def _check_liquidation_price(
    book: Book,
    row: object,
    arrays: BookArrays,
    valuation: Valuation,
    crossings: object,
    i: int,
    liquidation: np.ndarray,
) -> int:
    from crossmargin.batch.liquidation import Crossings
    from crossmargin.core.risk import PositionReport

    assert isinstance(row, PositionReport) and isinstance(crossings, Crossings)
    mark = float(row.mark_price)
    batch = float(liquidation[i])
    core = row.liquidation_price
    # the scope's value at the mark and its size
    account = int(arrays.account[i])
    if arrays.isolated[i]:
        value = arrays.collateral[i] + valuation.unrealized_pnl[i] - valuation.maintenance_margin[i]
        size = arrays.collateral[i] + valuation.notional[i] + arrays.entry_notional[i]
    else:
        value = valuation.margin_balance[account] - valuation.maintenance[account]
        size = abs(arrays.wallet[account]) + sum(
            valuation.notional[j] + arrays.entry_notional[j]
            for j in range(arrays.account_start[account], arrays.account_start[account + 1])
        )
    if abs(value) <= RELATIVE * size + QUANTUM * 4:
        return 1
    points = _breakpoints(book, book.rules, row.position.symbol)
    candidates = [
        p for p in (batch, float(core) if core is not None else math.nan) if not math.isnan(p)
    ]
    if any(abs(p - q) <= BREAKPOINT_BAND * q for p in candidates for q in points):
        return 1
    down, up = float(crossings.down[i]), float(crossings.up[i])
    if any(0 <= p <= BREAKPOINT_BAND * mark for p in (*candidates, down)):
        return 1
    both = not (math.isnan(down) or math.isnan(up))
    if both and abs(abs(mark - down) - abs(up - mark)) <= BREAKPOINT_BAND * mark:
        return 1
    if core is None:
        assert math.isnan(batch), (i, batch)
        return 0
    assert not math.isnan(batch), (i, core)
    assert abs(batch - float(core)) <= RELATIVE * float(core) + 2 * QUANTUM, (i, batch, core)
    return 0
