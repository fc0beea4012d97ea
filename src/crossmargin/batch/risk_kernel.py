"""The numba kernel of :mod:`crossmargin.batch.risk`: one fused pass per account.

The per-account body is written once, as an inner function of the kernel that numba inlines into
its two ``prange`` loops: every account (a full revaluation), or the listed accounts revaluing
only the positions of one symbol (a tick). The margin-ratio rule of a scope
(:func:`scope_ratio`) is shared with the stress kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.batch._accel import jit_inline, jit_parallel, prange
from crossmargin.batch.maintenance import bracket_of, maintenance_value, position_terms

Array = npt.NDArray[Any]
ALL_SYMBOLS = -1  # ``moving`` of a full revaluation: every position is revalued


@jit_inline
def scope_ratio(maintenance: float, balance: float, gone: float) -> float:
    """Twin of ``core.risk.margin_ratio``: 0 without MM, ``gone`` (the core's None: NaN, or +inf
    for a worst ratio) when the margin balance is not positive, else MM / MB."""
    if maintenance == 0.0:
        return 0.0
    if balance > 0.0:
        result: float = maintenance / balance
        return result
    return gone


@jit_parallel
def value_accounts_kernel(
    count: int,
    accounts: Array,
    moving: int,
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
    collateral: Array,
    at_entry: Array,
    starts: Array,
    stops: Array,
    inverse_leverage: Array,
    close_fee: Array,
    isolated: Array,
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
    out_cross_notional: Array,
) -> None:
    """Each position of symbol ``moving`` (every position for :data:`ALL_SYMBOLS`) is valued, and
    every position is summed into its account while still in cache, in position order (the numpy
    path's order). ``accounts``: the accounts to value (empty: the first ``count``, i.e. all)."""

    def value_account(owner: int, only: int) -> None:
        upnl_sum = 0.0
        maintenance_sum = 0.0
        initial_sum = 0.0
        notional_sum = 0.0
        cross_count = 0
        any_isolated = False
        for position in range(starts[owner], stops[owner]):
            if only == ALL_SYMBOLS or symbol[position] == only:
                price, table = marks[symbol[position]], instrument[position]
                notional, upnl, valued = position_terms(
                    quantity[position],
                    side[position],
                    entry_notional[position],
                    price,
                    at_entry[position],
                )
                bracket = bracket_of(caps, counts, table, valued)
                maintenance = maintenance_value(rates, amounts, table, bracket, valued)
                out_notional[position] = notional
                out_upnl[position] = upnl
                out_initial[position] = notional * inverse_leverage[position] + close_fee[position]
                out_maintenance[position] = maintenance
                out_bracket[position] = bracket
                out_isolated_liquidatable[position] = isolated[position] & (
                    collateral[position] + upnl <= maintenance
                )
            weight = 1.0 - isolated[position]
            upnl_sum += weight * out_upnl[position]
            maintenance_sum += weight * out_maintenance[position]
            initial_sum += weight * out_initial[position]
            notional_sum += weight * out_notional[position]
            cross_count += 1 - isolated[position]
            any_isolated |= out_isolated_liquidatable[position]
        balance = wallet[owner] + upnl_sum
        out_balance[owner] = balance
        out_account_maintenance[owner] = maintenance_sum
        out_account_initial[owner] = initial_sum
        out_cross_positions[owner] = cross_count
        out_ratio[owner] = scope_ratio(maintenance_sum, balance, np.nan)
        out_cross_liquidatable[owner] = (cross_count > 0) & (balance <= maintenance_sum)
        out_isolated_any[owner] = any_isolated
        out_cross_notional[owner] = notional_sum

    if accounts.shape[0] == 0:
        for owner in prange(count):
            value_account(owner, ALL_SYMBOLS)
    else:
        for row in prange(accounts.shape[0]):
            value_account(accounts[row], moving)
