"""Vectorised revaluation: the batch twin of :mod:`crossmargin.core.risk` and core.margin.

Per position (scalar twins ``core.risk.position_risk``, ``core.margin.maintenance_terms``):

  notional  N   = q * P                                      (USD)
  UPNL          = s * (N - entry_notional)
  bracket   k   = searchsorted(caps, N_val, side='left'), capped at the last bracket, where
                  N_val = N, or the entry notional when MM is valued at entry (Bybit isolated)
  MM            = N_val * rate_k - amount_k                  (rate/amount as folded by the converter)
  IM            = N / leverage + close_fee

Per account (twins ``core.risk.margin_ratio`` and ``is_liquidatable``), over cross positions:
margin balance ``MB = wallet + sum UPNL``, ``MM = sum MM``, ratio ``MM / MB`` (0 without MM, NaN
when ``MB <= 0``), liquidatable when it holds a cross position and ``MB <= MM``. An isolated
position is its own scope: liquidatable when ``isolated_margin + UPNL <= MM``.

Floats are not rounded: the core rounds requirements up to 1e-8, so the two paths agree to a
relative 1e-9 plus one money quantum. The batch path screens; the Decimal path decides.

:func:`update_symbol` handles a mark tick on one symbol: it revalues that symbol's positions in
the accounts holding it and re-adds those accounts from the stored per-position values, in the
full pass's order, so it gives bit for bit the numbers of a full revaluation.

The numba kernel makes one fused pass per account (its positions are contiguous), with accounts
spread over the cores by ``prange``; the numpy fallback does the same arithmetic with
``np.bincount`` and gives the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import jit, jit_inline, jit_parallel, prange, use_numba
from crossmargin.batch.convert import BookArrays, BracketTables, Floats, Ints
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


def empty_valuation(arrays: BookArrays, marks: Floats) -> Valuation:
    positions, accounts = arrays.position_count, arrays.account_count
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
        result = empty_valuation(arrays, checked)
    else:
        if out.notional.shape[0] != arrays.position_count:
            raise InvalidInput("out", "belongs to another book")
        out.marks[:] = checked
        result = out
    if use_numba(backend):
        _value_all_parallel_kernel(*_kernel_inputs(arrays, result.marks), *_kernel_outputs(result))
    else:
        accounts = np.arange(arrays.account_count, dtype=np.int64)
        _value_accounts_numpy(arrays, result, accounts)
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
    if use_numba(backend):
        _tick_kernel(
            symbol,
            accounts,
            *_kernel_inputs(arrays, valuation.marks),
            *_kernel_outputs(valuation),
        )
    else:
        _value_accounts_numpy(arrays, valuation, accounts, symbol)
    return accounts


def _kernel_inputs(arrays: BookArrays, marks: Floats) -> tuple[Array, ...]:
    tables = arrays.tables
    return (
        marks,
        tables.caps,
        tables.rates,
        tables.amounts,
        tables.counts,
        arrays.account_start,
        arrays.account,
        arrays.symbol,
        arrays.instrument,
        arrays.side,
        arrays.quantity,
        arrays.entry_notional,
        arrays.inverse_leverage,
        arrays.collateral,
        arrays.close_fee,
        arrays.isolated,
        arrays.maintenance_at_entry,
        arrays.wallet,
    )


def _kernel_outputs(out: Valuation) -> tuple[Array, ...]:
    return (
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
    )


def account_positions(arrays: BookArrays, accounts: Ints) -> tuple[Ints, Ints]:
    """All position indices of ``accounts`` and, for each, its row in ``accounts``."""
    starts = arrays.account_start[accounts]
    lengths = arrays.account_start[accounts + 1] - starts
    owner = np.repeat(np.arange(len(accounts), dtype=np.int64), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    return np.repeat(starts, lengths) + offsets, owner


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionValues:
    notional: Floats
    unrealized_pnl: Floats
    initial_margin: Floats
    maintenance_margin: Floats
    bracket: Ints


def position_values(arrays: BookArrays, marks: Floats, positions: Ints | slice) -> PositionValues:
    """Twin of ``core.risk.position_risk`` for the selected positions (unrounded)."""
    symbol = arrays.symbol[positions]
    instrument = arrays.instrument[positions].astype(np.int64)
    entry = arrays.entry_notional[positions]
    notional = arrays.quantity[positions] * marks[symbol]
    upnl = arrays.side[positions] * (notional - entry)
    valued = np.where(arrays.maintenance_at_entry[positions], entry, notional)
    tables = arrays.tables
    bracket = bracket_lookup(tables, instrument, valued)
    flat = instrument * tables.width + bracket
    maintenance = valued * tables.rates.ravel()[flat] - tables.amounts.ravel()[flat]
    initial = notional * arrays.inverse_leverage[positions] + arrays.close_fee[positions]
    return PositionValues(
        notional=notional,
        unrealized_pnl=upnl,
        initial_margin=initial,
        maintenance_margin=maintenance,
        bracket=bracket,
    )


def _value_accounts_numpy(
    arrays: BookArrays, out: Valuation, accounts: Ints, moving: int | None = None
) -> None:
    """Value ``accounts``: every position, or with ``moving`` only that symbol's positions (the
    others keep their stored values), then the account sums from the stored values."""
    positions, owner = account_positions(arrays, accounts)
    changed = positions if moving is None else positions[arrays.symbol[positions] == moving]
    values = position_values(arrays, out.marks, changed)
    out.notional[changed] = values.notional
    out.unrealized_pnl[changed] = values.unrealized_pnl
    out.initial_margin[changed] = values.initial_margin
    out.maintenance_margin[changed] = values.maintenance_margin
    out.bracket[changed] = values.bracket
    out.isolated_liquidatable[changed] = arrays.isolated[changed] & (
        arrays.collateral[changed] + values.unrealized_pnl <= values.maintenance_margin
    )
    isolated = arrays.isolated[positions]
    cross = ~isolated
    count = len(accounts)
    weight = 1.0 - isolated

    def cross_sum(column: Floats) -> Floats:
        return summed(owner, weight * column[positions], count)

    isolated_liquidatable = out.isolated_liquidatable[positions]
    balance = arrays.wallet[accounts] + cross_sum(out.unrealized_pnl)
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


def summed(owner: Ints, weights: Floats, count: int) -> Floats:
    """Per-owner sums of ``weights`` in position order (``np.bincount``)."""
    return cast(Floats, np.bincount(owner, weights=weights, minlength=count))


def ratio(maintenance: Floats, balance: Floats) -> Floats:
    """Twin of ``core.risk.margin_ratio``: 0 without MM, NaN (None) when MB <= 0, else MM/MB."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(balance > 0, maintenance / np.where(balance > 0, balance, 1.0), np.nan)
    return np.where(maintenance == 0, 0.0, result)


