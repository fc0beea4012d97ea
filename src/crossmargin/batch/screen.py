"""The engine's liquidation screen: float64 arrays kept in step with the book, one tick at a time.

Scalar twins: ``core.risk.is_liquidatable`` / ``core.risk.margin_ratio`` over
``core.margin.maintenance_terms`` (Binance-style MM = q*P*MMR - cum, bracket by notional at mark,
taker fee buffer and no deduction where the venue says so; Bybit's isolated MM at entry).

The book is a table of position rows (account, symbol, signed quantity, signed entry notional,
isolated margin or NaN for cross). Per account the screen keeps the cross wallet and running sums
of cross UPNL and cross MM. A tick on one symbol recomputes only that symbol's rows (vectorised)
and moves their accounts' sums by the difference (``np.add.at``), so its cost is proportional to
the positions in that symbol, not to the book.

The screen only *flags*: an account (or isolated position) whose float margin ratio is at or
above ``threshold`` minus a guard band of ``GUARD`` relative. The Decimal core then decides each
flagged one; nothing is liquidated on a float.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.core.instrument import Instrument
from crossmargin.core.venues import VenueRules

GUARD = 1e-9
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Table:
    caps: Floats  # finite caps (cap-inclusive lookup with side="left")
    rates: Floats  # per bracket, fee buffer included
    amounts: Floats  # per bracket deduction (0 without deduction)
    cap_list: list[float]
    rate_list: list[float]
    amount_list: list[float]


class LiquidationScreen:
    """Float mirror of the engine book for screening mark ticks."""

    def __init__(self, rules: VenueRules, instruments: Mapping[str, Instrument]) -> None:
        self.rules = rules
        self.tables: dict[str, _Table] = {}
        for symbol, instrument in instruments.items():
            rates = [float(b.maintenance_margin_rate) for b in instrument.brackets]
            if rules.fee_buffer_in_maintenance:
                rates = [r + float(instrument.taker_fee_rate) for r in rates]
            amounts = [
                float(b.maintenance_amount) if rules.maintenance_deduction else 0.0
                for b in instrument.brackets
            ]
            caps = [float(c) for c in instrument.caps]
            self.tables[symbol] = _Table(
                np.array(caps, dtype=np.float64),
                np.array(rates, dtype=np.float64),
                np.array(amounts, dtype=np.float64),
                caps,
                rates,
                amounts,
            )
        self.account_index: dict[str, int] = {}
        self.account_ids: list[str] = []
        self.wallet = np.zeros(0)
        self.cross_upnl = np.zeros(0)
        self.cross_mm = np.zeros(0)
        self.marks: dict[str, float] = {}
        self.account_rows: dict[str, set[tuple[str, str]]] = {}
        # position rows, per symbol: key -> row; arrays grow by doubling
        self.rows: dict[str, dict[tuple[str, str], int]] = {s: {} for s in instruments}
        self.free_rows: dict[str, list[int]] = {s: [] for s in instruments}
        self.row_account: dict[str, npt.NDArray[np.int64]] = {}
        self.row_qty: dict[str, Floats] = {}
        self.row_entry: dict[str, Floats] = {}
        self.row_iso: dict[str, Floats] = {}  # NaN = cross
        self.row_upnl: dict[str, Floats] = {}
        self.row_mm: dict[str, Floats] = {}
        for symbol in instruments:
            self._alloc(symbol, 16)

    def _alloc(self, symbol: str, size: int) -> None:
        def grow(old: Any, fill: float, dtype: Any) -> Any:
            new: Any = np.full(size, fill, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            return new

        self.row_account[symbol] = grow(self.row_account.get(symbol), -1, np.int64)
        for table in (self.row_qty, self.row_entry, self.row_upnl, self.row_mm):
            table[symbol] = grow(table.get(symbol), 0.0, np.float64)
        self.row_iso[symbol] = grow(self.row_iso.get(symbol), np.nan, np.float64)

    def _account(self, account_id: str) -> int:
        index = self.account_index.get(account_id)
        if index is None:
            index = len(self.account_ids)
            self.account_index[account_id] = index
            self.account_ids.append(account_id)
            if index >= len(self.wallet):
                size = max(16, 2 * len(self.wallet))
                for name in ("wallet", "cross_upnl", "cross_mm"):
                    old = getattr(self, name)
                    new = np.zeros(size)
                    new[: len(old)] = old
                    setattr(self, name, new)
        return index

    def _values(
        self, symbol: str, rows: npt.NDArray[np.int64], price: Floats | float
    ) -> tuple[Floats, Floats]:
        """UPNL and MM of ``rows`` at ``price`` (twin of Position.unrealized_pnl, maintenance_terms)."""
        qty = self.row_qty[symbol][rows]
        entry = self.row_entry[symbol][rows]
        upnl = qty * price - entry
        size = np.abs(qty)
        table = self.tables[symbol]
        at_entry = self.rules.isolated_maintenance_at_entry & ~np.isnan(self.row_iso[symbol][rows])
        valuation = np.where(at_entry, np.abs(entry), size * price)
        index = np.minimum(
            np.searchsorted(table.caps, valuation, side="left"), len(table.rates) - 1
        )
        mm = valuation * table.rates[index] - table.amounts[index]
        return upnl, mm

    def set_wallet(self, account_id: str, wallet: float) -> None:
        index = self._account(account_id)  # may grow the arrays: look them up after
        self.wallet[index] = wallet

    def set_position(
        self,
        account_id: str,
        symbol: str,
        slot: str,
        signed_quantity: float,
        signed_entry_notional: float,
        isolated_margin: float | None,
    ) -> None:
        """Insert, replace or (quantity 0) remove one position row."""
        account = self._account(account_id)
        rows = self.rows[symbol]
        row = rows.get((account_id, slot))
        if row is not None:
            self._retire(symbol, row, account)
            if signed_quantity == 0:
                del rows[(account_id, slot)]
                self.account_rows[account_id].discard((symbol, slot))
                self.free_rows[symbol].append(row)
                self.row_account[symbol][row] = -1
                return
        elif signed_quantity == 0:
            return
        else:
            if self.free_rows[symbol]:
                row = self.free_rows[symbol].pop()
            else:
                row = len(rows)
                if row >= len(self.row_account[symbol]):
                    self._alloc(symbol, 2 * len(self.row_account[symbol]))
            rows[(account_id, slot)] = row
            self.account_rows.setdefault(account_id, set()).add((symbol, slot))
        self.row_account[symbol][row] = account
        self.row_qty[symbol][row] = signed_quantity
        self.row_entry[symbol][row] = signed_entry_notional
        self.row_iso[symbol][row] = np.nan if isolated_margin is None else isolated_margin
        price = self.marks.get(symbol, abs(signed_entry_notional / signed_quantity))
        upnl, mm = self._row_values(
            symbol, signed_quantity, signed_entry_notional, isolated_margin is not None, price
        )
        self.row_upnl[symbol][row], self.row_mm[symbol][row] = upnl, mm
        if isolated_margin is None:
            self.cross_upnl[account] += upnl
            self.cross_mm[account] += mm

    def _row_values(
        self, symbol: str, quantity: float, entry: float, isolated: bool, price: float
    ) -> tuple[float, float]:
        """One row's UPNL and MM in plain floats (a numpy call per row would cost more)."""
        table = self.tables[symbol]
        at_entry = self.rules.isolated_maintenance_at_entry and isolated
        valuation = abs(entry) if at_entry else abs(quantity) * price
        index = min(bisect_left(table.cap_list, valuation), len(table.rate_list) - 1)
        mm = valuation * table.rate_list[index] - table.amount_list[index]
        return quantity * price - entry, mm

    def _retire(self, symbol: str, row: int, account: int) -> None:
        if np.isnan(self.row_iso[symbol][row]):
            self.cross_upnl[account] -= self.row_upnl[symbol][row]
            self.cross_mm[account] -= self.row_mm[symbol][row]

    def tick(self, symbol: str, price: float, threshold: float) -> set[str]:
        """Move ``symbol`` to ``price``; the accounts with a scope at or above ``threshold``."""
        self.marks[symbol] = price
        live = np.nonzero(self.row_account[symbol] >= 0)[0]
        if len(live) == 0:
            return set()
        accounts = self.row_account[symbol][live]
        upnl, mm = self._values(symbol, live, price)
        cross = np.isnan(self.row_iso[symbol][live])
        np.add.at(self.cross_upnl, accounts[cross], (upnl - self.row_upnl[symbol][live])[cross])
        np.add.at(self.cross_mm, accounts[cross], (mm - self.row_mm[symbol][live])[cross])
        self.row_upnl[symbol][live], self.row_mm[symbol][live] = upnl, mm
        flagged: set[str] = set()
        mask = np.zeros(len(self.account_ids), dtype=bool)
        mask[accounts[cross]] = True  # faster than np.unique on large books
        touched = np.nonzero(mask)[0]
        balance = self.wallet[touched] + self.cross_upnl[touched]
        maintenance = self.cross_mm[touched]
        hot = maintenance >= threshold * balance * (1 - GUARD) - GUARD * np.abs(balance)
        flagged.update(self.account_ids[i] for i in touched[hot & (maintenance > 0)])
        iso = ~cross
        if iso.any():
            balance_iso = self.row_iso[symbol][live][iso] + upnl[iso]
            hot_iso = mm[iso] >= threshold * balance_iso * (1 - GUARD) - GUARD * np.abs(balance_iso)
            flagged.update(self.account_ids[i] for i in accounts[iso][hot_iso])
        return flagged

    def sync_account(
        self,
        account_id: str,
        wallet: float,
        positions: Iterable[tuple[str, str, float, float, float | None]],
    ) -> None:
        """Replace everything known about one account (after events touched it)."""
        self.set_wallet(account_id, wallet)
        current = set()
        for symbol, slot, quantity, entry, margin in positions:
            current.add((symbol, slot))
            self.set_position(account_id, symbol, slot, quantity, entry, margin)
        for symbol, slot in list(self.account_rows.get(account_id, ())):
            if (symbol, slot) not in current:
                self.set_position(account_id, symbol, slot, 0.0, 0.0, None)

    def load(
        self,
        wallets: Mapping[str, float],
        positions: Iterable[tuple[str, str, str, float, float, float | None]],
    ) -> None:
        """Bulk-load an empty screen: wallets, then rows (account, symbol, slot, qty, entry, margin)."""
        for account_id, wallet in wallets.items():
            self.set_wallet(account_id, wallet)
        grouped: dict[str, list[tuple[str, str, float, float, float | None]]] = {}
        for account_id, symbol, slot, quantity, entry, margin in positions:
            grouped.setdefault(symbol, []).append((account_id, slot, quantity, entry, margin))
        for symbol, rows in grouped.items():
            count = len(rows)
            size = max(16, 1 << (count - 1).bit_length())
            self._alloc(symbol, size)
            accounts = np.array([self._account(r[0]) for r in rows], dtype=np.int64)
            self.row_account[symbol][:count] = accounts
            self.row_qty[symbol][:count] = [r[2] for r in rows]
            self.row_entry[symbol][:count] = [r[3] for r in rows]
            self.row_iso[symbol][:count] = [np.nan if r[4] is None else r[4] for r in rows]
            table = self.rows[symbol]
            for index, (account_id, slot, *_rest) in enumerate(rows):
                table[(account_id, slot)] = index
                self.account_rows.setdefault(account_id, set()).add((symbol, slot))
            live = np.arange(count)
            quantities = self.row_qty[symbol][live]
            default = np.abs(self.row_entry[symbol][live] / quantities)
            price = self.marks.get(symbol)
            prices = default if price is None else np.full(count, price)
            upnl, mm = self._values(symbol, live, prices)
            self.row_upnl[symbol][live], self.row_mm[symbol][live] = upnl, mm
            cross = np.isnan(self.row_iso[symbol][live])
            np.add.at(self.cross_upnl, accounts[cross], upnl[cross])
            np.add.at(self.cross_mm, accounts[cross], mm[cross])
