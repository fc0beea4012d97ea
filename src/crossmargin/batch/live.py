"""The engine's book as growable arrays: accounts that change one at a time, for the screen.

The engine's book changes an account at a time (a fill, a transfer, a liquidation), so the
float screen (:class:`crossmargin.batch.screen.LiquidationScreen`) keeps it in arrays laid out
like a :class:`~crossmargin.batch.convert.BookArrays` (positions account by account) with room
to change: account ``a`` owns the segment ``starts[a] .. starts[a] + room[a]`` of the position
arrays, of which ``starts[a] .. stops[a]`` hold its positions. Replacing an account's positions
rewrites its segment in place; an account that outgrows it moves to the end, and the segments
left behind are reclaimed when the arrays are compacted. The arrays form a
:class:`~crossmargin.batch.convert.PositionArrays`, so the one risk kernel values them.

A position comes as floats (:func:`crossmargin.batch.convert.position_floats`): signed quantity,
signed entry notional, isolated margin (None: cross). MM is valued at entry where the venue says
so for isolated positions (twin of ``core.margin.maintenance_valued_at_entry``). A symbol without
a mark yet has a NaN mark: its holders value to NaN, which the screen always flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.batch.convert import Ints, PositionArrays, instrument_tables
from crossmargin.batch.risk import Valuation, account_positions, empty_valuation, value_accounts
from crossmargin.batch.risk_kernel import ALL_SYMBOLS
from crossmargin.core.errors import InvalidInput
from crossmargin.core.instrument import Instrument
from crossmargin.core.venues import VenueRules

Row = tuple[str, str, float, float, float | None]  # symbol, slot, quantity, entry, margin
_POSITION_FIELDS = {
    "account": np.int32,
    "symbol": np.int32,
    "instrument": np.int32,
    "side": np.float64,
    "quantity": np.float64,
    "entry_notional": np.float64,
    "inverse_leverage": np.float64,  # IM is not screened: 0
    "collateral": np.float64,
    "close_fee": np.float64,  # IM is not screened: 0
    "isolated": np.bool_,
    "maintenance_at_entry": np.bool_,
}
_ACCOUNT_FIELDS = {
    "wallet": np.float64,
    "starts": np.int64,
    "stops": np.int64,
    "cross_entry_notional": np.float64,
    "room": np.int64,  # the account's segment: starts .. starts + room
}


class LiveBook:
    """Positions of many accounts in growable arrays, valued by the batch risk kernel."""

    def __init__(
        self,
        rules: VenueRules,
        instruments: Mapping[str, Instrument],
        *,
        backend: str | None = None,
    ) -> None:
        self.rules = rules
        self.backend = backend
        self.symbols = tuple(instruments)
        self.slots = {symbol: index for index, symbol in enumerate(self.symbols)}
        self.tables = instrument_tables(rules, [instruments[s] for s in self.symbols])
        self.marks: dict[str, float] = {}  # by symbol; read at every load and tick
        self.prices = np.full(len(self.symbols), np.nan)  # the marks by symbol slot
        self.account_ids: list[str] = []
        self.account_index: dict[str, int] = {}
        self.keys: list[list[tuple[str, str]]] = []  # per account, its positions' (symbol, slot)
        self.used = 0  # positions slots handed out (live or left behind)
        self.dirty: set[int] = set()  # accounts whose positions have not been valued yet
        self._columns: dict[str, Any] = {}
        self._allocate(16, 16)

    arrays: PositionArrays  # rebuilt when the arrays grow
    room: Ints
    holds: npt.NDArray[np.int32]  # (symbols, accounts): the account's positions in the symbol
    valuation: Valuation

    @property
    def account_count(self) -> int:
        return len(self.account_ids)

    def _allocate(self, positions: int, accounts: int) -> None:
        """Arrays for ``positions`` slots and ``accounts`` accounts, keeping what is stored."""
        for fields, size in ((_POSITION_FIELDS, positions), (_ACCOUNT_FIELDS, accounts)):
            for name, dtype in fields.items():
                new: Any = np.zeros(size, dtype=dtype)
                old = self._columns.get(name)
                if old is not None:
                    new[: len(old)] = old[: len(new)]
                self._columns[name] = new
        holds = np.zeros((len(self.symbols), accounts), dtype=np.int32)
        if hasattr(self, "holds"):
            holds[:, : self.holds.shape[1]] = self.holds
        self.holds = holds
        self.room = self._columns["room"]
        self.arrays = PositionArrays(
            tables=self.tables, **{k: v for k, v in self._columns.items() if k != "room"}
        )
        # a fresh valuation: every account is valued again at the next tick
        self.valuation = empty_valuation(positions, accounts, self.prices)
        self.dirty.update(range(self.account_count))

    def index_of(self, account_id: str) -> int:
        """The index of ``account_id``, adding an empty account the first time."""
        index = self.account_index.get(account_id)
        if index is None:
            index = len(self.account_ids)
            if index >= len(self.arrays.wallet):
                self._allocate(len(self.arrays.quantity), 2 * len(self.arrays.wallet))
            self.account_index[account_id] = index
            self.account_ids.append(account_id)
            self.keys.append([])
            self.arrays.starts[index] = self.arrays.stops[index] = self.used
        return index

    def sync_account(self, account_id: str, wallet: float, rows: Iterable[Row]) -> None:
        """Replace everything known about one account (after events touched it): its wallet and
        its rows (symbol, slot, signed quantity, signed entry notional, isolated margin or None);
        rows of quantity 0 are left out."""
        kept = [row for row in rows if row[2] != 0]
        slots = [self._slot(row[0]) for row in kept]  # refuse a bad row before changing anything
        index = self.index_of(account_id)
        if len(kept) > self.room[index]:
            self._new_segment(index, max(len(kept), 2 * int(self.room[index]), 2))
        self.arrays.wallet[index] = wallet
        self.holds[:, index] = 0
        self.keys[index] = []
        start = int(self.arrays.starts[index])
        cross_entry = 0.0
        for offset, ((symbol, slot, quantity, entry, margin), slot_index) in enumerate(
            zip(kept, slots, strict=True)
        ):
            self._write(start + offset, index, slot_index, quantity, entry, margin)
            self.holds[slot_index, index] += 1
            self.keys[index].append((symbol, slot))
            if margin is None:
                cross_entry += abs(entry)
        self.arrays.stops[index] = start + len(kept)
        self.arrays.cross_entry_notional[index] = cross_entry
        self.dirty.add(index)

    def _slot(self, symbol: str) -> int:
        slot = self.slots.get(symbol)
        if slot is None:
            raise InvalidInput("symbol", f"{symbol!r} is not an instrument of this book")
        return slot

    def _write(
        self,
        position: int,
        account: int,
        slot: int,
        quantity: float,
        entry: float,
        margin: float | None,
    ) -> None:
        isolated = margin is not None
        self.arrays.account[position] = account
        self.arrays.symbol[position] = self.arrays.instrument[position] = slot
        self.arrays.side[position] = 1.0 if quantity > 0 else -1.0
        self.arrays.quantity[position] = abs(quantity)
        self.arrays.entry_notional[position] = abs(entry)
        self.arrays.collateral[position] = margin if margin is not None else 0.0
        self.arrays.isolated[position] = isolated
        self.arrays.maintenance_at_entry[position] = (
            isolated and self.rules.isolated_maintenance_at_entry
        )

    def _new_segment(self, index: int, room: int) -> None:
        """Give account ``index`` an empty segment of ``room`` slots at the end (its positions are
        written next). When the arrays are full, the segments left behind are reclaimed first and
        the arrays grow to twice what is live, so each slot is copied a bounded number of times
        on average."""
        if self.used + room > len(self.arrays.quantity):
            self._compact()
            if 2 * (self.used + room) > len(self.arrays.quantity):
                self._allocate(2 * (self.used + room), len(self.arrays.wallet))
        self.arrays.starts[index] = self.arrays.stops[index] = self.used
        self.room[index] = room
        self.used += room

    def _compact(self) -> None:
        """Move every account's positions to the front, in account order, with no spare room."""
        accounts = np.arange(self.account_count, dtype=np.int64)
        order, _ = account_positions(self.arrays, accounts)
        lengths = self.arrays.stops[: len(accounts)] - self.arrays.starts[: len(accounts)]
        for name in _POSITION_FIELDS:
            column = self._columns[name]
            column[: len(order)] = column[order]
        self.arrays.starts[: len(accounts)] = np.cumsum(lengths) - lengths
        self.arrays.stops[: len(accounts)] = self.arrays.starts[: len(accounts)] + lengths
        self.room[: len(accounts)] = lengths
        self.used = len(order)
        self.dirty.update(range(len(accounts)))

    def load(
        self,
        wallets: Mapping[str, float],
        positions: Iterable[tuple[str, str, str, float, float, float | None]],
    ) -> None:
        """Bulk-load: wallets, then rows (account, symbol, slot, quantity, entry, margin), laid
        out account by account at the end of the arrays; then value everything at :attr:`marks`."""
        rows = [row for row in positions if row[3] != 0]
        slots = np.array([self._slot(row[1]) for row in rows], dtype=np.int32)
        self._read_marks()
        for account_id, wallet in wallets.items():
            index = self.index_of(account_id)  # may grow the arrays: index them after
            self.arrays.wallet[index] = wallet
        owners = np.array([self.index_of(row[0]) for row in rows], dtype=np.int64)
        if self.used + len(rows) > len(self.arrays.quantity):
            self._allocate(self.used + len(rows), len(self.arrays.wallet))
        order = np.argsort(owners, kind="stable")  # account by account, rows in their order
        counts = np.bincount(owners, minlength=self.account_count)
        loaded = np.flatnonzero(counts)
        arrays, first = self.arrays, self.used + np.cumsum(counts) - counts
        arrays.starts[loaded], arrays.stops[loaded] = first[loaded], first[loaded] + counts[loaded]
        self.room[loaded] = counts[loaded]
        placed = slice(self.used, self.used + len(rows))
        self.used += len(rows)
        quantity = np.array([row[3] for row in rows], dtype=np.float64)[order]
        entry = np.abs(np.array([row[4] for row in rows], dtype=np.float64))[order]
        margin = np.array([np.nan if row[5] is None else row[5] for row in rows])[order]
        isolated = ~np.isnan(margin)
        arrays.account[placed] = owners[order]
        arrays.symbol[placed] = arrays.instrument[placed] = slots[order]
        arrays.side[placed] = np.where(quantity > 0, 1.0, -1.0)
        arrays.quantity[placed] = np.abs(quantity)
        arrays.entry_notional[placed] = entry
        arrays.collateral[placed] = np.where(isolated, margin, 0.0)
        arrays.isolated[placed] = isolated
        arrays.maintenance_at_entry[placed] = isolated & self.rules.isolated_maintenance_at_entry
        cross_entry = np.bincount(owners[order], weights=np.where(isolated, 0.0, entry))
        arrays.cross_entry_notional[loaded] = cross_entry[loaded]
        self.holds[:, loaded] = 0
        np.add.at(self.holds, (slots, owners), 1)
        for index in loaded.tolist():
            self.keys[index] = []
        for row in order.tolist():
            self.keys[owners[row]].append((rows[row][1], rows[row][2]))
        self.dirty.update(range(self.account_count))
        self.value_dirty()

    def _read_marks(self) -> None:
        for symbol, price in self.marks.items():
            slot = self.slots.get(symbol)
            if slot is not None:
                self.prices[slot] = price

    def value_dirty(self) -> None:
        """Value every position of the accounts changed since they were last valued."""
        if self.dirty:
            accounts = np.fromiter(self.dirty, dtype=np.int64, count=len(self.dirty))
            self.dirty.clear()
            value_accounts(self.arrays, self.valuation, accounts, ALL_SYMBOLS, backend=self.backend)

    def move(self, symbol: str, price: float) -> Ints:
        """Move ``symbol`` to ``price`` and revalue its holders (after the accounts changed since
        the last move); returns the holders."""
        slot = self._slot(symbol)
        self.marks[symbol] = price
        self._read_marks()
        self.value_dirty()
        holders = np.flatnonzero(self.holds[slot, : self.account_count]).astype(np.int64)
        value_accounts(self.arrays, self.valuation, holders, slot, backend=self.backend)
        return holders
