"""Vectorised liquidation prices: the batch twin of :func:`crossmargin.core.liquidation.solve_price`.

The semantics are the core's, segment for segment. A scope (an isolated position, or the cross
legs of one symbol in one account) has

  f(P) = fixed_equity + sum_legs s_i * (q_i * P - entry_notional_i) - sum_legs MM_i(P)

with ``fixed_equity`` the isolated margin, or for cross ``wallet + sum over the account's other
cross positions of (UPNL - MM)`` at their marks. ``f`` is affine between the breakpoints
``cap / q_i``; the solver walks the segments outward from the mark in both directions (the
"solve, re-check the bracket at the solution, solve again" rule done exhaustively) and keeps the
crossing nearest the mark. No crossing at a positive price gives NaN (the core's None); a scope
already liquidatable whose health no price restores gives the mark.

The numba kernel walks each scope in turn; the numpy fallback walks all scopes in lock step (one
numpy pass per segment step; at most ``2 * brackets + 1`` steps). Both do the same operations in
the same order. The result is not rounded (the core rounds toward the mark to 1e-8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmargin.batch._accel import jit, jit_inline, use_numba
from crossmargin.batch.convert import BookArrays, BracketTables, Floats, Ints
from crossmargin.batch.maintenance import (
    bracket_lookup,
    bracket_of,
    maintenance_line,
    maintenance_lines,
)
from crossmargin.batch.risk import Array, Bools, Valuation


@dataclass(frozen=True, slots=True, kw_only=True)
class Scopes:
    """Up to two moving legs per scope, columns 0 and 1 (column 1 absent: ``present`` False)."""

    mark: Floats
    fixed_equity: Floats
    instrument: Ints  # (n, 2)
    side: Floats
    quantity: Floats
    entry_notional: Floats
    at_entry: Bools
    present: Bools


@dataclass(frozen=True, slots=True, kw_only=True)
class Crossings:
    """The first crossing walking down and walking up from the mark (NaN: none)."""

    down: Floats
    up: Floats
    healthy: Bools

    def nearest(self, mark: Floats) -> Floats:
        """The core's choice: the positive crossing nearest the mark (down wins a tie)."""
        down_distance = np.where(np.isnan(self.down), np.inf, np.abs(mark - self.down))
        up_distance = np.where(np.isnan(self.up), np.inf, np.abs(self.up - mark))
        best = np.where(up_distance < down_distance, self.up, self.down)
        none = np.isnan(self.down) & np.isnan(self.up)
        return np.where(none, np.where(self.healthy, np.nan, mark), best)


def position_scopes(arrays: BookArrays, valuation: Valuation) -> Scopes:
    """One scope per position: itself if isolated, its symbol's cross legs otherwise."""
    count = arrays.position_count
    everyone = np.arange(count, dtype=np.int64)
    partner = arrays.partner.astype(np.int64)
    has_partner = (partner >= 0) & ~arrays.isolated
    other = np.where(has_partner, partner, everyone)
    own = valuation.unrealized_pnl - valuation.maintenance_margin
    group = own + np.where(has_partner, own[other], 0.0)
    account = arrays.account
    cross_fixed = valuation.margin_balance[account] - valuation.maintenance[account] - group
    fixed = np.where(arrays.isolated, arrays.collateral, cross_fixed)
    legs = np.stack([everyone, other], axis=1)
    present = np.stack([np.ones(count, dtype=np.bool_), has_partner], axis=1)
    return Scopes(
        mark=valuation.marks[arrays.symbol],
        fixed_equity=fixed,
        instrument=arrays.instrument.astype(np.int64)[legs],
        side=arrays.side[legs],
        quantity=arrays.quantity[legs],
        entry_notional=arrays.entry_notional[legs],
        at_entry=arrays.maintenance_at_entry[legs],
        present=present,
    )


