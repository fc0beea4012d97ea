"""The numba kernel of :mod:`crossmargin.batch.liquidation`: each scope's walk in turn.

Scalar twin of ``liquidation.solve``, the same operations in the same order: the breakpoints
``cap / q`` of the scope's moving legs, then one loop over the segments it visits: the mark's
segment (whose line at the mark decides whether the scope is healthy), walking down to the first
crossing, then from the mark's segment again walking up. ``segment_line`` (``f``'s line on a
segment, the twin of ``liquidation._lines``) is an inner function numba inlines; it reads the
scope arrays directly and takes MM from the one maintenance helper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import jit, jit_inline
from crossmargin.batch.maintenance import bracket_of, maintenance_line

Array = npt.NDArray[Any]


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
    """Scalar twin of ``liquidation.breakpoints``: fills ``points``, returns how many are distinct."""
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
def _crossing(
    constant: float, slope: float, sign: float, near: float, far: float
) -> tuple[bool, float]:
    """One step of a walk on the segment from ``near`` (the end nearest the mark) to ``far``:
    (found, the crossing, or NaN when none). Past the last breakpoint (``far`` infinite, walking
    up) the line runs on and crosses where it falls."""
    if sign * (constant + slope * near) <= 0:
        return True, near
    if not np.isfinite(far):
        return True, -constant / slope if sign * slope < 0 else np.nan
    if sign * (constant + slope * far) <= 0:
        return True, -constant / slope
    return False, np.nan


@jit
def solve_kernel(
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
    """The first crossings below and above each scope's mark, and whether it is healthy."""

    def segment_line(scope: int, low: float, high: float) -> tuple[float, float]:
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
            table, valued_at_entry = instrument[scope, leg], at_entry[scope, leg]
            valued = entry if valued_at_entry else size * probe
            bracket = bracket_of(caps, counts, table, valued)
            fixed_maintenance, rate = maintenance_line(
                rates, amounts, table, bracket, valued_at_entry, entry
            )
            constant -= fixed_maintenance
            slope -= size * rate
        return constant, slope

    points = np.empty(2 * caps.shape[1] + 1)
    for scope in range(mark.shape[0]):
        count = (
            _breakpoints(scope, points, instrument, quantity, at_entry, present, caps)
            if with_maintenance
            else 0
        )
        price = mark[scope]
        start = 0
        while start < count and points[start] < price:
            start += 1
        segment, edge, down, sign = start, price, True, 0.0
        while True:
            low = points[segment - 1] if segment > 0 else 0.0
            high = points[segment] if segment < count else np.inf
            constant, slope = segment_line(scope, low, high)
            if sign == 0.0:
                healthy = constant + slope * price > 0
                out_healthy[scope] = healthy
                sign = 1.0 if healthy else -1.0
            found, crossing = _crossing(constant, slope, sign, edge, low if down else high)
            crossing = crossing if crossing > 0 else np.nan  # a crossing at a positive price
            if down:
                if found or segment == 0:
                    out_down[scope] = crossing
                    segment, edge, down = start, price, False
                else:
                    segment, edge = segment - 1, low
                continue
            if found:
                out_up[scope] = crossing
                break
            segment, edge = segment + 1, high
