"""The maintenance formula of the batch path, written once: scalar (inlined into every numba
kernel) and vectorised (the numpy fallback). Twin of :func:`crossmargin.core.margin.maintenance_terms`.

Per position, with the venue's flags already folded into the tables by
:mod:`crossmargin.batch.convert` (OKX's fee buffer in the rates, no deduction as zero amounts):

  valued notional  v = entry notional where MM is valued at entry (Bybit isolated), else q * P
  bracket          k = searchsorted(caps, v, side='left'), capped at the last bracket
  MM               = v * rate_k - amount_k                  (maintenance_value)
                   = constant_k + rate_k * q * P, its affine form on the bracket (maintenance_line):
                     constant_k = -amount_k; at entry, constant_k = entry notional * rate_k -
                     amount_k and the price term is 0

The two forms give the same bits (float addition and multiplication commute; adding
``0.0 * notional`` to the at-entry constant changes no value): kernels value MM with the first and
solve liquidation prices and bound Monte Carlo paths with the second. A kernel calls
:func:`position_terms`, :func:`bracket_of` (or :func:`bracket_near`) and
:func:`maintenance_value` in turn: each helper takes only the arrays it reads, because numba keeps
the reference counting of arrays passed into an inlined helper that spans the bracket search,
which doubled the stress kernel's time when one helper did all three.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import jit_inline
from crossmargin.batch.convert import BracketTables, Floats, Ints

Array = npt.NDArray[Any]


@jit_inline
def bracket_of(caps: Array, counts: Array, table: int, notional: float) -> int:
    """Scalar twin of :func:`bracket_lookup`: the caps below ``notional``, capped at the last.

    A branch-free binary search over the power-of-two padded row (``searchsorted`` side='left'):
    a fixed number of halvings, no data-dependent branch in the hot loop.
    """
    if notional <= caps[table, 0]:  # most positions sit in the first bracket
        return 0
    below = 0
    half = caps.shape[1] >> 1
    while half > 0:
        below += half * (caps[table, below + half - 1] < notional)
        half >>= 1
    below += caps[table, below] < notional
    result: int = min(below, counts[table] - 1)
    return result


@jit_inline
def bracket_near(caps: Array, counts: Array, table: int, notional: float, guess: int) -> int:
    """:func:`bracket_of`, checking bracket ``guess`` first (prices mostly stay in the bracket at
    the mark). ``guess`` 0 is the plain search."""
    if guess > 0:
        last = counts[table] - 1
        if caps[table, guess - 1] < notional and (notional <= caps[table, guess] or guess == last):
            return guess
    return bracket_of(caps, counts, table, notional)


@jit_inline
def position_terms(
    quantity: float, side: float, entry: float, price: float, at_entry: bool
) -> tuple[float, float, float]:
    """(notional, UPNL, valued notional) of a position at ``price``: ``N = q * P``,
    ``UPNL = s * (N - entry notional)``, and the notional MM is valued at, the entry notional
    where the venue values it at entry (Bybit isolated; twin of ``maintenance_valued_at_entry``)."""
    notional = quantity * price
    return notional, side * (notional - entry), entry if at_entry else notional


@jit_inline
def maintenance_value(
    rates: Array, amounts: Array, table: int, bracket: int, valued: float
) -> float:
    """MM = valued notional x rate - amount on ``bracket`` (the value of :func:`maintenance_line`
    at the position, with the same bits and no branch for the hot loops)."""
    result: float = valued * rates[table, bracket] - amounts[table, bracket]
    return result


@jit_inline
def maintenance_line(
    rates: Array, amounts: Array, table: int, bracket: int, at_entry: bool, entry: float
) -> tuple[float, float]:
    """MM on bracket ``bracket`` as ``constant + rate * notional`` (the core's MaintenanceTerms):
    at entry the constant is ``entry notional * rate - amount`` and the price term 0."""
    rate = rates[table, bracket]
    amount = amounts[table, bracket]
    if at_entry:
        return entry * rate - amount, 0.0
    return -amount, rate


def bracket_lookup(tables: BracketTables, instrument: Ints, notional: Floats) -> Ints:
    """Bracket of ``notional`` per row: ``searchsorted(caps, N, 'left')`` capped at the last.

    Twin of ``core.instrument.Instrument.bracket_index`` (cap inclusive). Counting the caps below
    ``N`` is the same search done for rows of different tables at once.
    """
    below = np.zeros(notional.shape, dtype=np.int64)
    for column in range(int(tables.counts.max(initial=1))):
        below += tables.caps[instrument, column] < notional
    last: Ints = tables.counts[instrument] - 1
    return np.minimum(below, last)


def maintenance_lines(
    tables: BracketTables,
    instrument: Ints,
    bracket: Ints,
    at_entry: npt.NDArray[np.bool_],
    entry: Floats,
) -> tuple[Floats, Floats]:
    """Vectorised :func:`maintenance_line`: (constant, rate) per row."""
    flat = instrument * tables.width + bracket
    rate = tables.rates.ravel()[flat]
    amount = tables.amounts.ravel()[flat]
    constant: Floats = np.where(at_entry, entry * rate - amount, -amount)
    return constant, np.where(at_entry, 0.0, rate)


def positions_maintenance(
    tables: BracketTables,
    instrument: Ints,
    at_entry: npt.NDArray[np.bool_],
    entry: Floats,
    notional: Floats,
) -> tuple[Ints, Floats]:
    """Vectorised :func:`bracket_of` and :func:`maintenance_value` at the valued notional:
    (bracket, MM) per row."""
    bracket = bracket_lookup(tables, instrument, np.where(at_entry, entry, notional))
    constant, rate = maintenance_lines(tables, instrument, bracket, at_entry, entry)
    maintenance: Floats = constant + rate * notional
    return bracket, maintenance