def liquidation_prices(
    arrays: BookArrays, valuation: Valuation, *, backend: str | None = None
) -> Floats:
    """Liquidation price of every position (NaN: none), twin of ``position_liquidation_price``."""
    scopes = position_scopes(arrays, valuation)
    return solve(arrays.tables, scopes, backend=backend).nearest(scopes.mark)


def breakpoints(tables: BracketTables, scopes: Scopes) -> Floats:
    """Sorted distinct prices ``cap / q`` per scope (+inf padding), as ``_Scope.breakpoints``."""
    caps = tables.caps[scopes.instrument]  # (n, 2, width)
    moving = scopes.present & ~scopes.at_entry
    with np.errstate(divide="ignore"):
        points = caps / np.where(moving, scopes.quantity, 0.0)[:, :, None]
    points = np.where(moving[:, :, None], points, np.inf).reshape(len(scopes.mark), -1)
    points.sort(axis=1)
    repeated = np.zeros(points.shape, dtype=np.bool_)
    repeated[:, 1:] = points[:, 1:] == points[:, :-1]
    points[repeated] = np.inf
    points.sort(axis=1)
    return points


@dataclass(frozen=True, slots=True)
class _Lines:
    constant: Floats
    slope: Floats


def _lines(
    tables: BracketTables,
    scopes: Scopes,
    rows: Ints,
    probe: Floats,
    fixed: Floats,
    with_maintenance: bool,
) -> _Lines:
    """The affine ``f`` on the segments holding ``probe`` (twin of ``_Scope.affine``)."""
    constant = fixed.copy()
    slope = np.zeros(len(rows))
    for leg in (0, 1):
        present = scopes.present[rows, leg]
        side = scopes.side[rows, leg]
        quantity = scopes.quantity[rows, leg]
        entry = scopes.entry_notional[rows, leg]
        constant -= np.where(present, side * entry, 0.0)
        slope += np.where(present, side * quantity, 0.0)
        if not with_maintenance:
            continue
        at_entry = scopes.at_entry[rows, leg]
        instrument = scopes.instrument[rows, leg]
        valued = np.where(at_entry, entry, quantity * probe)
        bracket = bracket_lookup(tables, instrument, valued)
        fixed_maintenance, rate = maintenance_lines(tables, instrument, bracket, at_entry, entry)
        constant -= np.where(present, fixed_maintenance, 0.0)
        slope -= np.where(present, quantity * rate, 0.0)
    return _Lines(constant, slope)


def _bounds(points: Floats, rows: Ints, segment: Ints) -> tuple[Floats, Floats]:
    width = points.shape[1]
    low = np.where(segment > 0, points[rows, np.clip(segment - 1, 0, width - 1)], 0.0)
    high = np.where(segment < width, points[rows, np.clip(segment, 0, width - 1)], np.inf)
    return low, high


def _probe(low: Floats, high: Floats) -> Floats:
    unbounded = np.where(low > 0, low * 2, 1.0)
    return np.where(np.isfinite(high), (low + high) / 2, unbounded)


def solve(
    tables: BracketTables,
    scopes: Scopes,
    *,
    with_maintenance: bool = True,
    backend: str | None = None,
) -> Crossings:
    """The first crossings below and above the mark, for every scope at once."""
    count = len(scopes.mark)
    if use_numba(backend):
        down, up = np.empty(count), np.empty(count)
        healthy = np.empty(count, dtype=np.bool_)
        _solve_kernel(
            scopes.mark,
            scopes.fixed_equity,
            scopes.instrument,
            scopes.side,
            scopes.quantity,
            scopes.entry_notional,
            scopes.at_entry,
            scopes.present,
            tables.caps,
            tables.rates,
            tables.amounts,
            tables.counts,
            with_maintenance,
            down,
            up,
            healthy,
        )
        return Crossings(down=down, up=up, healthy=healthy)
    points = breakpoints(tables, scopes) if with_maintenance else np.full((count, 1), np.inf)
    every = np.arange(count, dtype=np.int64)
    start = np.sum(points < scopes.mark[:, None], axis=1).astype(np.int64)
    low, high = _bounds(points, every, start)
    lines = _lines(tables, scopes, every, _probe(low, high), scopes.fixed_equity, with_maintenance)
    healthy = lines.constant + lines.slope * scopes.mark > 0
    sign = np.where(healthy, 1.0, -1.0)
    down = _walk_down(tables, scopes, points, start, sign, with_maintenance)
    up = _walk_up(tables, scopes, points, start, sign, with_maintenance)
    return Crossings(down=down, up=up, healthy=healthy)


