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

The numba kernel (:mod:`crossmargin.batch.liquidation_kernel`) walks each scope in turn; the
numpy fallback walks all scopes in lock step (one numpy pass per segment step; at most
``2 * brackets + 1`` steps). Both do the same operations in
the same order. The result is not rounded (the core rounds toward the mark to 1e-8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmargin.batch._accel import use_numba
from crossmargin.batch.convert import BookArrays, BracketTables, Floats, Ints
from crossmargin.batch.liquidation_kernel import solve_kernel
from crossmargin.batch.maintenance import bracket_lookup, maintenance_lines
from crossmargin.batch.risk import Bools, Valuation


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
        solve_kernel(
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
    _, _, lines = _segment_lines(tables, scopes, points, every, start, with_maintenance)
    healthy = lines.constant + lines.slope * scopes.mark > 0
    sign = np.where(healthy, 1.0, -1.0)
    down = _walk(tables, scopes, points, start, sign, with_maintenance, up=False)
    up = _walk(tables, scopes, points, start, sign, with_maintenance, up=True)
    return Crossings(down=down, up=up, healthy=healthy)


def _segment_lines(
    tables: BracketTables,
    scopes: Scopes,
    points: Floats,
    rows: Ints,
    segment: Ints,
    with_maintenance: bool,
) -> tuple[Floats, Floats, _Lines]:
    """The bounds of each row's ``segment`` and ``f``'s line on it."""
    low, high = _bounds(points, rows, segment)
    fixed = scopes.fixed_equity[rows]
    return low, high, _lines(tables, scopes, rows, _probe(low, high), fixed, with_maintenance)


def _walk(
    tables: BracketTables,
    scopes: Scopes,
    points: Floats,
    start: Ints,
    sign: Floats,
    with_maintenance: bool,
    *,
    up: bool,
) -> Floats:
    """Twin of ``_first_crossing_down`` (``up`` False: the largest P <= mark with
    ``sign * f(P) <= 0``) and ``_first_crossing_up`` (the smallest P >= mark), for every scope in
    lock step, segment by segment away from the mark."""
    result = np.full(len(start), np.nan)
    rows = np.arange(len(start), dtype=np.int64)
    segment = start.copy()
    near = scopes.mark.copy()  # the end of the current segment nearest the mark
    while len(rows):
        low, high, lines = _segment_lines(tables, scopes, points, rows, segment, with_maintenance)
        far = high if up else low
        row_sign = sign[rows]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            root = -lines.constant / lines.slope
            at_near = row_sign * (lines.constant + lines.slope * near) <= 0
            crossed = ~at_near & (row_sign * (lines.constant + lines.slope * far) <= 0)
        if up:  # past the last breakpoint the line runs on: it crosses if it falls
            unbounded = ~at_near & ~np.isfinite(high)
            crossed &= ~unbounded
            falls = unbounded & (row_sign * lines.slope < 0)
            result[rows[falls]] = root[falls]
            going = ~(at_near | unbounded | crossed)
        else:
            going = ~(at_near | crossed) & (segment > 0)
        result[rows[at_near]] = near[at_near]
        result[rows[crossed]] = root[crossed]
        rows, segment, near = rows[going], segment[going] + (1 if up else -1), far[going]
    return np.where(result > 0, result, np.nan)
