"""The float screen: which scopes the exact core should look at. One rule for the engine's live
book (:class:`LiquidationScreen`), whole-book sweeps and Ray shards (:func:`screen`).

The batch path screens; the Decimal path decides. The screen must never skip a scope the core
would flag, so a scope is flagged unless the floats *prove* the core would not flag it.

**What the core flags** (a scope holding a position, threshold ``t`` with ``0 < t <= 1``): it is
liquidatable (``MB <= MM_core``), or it has maintenance and a margin ratio of None (``MB <= 0``)
or ``round_ratio(MM_core / MB) >= t``. ``MM_core`` sums every position's MM rounded *up* to
``MONEY_QUANTUM`` (``core.numbers.round_requirement``), so ``MM_core < MM + n x MONEY_QUANTUM``
for ``n`` positions; the ratio is rounded *up* to ``RATIO_QUANTUM``, so it reaches ``t`` as soon
as ``MM_core / MB > t - RATIO_QUANTUM``. Each case implies ``MM_core >= (t - RATIO_QUANTUM) MB``
or ``MB <= MM_core``; the liquidation screen (no threshold) uses factor 1 instead of
``t - RATIO_QUANTUM``.

**What the floats prove.** With float MB and MM and a band covering every difference,

  flagged  <=>  not (MM + band < factor x MB  and  MB - MM > band)        (NaN: flagged)
  band     =    n x MONEY_QUANTUM + 4 (n + 16) u x magnitude + bracket slack

* ``magnitude`` = ``|collateral| + sum (notional + entry notional)`` over the scope's positions
  (``u = 2^-53``): every input enters as a float rounded once (relative ``u``), each product and
  difference rounds once more, a sum of ``n`` terms errs by at most ``(n - 1) u`` times the sum
  of their magnitudes (MM and IM terms are below the notional), and the comparisons round once
  each: about ``2 (n + 15) u x magnitude`` for MB and MM together, half the band's term. It
  scales with the magnitudes summed, so a margin balance that is a small difference of large
  numbers (a big wallet against a big loss) gets the band it needs.
* On a continuous bracket table, reading the bracket at a float notional that sits on the other
  side of a cap changes MM by at most the notional's error times the rate: inside the magnitude
  term. On a discontinuous table (OKX: no deduction) MM jumps at the cap, so a position whose
  valued notional is within ``16 u`` of a cap adds that jump (``bracket slack``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmargin.batch.convert import (
    MONEY_QUANTUM,
    RATIO_QUANTUM,
    BookArrays,
    Bools,
    BracketTables,
    Floats,
    Ints,
    PositionArrays,
)
from crossmargin.batch.live import LiveBook
from crossmargin.batch.risk import Valuation, account_positions, revalue, summed
from crossmargin.core.errors import InvalidInput

UNIT_ROUNDOFF = 2.0**-53
FLOAT_TERMS = 16  # float operations per scope besides the n-term sums (inputs, products, tests)
CAP_WINDOW = 16 * UNIT_ROUNDOFF  # a valued notional this close to a cap may be read either side


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidates:
    accounts: Ints  # accounts whose cross scope the core may flag
    isolated_positions: Ints  # isolated positions the core may flag


def screen(
    arrays: BookArrays,
    marks: Floats | None = None,
    *,
    valuation: Valuation | None = None,
    threshold: float | None = None,
    backend: str | None = None,
) -> Candidates:
    """Every scope of the book the core may flag at ``marks`` (or in ``valuation``): liquidatable,
    or with ``threshold`` also at or past that margin ratio (the engine's margin call, 0.8)."""
    values = revalue(arrays, marks, backend=backend) if valuation is None else valuation
    return flag_scopes(arrays, values, None, threshold)


def flag_scopes(
    book: PositionArrays, valuation: Valuation, accounts: Ints | None, threshold: float | None
) -> Candidates:
    """The scopes of ``accounts`` (None: every account of a BookArrays) the core may flag.

    The cross scopes need only per-account values; positions are read only where they matter:
    the isolated ones (each its own scope) and, on discontinuous tables, every position (its
    bracket slack)."""
    factor = _factor(threshold)
    rows: Ints | slice = slice(None) if accounts is None else accounts
    cross_count = valuation.cross_positions[rows]
    cross_slack: Floats | None = None
    isolated_slack: Floats | None = None
    if not book.tables.continuous.all():
        positions, owner = _positions(book, accounts)
        slack = bracket_slack(book, valuation, positions)
        in_isolated = book.isolated[positions]
        cross_slack = summed(owner, np.where(in_isolated, 0.0, slack), len(cross_count))
        isolated, isolated_slack = positions[in_isolated], slack[in_isolated]
    elif accounts is None:
        isolated = np.flatnonzero(book.isolated)
    else:
        held = book.stops[accounts] - book.starts[accounts]
        positions, _ = account_positions(book, accounts[held > cross_count])
        isolated = positions[book.isolated[positions]]
    magnitude = np.abs(book.wallet[rows])
    magnitude += valuation.cross_notional[rows]
    magnitude += book.cross_entry_notional[rows]
    balance, maintenance = valuation.margin_balance[rows], valuation.maintenance[rows]
    at_risk = flagged(balance, maintenance, cross_count, magnitude, cross_slack, factor)
    at_risk &= cross_count > 0
    collateral = book.collateral[isolated]
    isolated_magnitude = np.abs(collateral)
    isolated_magnitude += valuation.notional[isolated]
    isolated_magnitude += book.entry_notional[isolated]
    isolated_at_risk = flagged(
        collateral + valuation.unrealized_pnl[isolated],
        valuation.maintenance_margin[isolated],
        1.0,
        isolated_magnitude,
        isolated_slack,
        factor,
    )
    flagged_accounts = np.flatnonzero(at_risk) if accounts is None else accounts[at_risk]
    return Candidates(
        accounts=flagged_accounts.astype(np.int64),
        isolated_positions=isolated[isolated_at_risk].astype(np.int64),
    )


def _positions(book: PositionArrays, accounts: Ints | None) -> tuple[Ints, Ints]:
    """The positions of ``accounts`` (None: every position of a BookArrays) and their rows."""
    if accounts is None:
        return np.arange(book.quantity.shape[0], dtype=np.int64), book.account.astype(np.int64)
    return account_positions(book, accounts)


def _factor(threshold: float | None) -> float:
    if threshold is None:
        return 1.0
    if not 0 < threshold <= 1:
        raise InvalidInput("threshold", f"must be a margin ratio in (0, 1], got {threshold}")
    return threshold - RATIO_QUANTUM


def flagged(
    balance: Floats,
    maintenance: Floats,
    positions: Floats | np.ndarray | float,
    magnitude: Floats,
    slack: Floats | None,
    factor: float,
) -> Bools:
    """The guard band test of the module docstring, per scope (``slack`` None: no slack)."""
    band = np.add(positions, FLOAT_TERMS, dtype=np.float64)
    band *= 4.0 * UNIT_ROUNDOFF
    band *= magnitude
    band += positions * MONEY_QUANTUM
    if slack is not None:
        band += slack
    safe = maintenance + band < factor * balance
    safe &= balance - maintenance > band
    result: Bools = ~safe
    return result


def bracket_slack(book: PositionArrays, valuation: Valuation, positions: Ints) -> Floats:
    """Per position, the MM jump of a discontinuous table at a cap its valued notional is within
    :data:`CAP_WINDOW` of (0 elsewhere: see the module docstring)."""
    tables = book.tables
    slack = np.zeros(len(positions))
    if tables.continuous.all():
        return slack
    instrument = book.instrument[positions].astype(np.int64)
    suspect = np.flatnonzero(~tables.continuous[instrument])
    chosen = positions[suspect]
    table = instrument[suspect]
    valued = np.where(
        book.maintenance_at_entry[chosen], book.entry_notional[chosen], valuation.notional[chosen]
    )
    bracket = valuation.bracket[chosen].astype(np.int64)
    jumps = cap_jumps(tables)
    last = tables.counts[table] - 1
    window = CAP_WINDOW * np.abs(valued)
    above = np.minimum(bracket, tables.width - 1)
    below = np.maximum(bracket - 1, 0)
    near_above = (bracket < last) & (np.abs(tables.caps[table, above] - valued) <= window)
    near_below = (bracket > 0) & (np.abs(valued - tables.caps[table, below]) <= window)
    slack[suspect] = np.where(near_above, jumps[table, above], 0.0) + np.where(
        near_below, jumps[table, below], 0.0
    )
    return slack


def cap_jumps(tables: BracketTables) -> Floats:
    """``|MM just above cap k - MM at cap k|`` per table and cap (0 past the last cap)."""
    caps = np.where(np.isfinite(tables.caps), tables.caps, 0.0)
    jumps = np.zeros(tables.caps.shape)
    jumps[:, :-1] = np.abs(
        caps[:, :-1] * (tables.rates[:, 1:] - tables.rates[:, :-1])
        - (tables.amounts[:, 1:] - tables.amounts[:, :-1])
    )
    # a jump is read in floats: twice it covers the rounding of the few operations above
    result: Floats = 2.0 * jumps
    return result


class LiquidationScreen(LiveBook):
    """The engine's float screen: its book (a :class:`~crossmargin.batch.live.LiveBook`, kept in
    step one account at a time by ``sync_account``) screened on every mark tick."""

    def tick(self, symbol: str, price: float, threshold: float) -> set[str]:
        """Move ``symbol`` to ``price``; the holders of ``symbol`` with a scope the core may find
        liquidatable or at or above ``threshold``."""
        holders = self.move(symbol, price)
        if len(holders) == 0:
            return set()
        found = flag_scopes(self.arrays, self.valuation, holders, threshold)
        flagged = set(found.accounts.tolist())
        flagged.update(self.arrays.account[found.isolated_positions].tolist())
        return {self.account_ids[index] for index in flagged}