def _walk_down(
    tables: BracketTables,
    scopes: Scopes,
    points: Floats,
    start: Ints,
    sign: Floats,
    with_maintenance: bool,
) -> Floats:
    """Twin of ``_first_crossing_down``: largest P <= mark with sign * f(P) <= 0."""
    result = np.full(len(start), np.nan)
    rows = np.arange(len(start), dtype=np.int64)
    segment = start.copy()
    high = scopes.mark.copy()
    while len(rows):
        low, _ = _bounds(points, rows, segment)
        lines = _lines(
            tables,
            scopes,
            rows,
            _probe(low, _bounds(points, rows, segment)[1]),
            scopes.fixed_equity[rows],
            with_maintenance,
        )
        row_sign = sign[rows]
        at_high = row_sign * (lines.constant + lines.slope * high) <= 0
        at_low = ~at_high & (row_sign * (lines.constant + lines.slope * low) <= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -lines.constant / lines.slope
        result[rows[at_high]] = high[at_high]
        result[rows[at_low]] = np.where(root[at_low] > 0, root[at_low], np.nan)
        going = ~(at_high | at_low) & (segment > 0)
        rows, segment, high = rows[going], segment[going] - 1, low[going]
    return result


def _walk_up(
    tables: BracketTables,
    scopes: Scopes,
    points: Floats,
    start: Ints,
    sign: Floats,
    with_maintenance: bool,
) -> Floats:
    """Twin of ``_first_crossing_up``: smallest P >= mark with sign * f(P) <= 0."""
    result = np.full(len(start), np.nan)
    rows = np.arange(len(start), dtype=np.int64)
    segment = start.copy()
    low = scopes.mark.copy()
    while len(rows):
        segment_low, high = _bounds(points, rows, segment)
        lines = _lines(
            tables,
            scopes,
            rows,
            _probe(segment_low, high),
            scopes.fixed_equity[rows],
            with_maintenance,
        )
        row_sign = sign[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -lines.constant / lines.slope
            at_low = row_sign * (lines.constant + lines.slope * low) <= 0
            unbounded = ~at_low & ~np.isfinite(high)
            falls = unbounded & (row_sign * lines.slope < 0)
            at_high = ~at_low & ~unbounded & (row_sign * (lines.constant + lines.slope * high) <= 0)
        result[rows[at_low]] = low[at_low]
        result[rows[falls]] = root[falls]
        result[rows[at_high]] = root[at_high]
        going = ~(at_low | unbounded | at_high)
        rows, segment, low = rows[going], segment[going] + 1, high[going]
    return np.where(result > 0, result, np.nan)


@jit_inline
def _segment_line(
    scope: int,
    low: float,
    high: float,
    fixed: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    at_entry: Array,
    present: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    with_maintenance: bool,
) -> tuple[float, float]:
    """Scalar twin of :func:`_lines` (the same operations in the same order)."""
    unbounded = low * 2 if low > 0 else 1.0
    probe = (low + high) / 2 if np.isfinite(high) else unbounded
    constant = fixed[scope]
    slope = 0.0
    for leg in range(2):
        if not present[scope, leg]:
            continue
        sign = side[scope, leg]
        size = quantity[scope, leg]
        entry = entry_notional[scope, leg]
        constant -= sign * entry
        slope += sign * size
        if not with_maintenance:
            continue
        table = instrument[scope, leg]
        valued = entry if at_entry[scope, leg] else size * probe
        bracket = bracket_of(caps, counts, table, valued)
        fixed_maintenance, rate = maintenance_line(
            rates, amounts, table, bracket, at_entry[scope, leg], entry
        )
        constant -= fixed_maintenance
        slope -= size * rate
    return constant, slope


@jit_inline
def _breakpoints(
    scope: int,
    points: Array,
    instrument: Array,
    quantity: Array,
    at_entry: Array,
    present: Array,
    caps: Array,
) -> int:
    """Scalar twin of :func:`breakpoints`: fills ``points`` and returns how many are distinct."""
    count = 0
    for leg in range(2):
        if not present[scope, leg] or at_entry[scope, leg]:
            continue
        table = instrument[scope, leg]
        for column in range(caps.shape[1]):
            cap = caps[table, column]
            if np.isfinite(cap):
                points[count] = cap / quantity[scope, leg]
                count += 1
    points[:count].sort()
    distinct = 0
    for index in range(count):
        if distinct == 0 or points[index] != points[distinct - 1]:
            points[distinct] = points[index]
            distinct += 1
    return distinct


@jit_inline
def _crossing_down(
    constant: float, slope: float, sign: float, top: float, low: float
) -> tuple[bool, float]:
    """One step of :func:`_walk_down` on the segment ``[low, top]``: (found, price or NaN)."""
    if sign * (constant + slope * top) <= 0:
        return True, top
    if sign * (constant + slope * low) <= 0:
        root = -constant / slope
        return True, root if root > 0 else np.nan
    return False, np.nan


@jit_inline
def _crossing_up(
    constant: float, slope: float, sign: float, bottom: float, high: float
) -> tuple[bool, float]:
    """One step of :func:`_walk_up` on the segment ``[bottom, high]``: (found, price or NaN)."""
    if sign * (constant + slope * bottom) <= 0:
        return True, bottom
    if not np.isfinite(high):
        return True, -constant / slope if sign * slope < 0 else np.nan
    if sign * (constant + slope * high) <= 0:
        return True, -constant / slope
    return False, np.nan


@jit
def _solve_kernel(
    mark: Array,
    fixed: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    at_entry: Array,
    present: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    with_maintenance: bool,
    out_down: Array,
    out_up: Array,
    out_healthy: Array,
) -> None:
    """Scalar twin of :func:`solve` per scope: breakpoints, then one loop over the segments it
    visits: the mark's segment (whose line at the mark decides ``healthy``), walking down to the
    first crossing, then from the mark's segment again walking up."""
    points = np.empty(2 * caps.shape[1] + 1)
    for scope in range(mark.shape[0]):
        count = 0
        if with_maintenance:
            count = _breakpoints(scope, points, instrument, quantity, at_entry, present, caps)
        price = mark[scope]
        start = 0
        while start < count and points[start] < price:
            start += 1
        segment, edge, down, sign = start, price, True, 0.0
        while True:
            low = points[segment - 1] if segment > 0 else 0.0
            high = points[segment] if segment < count else np.inf
            constant, slope = _segment_line(
                scope,
                low,
                high,
                fixed,
                instrument,
                side,
                quantity,
                entry_notional,
                at_entry,
                present,
                caps,
                rates,
                amounts,
                counts,
                with_maintenance,
            )
            if sign == 0.0:
                healthy = constant + slope * price > 0
                out_healthy[scope] = healthy
                sign = 1.0 if healthy else -1.0
            if down:
                found, crossing = _crossing_down(constant, slope, sign, edge, low)
                if found or segment == 0:
                    out_down[scope] = crossing
                    segment, edge, down = start, price, False
                else:
                    segment, edge = segment - 1, low
                continue
            found, crossing = _crossing_up(constant, slope, sign, edge, high)
            if found:
                out_up[scope] = crossing if crossing > 0 else np.nan
                break
            segment, edge = segment + 1, high