@jit_inline
def bracket_of(caps: Array, counts: Array, instrument: int, notional: float) -> int:
    """Scalar twin of :func:`bracket_lookup` for kernels: the caps below ``notional``, capped.

    A branch-free binary search over the power-of-two padded row (``searchsorted`` side='left'):
    a fixed number of halvings, no data-dependent branch in the hot loop.
    """
    if notional <= caps[instrument, 0]:  # most positions sit in the first bracket
        return 0
    below = 0
    half = caps.shape[1] >> 1
    while half > 0:
        below += half * (caps[instrument, below + half - 1] < notional)
        half >>= 1
    below += caps[instrument, below] < notional
    result: int = min(below, counts[instrument] - 1)
    return result


@jit_inline
def _value_position(
    position: int,
    marks: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    symbol: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    inverse_leverage: Array,
    collateral: Array,
    close_fee: Array,
    isolated: Array,
    at_entry: Array,
    out_notional: Array,
    out_upnl: Array,
    out_initial: Array,
    out_maintenance: Array,
    out_bracket: Array,
    out_isolated_liquidatable: Array,
) -> None:
    table = instrument[position]
    notional = quantity[position] * marks[symbol[position]]
    entry = entry_notional[position]
    upnl = side[position] * (notional - entry)
    valued = entry if at_entry[position] else notional
    bracket = bracket_of(caps, counts, table, valued)
    maintenance = valued * rates[table, bracket] - amounts[table, bracket]
    out_notional[position] = notional
    out_upnl[position] = upnl
    out_initial[position] = notional * inverse_leverage[position] + close_fee[position]
    out_maintenance[position] = maintenance
    out_bracket[position] = bracket
    out_isolated_liquidatable[position] = isolated[position] & (
        collateral[position] + upnl <= maintenance
    )


@jit_inline
def _finish_account(
    account: int,
    upnl_sum: float,
    maintenance_sum: float,
    initial_sum: float,
    cross_count: int,
    any_isolated: bool,
    wallet: Array,
    out_balance: Array,
    out_maintenance: Array,
    out_initial: Array,
    out_cross_count: Array,
    out_ratio: Array,
    out_cross_liquidatable: Array,
    out_isolated_any: Array,
) -> None:
    balance = wallet[account] + upnl_sum
    out_balance[account] = balance
    out_maintenance[account] = maintenance_sum
    out_initial[account] = initial_sum
    out_cross_count[account] = cross_count
    if maintenance_sum == 0.0:
        out_ratio[account] = 0.0
    elif balance > 0.0:
        out_ratio[account] = maintenance_sum / balance
    else:
        out_ratio[account] = np.nan
    out_cross_liquidatable[account] = (cross_count > 0) & (balance <= maintenance_sum)
    out_isolated_any[account] = any_isolated


