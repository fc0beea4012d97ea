"""Liquidation (and bankruptcy) prices: one solver for ``equity(P) = maintenance(P)``.

The legs that move with the candidate price ``P`` are every position of one symbol in the scope
(one position in one-way or isolated mode; the long *and* the short in hedge-mode cross). All
else is held fixed at its mark and folded into ``fixed_equity``:

  cross:     fixed_equity = wallet + UPNL(other cross positions) - MM(other cross positions)
  isolated:  fixed_equity = the position's isolated margin

  f(P) = fixed_equity + sum_legs s_i * (q_i * P - entry_notional_i) - sum_legs MM_i(P)

The scope is liquidatable where ``f(P) <= 0``. ``MM_i(P)`` is affine within a bracket and brackets
change where ``q_i * P`` crosses a cap, so ``f`` is affine between the breakpoints
``cap / q_i``. The solver walks the segments outward from the mark in both directions and returns
the first ``P`` where ``f`` reaches zero: within a segment by solving the affine equation, at a
segment edge where a discontinuous table jumps. This is the "if the solved price lands in another
bracket, solve again with that bracket" rule done exhaustively, so it cannot oscillate.

Result: the root nearest the mark; None when no positive price reaches it (a fully collateralised
long). If the scope is already liquidatable at the mark, the nearest price at which it would be
healthy again is returned (Binance's formula does the same: a long's price is then above the mark),
or the mark itself if no price makes it healthy. Rounding: toward the mark
(``round_trigger_price``), so the reported level triggers no later than the exact one.

With ``with_maintenance=False`` the same solver gives the price where equity is zero.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.instrument import Instrument
from crossmargin.core.margin import maintenance_terms, maintenance_valued_at_entry
from crossmargin.core.numbers import ZERO, round_trigger_price
from crossmargin.core.position import Position
from crossmargin.core.venues import VenueRules


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    position: Position
    instrument: Instrument


@dataclass(frozen=True, slots=True)
class _Affine:
    constant: Decimal
    slope: Decimal

    def at(self, price: Decimal) -> Decimal:
        return self.constant + self.slope * price


class _Scope:
    """f(P) for one set of moving legs, segment by segment."""

    def __init__(
        self,
        rules: VenueRules,
        legs: Sequence[Leg],
        fixed_equity: Decimal,
        with_maintenance: bool,
    ) -> None:
        self.rules = rules
        self.legs = legs
        self.fixed_equity = fixed_equity
        self.with_maintenance = with_maintenance
        points: set[Decimal] = set()
        if with_maintenance:
            for leg in legs:
                if maintenance_valued_at_entry(rules, leg.position):
                    continue
                points.update(cap / leg.position.quantity for cap in leg.instrument.caps)
        self.breakpoints = sorted(p for p in points if p > 0)

    def segment_of(self, price: Decimal) -> int:
        # A price on a breakpoint puts notional exactly on a cap: the lower bracket (cap inclusive).
        return bisect_left(self.breakpoints, price)

    def bounds(self, segment: int) -> tuple[Decimal, Decimal | None]:
        low = self.breakpoints[segment - 1] if segment > 0 else ZERO
        high = self.breakpoints[segment] if segment < len(self.breakpoints) else None
        return low, high

    def affine(self, segment: int) -> _Affine:
        low, high = self.bounds(segment)
        probe = (low + high) / 2 if high is not None else (low * 2 if low > 0 else Decimal(1))
        constant = self.fixed_equity
        slope = ZERO
        for leg in self.legs:
            position = leg.position
            sign = position.side.sign
            constant -= sign * position.entry_notional
            slope += sign * position.quantity
            if self.with_maintenance:
                terms = maintenance_terms(self.rules, leg.instrument, position, probe)
                constant -= terms.constant
                slope -= terms.per_price
        return _Affine(constant, slope)

    def value(self, price: Decimal) -> Decimal:
        return self.affine(self.segment_of(price)).at(price)


def _first_crossing_down(scope: _Scope, start: Decimal, sign: int) -> Decimal | None:
    """Largest P <= start with sign * f(P) <= 0, walking down; None if none is positive."""
    segment = scope.segment_of(start)
    high = start
    while segment >= 0:
        low, _ = scope.bounds(segment)
        line = scope.affine(segment)
        if sign * line.at(high) <= 0:
            return high
        if sign * line.at(low) <= 0:
            root = -line.constant / line.slope
            return root if root > 0 else None
        segment -= 1
        high = low
    return None


def _first_crossing_up(scope: _Scope, start: Decimal, sign: int) -> Decimal | None:
    """Smallest P >= start with sign * f(P) <= 0, walking up; None if none exists."""
    segment = scope.segment_of(start)
    low = start
    while True:
        _, high = scope.bounds(segment)
        line = scope.affine(segment)
        if sign * line.at(low) <= 0:
            return low
        if high is None:
            if sign * line.slope < 0:
                return -line.constant / line.slope
            return None
        if sign * line.at(high) <= 0:
            return -line.constant / line.slope
        segment += 1
        low = high


def solve_price(
    rules: VenueRules,
    legs: Sequence[Leg],
    fixed_equity: Decimal,
    mark: Decimal,
    *,
    with_maintenance: bool = True,
) -> Decimal | None:
    """Exact (unrounded) price nearest ``mark`` where the scope reaches maintenance (or zero)."""
    scope = _Scope(rules, legs, fixed_equity, with_maintenance)
    healthy = scope.value(mark) > 0
    sign = 1 if healthy else -1
    candidates = [
        price
        for price in (
            _first_crossing_down(scope, mark, sign),
            _first_crossing_up(scope, mark, sign),
        )
        if price is not None and price > 0
    ]
    if not candidates:
        return None if healthy else mark
    return min(candidates, key=lambda price: abs(price - mark))


def liquidation_price(
    rules: VenueRules, legs: Sequence[Leg], fixed_equity: Decimal, mark: Decimal
) -> Decimal | None:
    """The reported liquidation price: :func:`solve_price`, rounded toward the mark."""
    exact = solve_price(rules, legs, fixed_equity, mark)
    return None if exact is None else round_trigger_price(exact, mark)
