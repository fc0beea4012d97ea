"""Vectorised revaluation: the batch twin of :mod:`crossmargin.core.risk` and core.margin.

Per position (scalar twins ``core.risk.position_risk``, ``core.margin.maintenance_terms``):

  notional  N   = q * P                                      (USD)
  UPNL          = s * (N - entry_notional)
  MM, bracket   :mod:`crossmargin.batch.maintenance` (bracket by notional, or at entry)
  IM            = N / leverage + close_fee

Per account (twins ``core.risk.margin_ratio`` and ``is_liquidatable``), over cross positions:
margin balance ``MB = wallet + sum UPNL``, ``MM = sum MM``, ratio ``MM / MB`` (0 without MM, NaN
when ``MB <= 0``), liquidatable when it holds a cross position and ``MB <= MM``. An isolated
position is its own scope: liquidatable when ``isolated_margin + UPNL <= MM``. The cross
notional ``sum N`` (the core's ``Risk.notional``) also sizes the float error of MB and MM, which
the screen (:mod:`crossmargin.batch.screen`) turns into its guard band.

Floats are not rounded: the core rounds requirements up to 1e-8, so the two paths agree to a
relative 1e-9 plus one money quantum. The batch path screens; the Decimal path decides.

:func:`update_symbol` handles a mark tick on one symbol: it revalues that symbol's positions in
the accounts holding it and re-adds those accounts from the stored per-position values, in the
full pass's order, so it gives bit for bit the numbers of a full revaluation.

One numba kernel (:mod:`crossmargin.batch.risk_kernel`) does both: one fused pass per account
(its positions are contiguous, from ``starts[a]`` to ``stops[a]``), accounts spread over the
cores by ``prange``; the numpy fallback does the same arithmetic with ``np.bincount`` and gives
the same bits. Both read any
:class:`~crossmargin.batch.convert.PositionArrays`: a ``BookArrays``, or the engine's live book
(:mod:`crossmargin.batch.live`), whose accounts keep spare room between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import calling_thread_only, use_numba
from crossmargin.batch.convert import BookArrays, Floats, Ints, PositionArrays
from crossmargin.batch.maintenance import positions_maintenance
from crossmargin.batch.risk_kernel import ALL_SYMBOLS, value_accounts_kernel
from crossmargin.core.errors import InvalidInput

Bools = npt.NDArray[np.bool_]
Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Valuation:
    """Revaluation results (arrays owned by this object and updated in place by ticks)."""

    marks: Floats
    # per position
    notional: Floats
    unrealized_pnl: Floats
    initial_margin: Floats
    maintenance_margin: Floats
    bracket: npt.NDArray[np.int16]
    isolated_liquidatable: Bools  # False for cross positions
    # per account, cross scope
    margin_balance: Floats
    maintenance: Floats
    initial: Floats
    cross_positions: npt.NDArray[np.int32]  # how many cross positions the account holds
    margin_ratio: Floats  # NaN where the margin balance is not positive
    cross_liquidatable: Bools
    isolated_any_liquidatable: Bools
    cross_notional: Floats  # sum over cross positions of the notional

    @property
    def liquidatable(self) -> Bools:
        """Anything in the account is liquidatable: the cross scope or an isolated position."""
        result: Bools = self.cross_liquidatable | self.isolated_any_liquidatable
        return result


def check_marks(arrays: BookArrays, marks: Floats | None) -> Floats:
    """A private copy of ``marks`` (default: the book's) after checking shape and positivity."""
    chosen = arrays.marks if marks is None else np.asarray(marks, dtype=np.float64)
    if chosen.shape != arrays.marks.shape:
        raise InvalidInput("marks", f"expected {arrays.marks.shape[0]} prices, got {chosen.shape}")
    if not np.all(np.isfinite(chosen) & (chosen > 0)):
        raise InvalidInput("marks", "every mark must be a positive finite price")
    return np.array(chosen, dtype=np.float64, copy=True)


def empty_valuation(positions: int, accounts: int, marks: Floats) -> Valuation:
    return Valuation(
        marks=marks,
        notional=np.empty(positions),
        unrealized_pnl=np.empty(positions),
        initial_margin=np.empty(positions),
        maintenance_margin=np.empty(positions),
        bracket=np.empty(positions, dtype=np.int16),
        isolated_liquidatable=np.empty(positions, dtype=np.bool_),
        margin_balance=np.empty(accounts),
        maintenance=np.empty(accounts),
        initial=np.empty(accounts),
        cross_positions=np.empty(accounts, dtype=np.int32),
        margin_ratio=np.empty(accounts),
        cross_liquidatable=np.empty(accounts, dtype=np.bool_),
        isolated_any_liquidatable=np.empty(accounts, dtype=np.bool_),
        cross_notional=np.empty(accounts),
    )


def revalue(
    arrays: BookArrays,
    marks: Floats | None = None,
    *,
    out: Valuation | None = None,
    backend: str | None = None,
) -> Valuation:
    """Value every position and account at ``marks`` (twin: ``core.risk.account_report``).

    ``out``: a previous result of the same book to overwrite (a venue revaluing on every tick
    keeps one and saves the allocation).
    """
    checked = check_marks(arrays, marks)
    if out is None:
        result = empty_valuation(arrays.position_count, arrays.account_count, checked)
    else:
        if out.notional.shape[0] != arrays.position_count:
            raise InvalidInput("out", "belongs to another book")
        out.marks[:] = checked
        result = out
    value_accounts(arrays, result, None, ALL_SYMBOLS, backend=backend)
    return result


def update_symbol(
    arrays: BookArrays,
    valuation: Valuation,
    symbol: int,
    price: float,
    *,
    backend: str | None = None,
) -> Ints:
    """Apply a mark tick on one symbol in place; returns the accounts that were revalued."""
    if not 0 <= symbol < len(arrays.symbols):
        raise InvalidInput("symbol", f"no symbol slot {symbol}")
    if not (np.isfinite(price) and price > 0):
        raise InvalidInput("price", "must be a positive finite price")
    valuation.marks[symbol] = price
    start, stop = arrays.symbol_account_start[symbol], arrays.symbol_account_start[symbol + 1]
    accounts = arrays.symbol_accounts[start:stop].astype(np.int64)
    value_accounts(arrays, valuation, accounts, symbol, backend=backend)
    return accounts


def value_accounts(
    book: PositionArrays,
    out: Valuation,
    accounts: Ints | None,
    moving: int,
    *,
    backend: str | None = None,
) -> None:
    """Value ``accounts`` (None: every account) at ``out.marks``: the positions on symbol
    ``moving`` (every position for :data:`ALL_SYMBOLS`; the others keep their stored values),
    then the account sums from the stored values, in position order."""
    if use_numba(backend):
        chosen = np.empty(0, dtype=np.int64) if accounts is None else accounts
        count = book.wallet.shape[0] if accounts is None else accounts.shape[0]
        with calling_thread_only(accounts is not None):  # ticks: see calling_thread_only
            value_accounts_kernel(
                count,
                chosen,
                moving,
                out.marks,
                *book.tables.kernel_arrays(),
                *book.kernel_columns(),
                book.starts,
                book.stops,
                book.inverse_leverage,
                book.close_fee,
                book.isolated,
                book.wallet,
                out.notional,
                out.unrealized_pnl,
                out.initial_margin,
                out.maintenance_margin,
                out.bracket,
                out.isolated_liquidatable,
                out.margin_balance,
                out.maintenance,
                out.initial,
                out.cross_positions,
                out.margin_ratio,
                out.cross_liquidatable,
                out.isolated_any_liquidatable,
                out.cross_notional,
            )
        return
    every = np.arange(book.wallet.shape[0], dtype=np.int64)
    _value_accounts_numpy(book, out, every if accounts is None else accounts, moving)


def account_positions(book: PositionArrays, accounts: Ints) -> tuple[Ints, Ints]:
    """All position indices of ``accounts`` and, for each, its row in ``accounts``."""
    starts = book.starts[accounts]
    lengths = book.stops[accounts] - starts
    owner = np.repeat(np.arange(len(accounts), dtype=np.int64), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    return np.repeat(starts, lengths) + offsets, owner


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionValues:
    notional: Floats
    unrealized_pnl: Floats
    initial_margin: Floats
    maintenance_margin: Floats
    bracket: Ints


def position_values(book: PositionArrays, marks: Floats, positions: Ints | slice) -> PositionValues:
    """Twin of ``core.risk.position_risk`` for the selected positions (unrounded)."""
    symbol = book.symbol[positions]
    instrument = book.instrument[positions].astype(np.int64)
    entry = book.entry_notional[positions]
    notional = book.quantity[positions] * marks[symbol]
    upnl = book.side[positions] * (notional - entry)
    bracket, maintenance = positions_maintenance(
        book.tables, instrument, book.maintenance_at_entry[positions], entry, notional
    )
    initial = notional * book.inverse_leverage[positions] + book.close_fee[positions]
    return PositionValues(
        notional=notional,
        unrealized_pnl=upnl,
        initial_margin=initial,
        maintenance_margin=maintenance,
        bracket=bracket,
    )


def _value_accounts_numpy(
    book: PositionArrays, out: Valuation, accounts: Ints, moving: int
) -> None:
    positions, owner = account_positions(book, accounts)
    changed = positions if moving == ALL_SYMBOLS else positions[book.symbol[positions] == moving]
    values = position_values(book, out.marks, changed)
    out.notional[changed] = values.notional
    out.unrealized_pnl[changed] = values.unrealized_pnl
    out.initial_margin[changed] = values.initial_margin
    out.maintenance_margin[changed] = values.maintenance_margin
    out.bracket[changed] = values.bracket
    out.isolated_liquidatable[changed] = book.isolated[changed] & (
        book.collateral[changed] + values.unrealized_pnl <= values.maintenance_margin
    )
    isolated = book.isolated[positions]
    cross = ~isolated
    count = len(accounts)
    weight = 1.0 - isolated

    def cross_sum(column: Floats) -> Floats:
        return summed(owner, weight * column[positions], count)

    isolated_liquidatable = out.isolated_liquidatable[positions]
    balance = book.wallet[accounts] + cross_sum(out.unrealized_pnl)
    maintenance = cross_sum(out.maintenance_margin)
    cross_count = np.bincount(owner, weights=cross, minlength=count).astype(np.int32)
    out.margin_balance[accounts] = balance
    out.maintenance[accounts] = maintenance
    out.initial[accounts] = cross_sum(out.initial_margin)
    out.cross_positions[accounts] = cross_count
    out.margin_ratio[accounts] = ratio(maintenance, balance)
    out.cross_liquidatable[accounts] = (cross_count > 0) & (balance <= maintenance)
    out.isolated_any_liquidatable[accounts] = (
        np.bincount(owner, weights=isolated_liquidatable, minlength=count) > 0
    )
    out.cross_notional[accounts] = cross_sum(out.notional)


def summed(owner: Ints, weights: Floats, count: int) -> Floats:
    """Per-owner sums of ``weights`` in position order (``np.bincount``)."""
    return cast(Floats, np.bincount(owner, weights=weights, minlength=count))


def ratio(maintenance: Floats, balance: Floats) -> Floats:
    """Twin of ``core.risk.margin_ratio``: 0 without MM, NaN (None) when MB <= 0, else MM/MB."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(balance > 0, maintenance / np.where(balance > 0, balance, 1.0), np.nan)
    return np.where(maintenance == 0, 0.0, result)
