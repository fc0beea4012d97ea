"""The one converter from core objects to the batch path's struct of arrays.

This module is the only place in :mod:`crossmargin.batch` that turns a ``Decimal`` into a float.
Venue rules are folded into the arrays here, so the kernels never branch on a venue:

* ``fee_buffer_in_maintenance`` (OKX): the taker fee rate is added to every bracket's rate.
* ``maintenance_deduction`` off (OKX): every bracket's maintenance amount is 0.
* ``isolated_maintenance_at_entry`` (Bybit): a per-position flag; MM is valued at the entry
  notional with the bracket of the entry notional.
* ``close_fee_in_initial_margin`` (Bybit): a per-position constant ``q * P_bankrupt * taker``
  (:func:`crossmargin.core.margin.close_fee_estimate`) added to IM.

Layout: positions are stored account by account (``account_start[a]`` .. ``account_start[a+1]``);
each references a price slot (``symbol``, an index into ``symbols``/marks) and an instrument
(``instrument``, a row of the padded bracket tables: caps padded with +inf). Hedge-mode cross legs
of one symbol in one account point at each other through ``partner`` (-1 when alone): they move
together in a liquidation-price solve, as in :func:`crossmargin.core.risk.position_liquidation_price`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from crossmargin.core import numbers
from crossmargin.core.errors import InvalidInput
from crossmargin.core.instrument import Instrument
from crossmargin.core.margin import close_fee_estimate, maintenance_valued_at_entry
from crossmargin.core.numbers import ZERO, format_decimal
from crossmargin.core.position import Position
from crossmargin.core.risk import Book
from crossmargin.core.venues import VenueRules

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]


def _float_above(value: Decimal) -> float:
    """The smallest float not below ``value`` (a quantum the screen must not understate)."""
    result = float(value)
    return result if Decimal.from_float(result) >= value else float(np.nextafter(result, np.inf))


# The core's rounding quanta (core.numbers), as floats no smaller than the exact decimals.
MONEY_QUANTUM = _float_above(numbers.MONEY_QUANTUM)
RATIO_QUANTUM = _float_above(numbers.RATIO_QUANTUM)


@dataclass(frozen=True, slots=True, kw_only=True)
class BracketTables:
    """Per instrument, the bracket table padded to a common width (caps +inf past the last).

    The width is a power of two above the longest table, so kernels can search the caps with a
    fixed number of halvings (no data-dependent branch).
    """

    caps: Floats  # (instruments, width), cap inclusive, +inf padding
    rates: Floats  # maintenance margin rate (+ taker fee rate where the venue adds it)
    amounts: Floats  # maintenance amount (0 where the venue deducts none)
    counts: Ints  # number of brackets of each instrument
    continuous: Bools  # MM continuous across every cap (MM monotone in the notional)
    max_leverage: Floats  # highest initial leverage per bracket (+inf where the table has none)

    @property
    def width(self) -> int:
        return int(self.caps.shape[1])

    def kernel_arrays(self) -> tuple[Floats, Floats, Floats, Ints]:
        """(caps, rates, amounts, counts), in the order every numba kernel takes them."""
        return self.caps, self.rates, self.amounts, self.counts


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionArrays:
    """What a revaluation and the screen read: positions stored account by account (account
    ``a``: ``starts[a]`` .. ``stops[a]``) as parallel arrays, per account the cross wallet."""

    tables: BracketTables
    # positions
    account: Int32s
    symbol: Int32s
    instrument: Int32s
    side: Floats  # +1 long, -1 short
    quantity: Floats
    entry_notional: Floats
    inverse_leverage: Floats
    collateral: Floats  # isolated margin; 0 for cross positions
    close_fee: Floats  # Bybit's fee to close, part of IM; 0 elsewhere
    isolated: Bools
    maintenance_at_entry: Bools
    # accounts
    wallet: Floats
    starts: Ints
    stops: Ints
    cross_entry_notional: Floats  # sum over the cross positions (sizes the screen's float error)

    def kernel_columns(self) -> tuple[Int32s, Int32s, Floats, Floats, Floats, Floats, Bools]:
        """The position columns every numba kernel reads, in the order they take them: symbol,
        instrument, side, quantity, entry notional, collateral, MM valued at entry."""
        return (
            self.symbol,
            self.instrument,
            self.side,
            self.quantity,
            self.entry_notional,
            self.collateral,
            self.maintenance_at_entry,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BookArrays(PositionArrays):
    """Many accounts' positions as parallel numpy arrays (float64 money, index arrays), sorted by
    account: ``starts`` and ``stops`` are views of ``account_start``."""

    symbols: tuple[str, ...]
    marks: Floats  # (symbols,) the marks the book was converted with
    partner: Int32s  # the other cross leg of the same symbol in the account, or -1
    account_start: Ints  # (accounts + 1,)
    # symbol -> accounts holding it (CSR), for one-symbol tick updates
    symbol_account_start: Ints
    symbol_accounts: Int32s

    @property
    def position_count(self) -> int:
        return int(self.quantity.shape[0])

    @property
    def account_count(self) -> int:
        return int(self.wallet.shape[0])

    def symbol_index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise InvalidInput("symbol", f"{symbol!r} is not in this book") from None

    def input_arrays(self) -> tuple[npt.NDArray[np.generic], ...]:
        """The per-position and per-account arrays a full revaluation reads."""
        others = (self.inverse_leverage, self.close_fee, self.isolated, self.wallet)
        return (*self.kernel_columns(), *others, self.account_start)

    @property
    def nbytes(self) -> int:
        positions = (*self.input_arrays(), self.account, self.partner, self.symbol_accounts)
        per_account = self.symbol_account_start.nbytes + self.cross_entry_notional.nbytes
        return sum(int(a.nbytes) for a in positions) + int(per_account)


InstrumentKey = tuple[bool, bool, Instrument]


def instrument_key(rules: VenueRules, instrument: Instrument) -> InstrumentKey:
    """Two instruments share a table row when their brackets and the relevant flags agree."""
    return (rules.fee_buffer_in_maintenance, rules.maintenance_deduction, instrument)


def bracket_tables(keys: Sequence[InstrumentKey]) -> BracketTables:
    """Padded float tables for instruments under venue rules (the mirror of core.margin's terms)."""
    longest = max((len(instrument.brackets) for _, _, instrument in keys), default=1)
    width = 1 << longest.bit_length()  # a power of two > longest: one +inf cap at least
    count = len(keys)
    tables = BracketTables(
        caps=np.full((count, width), np.inf),
        rates=np.zeros((count, width)),
        amounts=np.zeros((count, width)),
        counts=np.array([len(instrument.brackets) for _, _, instrument in keys], dtype=np.int64),
        continuous=np.ones(count, dtype=np.bool_),
        max_leverage=np.full((count, width), np.inf),
    )
    for row, (fee_buffer, deduction, instrument) in enumerate(keys):
        exact_rates: list[Decimal] = []
        exact_amounts: list[Decimal] = []
        for column, bracket in enumerate(instrument.brackets):
            rate = bracket.maintenance_margin_rate
            if fee_buffer:
                rate += instrument.taker_fee_rate
            amount = bracket.maintenance_amount if deduction else ZERO
            exact_rates.append(rate)
            exact_amounts.append(amount)
            if bracket.cap is not None:
                tables.caps[row, column] = float(bracket.cap)
            tables.rates[row, column] = float(rate)
            tables.amounts[row, column] = float(amount)
            if bracket.max_leverage is not None:
                tables.max_leverage[row, column] = float(bracket.max_leverage)
        for index, bracket in enumerate(instrument.brackets[1:], start=1):
            below = bracket.floor * exact_rates[index - 1] - exact_amounts[index - 1]
            above = bracket.floor * exact_rates[index] - exact_amounts[index]
            if below != above:
                tables.continuous[row] = False
    return tables


def instrument_tables(rules: VenueRules, instruments: Sequence[Instrument]) -> BracketTables:
    """One table row per instrument, in order, under ``rules`` (the engine's live book)."""
    return bracket_tables([instrument_key(rules, instrument) for instrument in instruments])


def position_floats(
    position: Position, isolated_margin: Decimal | None
) -> tuple[float, float, float | None]:
    """An engine position as floats: signed quantity, signed entry notional, isolated margin
    (None for a cross position)."""
    sign = position.side.sign
    margin = None if isolated_margin is None else float(isolated_margin)
    return float(sign * position.quantity), float(sign * position.entry_notional), margin


def decimal_to_float(value: Decimal) -> float:
    """A balance or price for the float screen."""
    return float(value)


def _book_marks(
    books: Sequence[Book], marks: Mapping[str, Decimal] | None
) -> tuple[tuple[str, ...], Floats]:
    """One mark per symbol: ``marks`` when given, else the books' own (which must agree)."""
    chosen: dict[str, Decimal] = {}
    origin: dict[str, int] = {}
    for index, book in enumerate(books):
        for position in book.positions:
            symbol = position.symbol
            if marks is not None:
                if symbol not in marks:
                    raise InvalidInput(f"marks.{symbol}", "is required by the book")
                chosen[symbol] = marks[symbol]
                continue
            mark = book.mark(symbol)
            if symbol in chosen and chosen[symbol] != mark:
                raise InvalidInput(
                    f"[{index}].mark_prices.{symbol}",
                    f"{format_decimal(mark)} differs from {format_decimal(chosen[symbol])} in "
                    f"portfolio [{origin[symbol]}]; a batch book values every account at one mark",
                )
            chosen.setdefault(symbol, mark)
            origin.setdefault(symbol, index)
    symbols = tuple(sorted(chosen))
    return symbols, np.array([float(chosen[s]) for s in symbols], dtype=np.float64)


def from_books(books: Sequence[Book], marks: Mapping[str, Decimal] | None = None) -> BookArrays:
    """Convert accounts (one :class:`Book` each, in order) to a :class:`BookArrays`.

    Account ``a`` of the result is ``books[a]``; its positions keep the book's order.
    """
    symbols, mark_array = _book_marks(books, marks)
    symbol_slot = {symbol: index for index, symbol in enumerate(symbols)}
    keys: dict[InstrumentKey, int] = {}
    columns: dict[str, list[float]] = {
        name: []
        for name in (
            "side",
            "quantity",
            "entry_notional",
            "inverse_leverage",
            "collateral",
            "close_fee",
        )
    }
    account: list[int] = []
    symbol: list[int] = []
    instrument_row: list[int] = []
    isolated: list[bool] = []
    at_entry: list[bool] = []
    partner: list[int] = []
    starts = [0]
    for index, book in enumerate(books):
        legs: dict[str, list[int]] = {}
        for position in book.positions:
            number = len(account)
            instrument = book.instruments[position.symbol]
            key = instrument_key(book.rules, instrument)
            account.append(index)
            symbol.append(symbol_slot[position.symbol])
            instrument_row.append(keys.setdefault(key, len(keys)))
            columns["side"].append(float(position.side.sign))
            columns["quantity"].append(float(position.quantity))
            columns["entry_notional"].append(float(position.entry_notional))
            columns["inverse_leverage"].append(float(1 / position.leverage))
            columns["collateral"].append(
                float(position.isolated_margin) if position.isolated_margin is not None else 0.0
            )
            fee = (
                close_fee_estimate(instrument, position)
                if book.rules.close_fee_in_initial_margin
                else ZERO
            )
            columns["close_fee"].append(float(fee))
            isolated.append(position.is_isolated)
            at_entry.append(maintenance_valued_at_entry(book.rules, position))
            partner.append(-1)
            if not position.is_isolated:
                legs.setdefault(position.symbol, []).append(number)
        for group in legs.values():
            if len(group) == 2:
                partner[group[0]], partner[group[1]] = group[1], group[0]
            elif len(group) > 2:
                raise InvalidInput(
                    f"[{index}].positions", "more than two cross positions on one symbol"
                )
        starts.append(len(account))
    wallet = np.array([float(book.wallet_balance) for book in books], dtype=np.float64)
    return assemble(
        symbols=symbols,
        marks=mark_array,
        tables=bracket_tables(list(keys)),
        account=np.array(account, dtype=np.int32),
        symbol=np.array(symbol, dtype=np.int32),
        instrument=np.array(instrument_row, dtype=np.int32),
        columns={name: np.array(values, dtype=np.float64) for name, values in columns.items()},
        isolated=np.array(isolated, dtype=np.bool_),
        maintenance_at_entry=np.array(at_entry, dtype=np.bool_),
        partner=np.array(partner, dtype=np.int32),
        wallet=wallet,
        account_start=np.array(starts, dtype=np.int64),
    )


def assemble(
    *,
    symbols: tuple[str, ...],
    marks: Floats,
    tables: BracketTables,
    account: Int32s,
    symbol: Int32s,
    instrument: Int32s,
    columns: Mapping[str, Floats],
    isolated: Bools,
    maintenance_at_entry: Bools,
    partner: Int32s,
    wallet: Floats,
    account_start: Ints,
) -> BookArrays:
    """Build a :class:`BookArrays` from float columns, adding the symbol -> accounts index."""
    pairs = np.unique(symbol.astype(np.int64) * len(wallet) + account.astype(np.int64))
    pair_symbol = pairs // max(len(wallet), 1)
    symbol_accounts = (pairs % max(len(wallet), 1)).astype(np.int32)
    symbol_account_start = np.zeros(len(symbols) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair_symbol, minlength=len(symbols)), out=symbol_account_start[1:])
    cross_entry = np.bincount(
        account, weights=np.where(isolated, 0.0, columns["entry_notional"]), minlength=len(wallet)
    ).astype(np.float64, copy=False)
    return BookArrays(
        symbols=symbols,
        marks=marks,
        tables=tables,
        account=account,
        symbol=symbol,
        instrument=instrument,
        side=columns["side"],
        quantity=columns["quantity"],
        entry_notional=columns["entry_notional"],
        inverse_leverage=columns["inverse_leverage"],
        collateral=columns["collateral"],
        close_fee=columns["close_fee"],
        isolated=isolated,
        maintenance_at_entry=maintenance_at_entry,
        partner=partner,
        wallet=wallet,
        account_start=account_start,
        starts=account_start[:-1],
        stops=account_start[1:],
        cross_entry_notional=cross_entry,
        symbol_account_start=symbol_account_start,
        symbol_accounts=symbol_accounts,
    )


def decimal_marks(arrays: BookArrays, marks: Floats) -> dict[str, Decimal]:
    """Float marks back to Decimals (exactly the binary value's shortest repr)."""
    return {
        symbol: Decimal(repr(float(price)))
        for symbol, price in zip(arrays.symbols, marks, strict=True)
    }


def marks_array(arrays: BookArrays, marks: Mapping[str, Decimal]) -> Floats:
    """The book's marks with some symbols replaced (a scenario given as Decimals)."""
    result = arrays.marks.copy()
    for symbol, price in marks.items():
        if price <= 0:
            raise InvalidInput(f"marks.{symbol}", "must be positive")
        result[arrays.symbol_index(symbol)] = float(price)
    return result