@jit_parallel
def _value_all_parallel_kernel(
    marks: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    account_start: Array,
    account: Array,
    symbol: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    inverse_leverage: Array,
    collateral: Array,
    close_fee: Array,
    isolated: Array,
    at_entry: Array,
    wallet: Array,
    out_notional: Array,
    out_upnl: Array,
    out_initial: Array,
    out_maintenance: Array,
    out_bracket: Array,
    out_isolated_liquidatable: Array,
    out_balance: Array,
    out_account_maintenance: Array,
    out_account_initial: Array,
    out_cross_positions: Array,
    out_ratio: Array,
    out_cross_liquidatable: Array,
    out_isolated_any: Array,
) -> None:
    """One fused pass per account (positions are stored account by account), accounts spread
    over the cores with ``prange``: each position is read once, valued, and summed into its
    account while still in cache, in position order (the numpy path's order)."""
    for owner in prange(wallet.shape[0]):
        upnl_sum = 0.0
        maintenance_sum = 0.0
        initial_sum = 0.0
        cross_count = 0
        any_isolated = False
        for position in range(account_start[owner], account_start[owner + 1]):
            _value_position(
                position,
                marks,
                caps,
                rates,
                amounts,
                counts,
                symbol,
                instrument,
                side,
                quantity,
                entry_notional,
                inverse_leverage,
                collateral,
                close_fee,
                isolated,
                at_entry,
                out_notional,
                out_upnl,
                out_initial,
                out_maintenance,
                out_bracket,
                out_isolated_liquidatable,
            )
            weight = 1.0 - isolated[position]
            upnl_sum += weight * out_upnl[position]
            maintenance_sum += weight * out_maintenance[position]
            initial_sum += weight * out_initial[position]
            cross_count += 1 - isolated[position]
            any_isolated |= out_isolated_liquidatable[position]
        _finish_account(
            owner,
            upnl_sum,
            maintenance_sum,
            initial_sum,
            cross_count,
            any_isolated,
            wallet,
            out_balance,
            out_account_maintenance,
            out_account_initial,
            out_cross_positions,
            out_ratio,
            out_cross_liquidatable,
            out_isolated_any,
        )


@jit
def _tick_kernel(
    moving: int,
    accounts: Array,
    marks: Array,
    caps: Array,
    rates: Array,
    amounts: Array,
    counts: Array,
    account_start: Array,
    account: Array,
    symbol: Array,
    instrument: Array,
    side: Array,
    quantity: Array,
    entry_notional: Array,
    inverse_leverage: Array,
    collateral: Array,
    close_fee: Array,
    isolated: Array,
    at_entry: Array,
    wallet: Array,
    out_notional: Array,
    out_upnl: Array,
    out_initial: Array,
    out_maintenance: Array,
    out_bracket: Array,
    out_isolated_liquidatable: Array,
    out_balance: Array,
    out_account_maintenance: Array,
    out_account_initial: Array,
    out_cross_positions: Array,
    out_ratio: Array,
    out_cross_liquidatable: Array,
    out_isolated_any: Array,
) -> None:
    """A tick on symbol ``moving``: revalue its positions in the listed accounts, then re-add each
    account from the stored per-position values, in the full pass's order (so the same bits)."""
    for row in range(accounts.shape[0]):
        owner = accounts[row]
        upnl_sum = 0.0
        maintenance_sum = 0.0
        initial_sum = 0.0
        cross_count = 0
        any_isolated = False
        for position in range(account_start[owner], account_start[owner + 1]):
            if symbol[position] == moving:
                _value_position(
                    position,
                    marks,
                    caps,
                    rates,
                    amounts,
                    counts,
                    symbol,
                    instrument,
                    side,
                    quantity,
                    entry_notional,
                    inverse_leverage,
                    collateral,
                    close_fee,
                    isolated,
                    at_entry,
                    out_notional,
                    out_upnl,
                    out_initial,
                    out_maintenance,
                    out_bracket,
                    out_isolated_liquidatable,
                )
            weight = 1.0 - isolated[position]
            upnl_sum += weight * out_upnl[position]
            maintenance_sum += weight * out_maintenance[position]
            initial_sum += weight * out_initial[position]
            cross_count += 1 - isolated[position]
            any_isolated |= out_isolated_liquidatable[position]
        _finish_account(
            owner,
            upnl_sum,
            maintenance_sum,
            initial_sum,
            cross_count,
            any_isolated,
            wallet,
            out_balance,
            out_account_maintenance,
            out_account_initial,
            out_cross_positions,
            out_ratio,
            out_cross_liquidatable,
            out_isolated_any,
        )
