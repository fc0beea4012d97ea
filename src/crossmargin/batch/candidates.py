"""Liquidation candidates of a whole book: which scopes the exact core should look at now.

The batch path screens; the Decimal path decides. A screen must never miss a scope the core would
find liquidatable, so a scope is a candidate when its margin balance is within a guard band of its
maintenance margin, not only below it:

  candidate  <=>  MB - MM <= guard * (|MB| + MM) + MONEY_QUANTUM * (positions in the scope + 1)

The relative term covers float rounding; the quantum term covers the core rounding every
position's MM up to 1e-8 (:func:`crossmargin.core.numbers.round_requirement`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crossmargin.batch.convert import BookArrays, Floats
from crossmargin.batch.risk import Valuation, revalue

GUARD = 1e-9
MONEY_QUANTUM = 1e-8


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidates:
    accounts: npt.NDArray[np.int64]  # accounts whose cross scope may be liquidatable
    isolated_positions: npt.NDArray[np.int64]  # isolated positions that may be liquidatable


def screen(
    arrays: BookArrays,
    marks: Floats | None = None,
    *,
    valuation: Valuation | None = None,
    guard: float = GUARD,
    backend: str | None = None,
) -> Candidates:
    """Candidates for liquidation at ``marks`` (or in an existing ``valuation``)."""
    values = revalue(arrays, marks, backend=backend) if valuation is None else valuation
    balance, maintenance = values.margin_balance, values.maintenance
    band = guard * (np.abs(balance) + maintenance) + MONEY_QUANTUM * (values.cross_positions + 1)
    accounts = np.flatnonzero((values.cross_positions > 0) & (balance - maintenance <= band))
    isolated_balance = arrays.collateral + values.unrealized_pnl
    position_band = guard * (np.abs(isolated_balance) + values.maintenance_margin) + (
        2 * MONEY_QUANTUM
    )
    positions = np.flatnonzero(
        arrays.isolated & (isolated_balance - values.maintenance_margin <= position_band)
    )
    return Candidates(accounts=accounts.astype(np.int64), isolated_positions=positions)
