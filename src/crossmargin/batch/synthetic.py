"""A seeded synthetic book for benchmarks and ``crossmargin stress --synthetic N``.

Instruments are real: the bundled Binance USD-M brackets of 50 perpetuals (the six with bundled
market history first, then the rest of the USDT perpetuals in name order). Everything else is
drawn from a seeded numpy generator:

* accounts hold ``1 + Poisson(2)`` positions (about 3) on distinct symbols (one-way mode); the
  first symbol of an account favours the majors (weights ~ 1 / rank);
* marks: the last close of the bundled history for the six, log-uniform in [0.01, 100] else;
* entry notional log-normal (median 2,000 USD, sigma 1.5) capped below the table's largest cap;
  entry price within about 1% of the mark (log-normal); side 50/50;
* leverage from {2, 3, 5, 10, 20, 25, 50}, capped at the bracket's maximum at entry;
* 30% of positions isolated with 1.0-1.6x their initial margin; the cross wallet is 1.1-4x the
  initial margin of the cross positions.

:func:`account_books` turns some accounts back into core :class:`Book` objects (floats written as
their shortest decimal repr), so the exact core can value the very same accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from crossmargin.batch.convert import (
    BookArrays,
    Floats,
    Ints,
    assemble,
    bracket_tables,
    instrument_key,
)
from crossmargin.batch.history import market_history
from crossmargin.batch.maintenance import bracket_lookup
from crossmargin.core.errors import InvalidInput
from crossmargin.core.instrument import Instrument
from crossmargin.core.position import MarginMode, Position, Side
from crossmargin.core.risk import Book
from crossmargin.core.venues import BINANCE_USDM, VenueRules

SYMBOL_COUNT = 50
LEVERAGES = np.array([2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0])
LEVERAGE_WEIGHTS = np.array([0.08, 0.1, 0.2, 0.3, 0.2, 0.07, 0.05])
ISOLATED_SHARE = 0.3


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticBook:
    arrays: BookArrays
    rules: VenueRules
    instruments: tuple[Instrument, ...]  # by symbol slot (instrument row = symbol slot)
    leverage: Floats


def synthetic_symbols(rules: VenueRules = BINANCE_USDM) -> tuple[str, ...]:
    """The 50 perpetuals of the synthetic book."""
    history = market_history().symbols
    perpetuals = [
        s for s in rules.symbols() if s.endswith("USDT") and "_" not in s and s not in history
    ]
    return tuple(history) + tuple(perpetuals[: SYMBOL_COUNT - len(history)])


def _account_sizes(rng: np.random.Generator, positions: int) -> Ints:
    sizes = 1 + rng.poisson(2.0, size=positions // 2 + 16)
    sizes = np.minimum(sizes, SYMBOL_COUNT)
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, positions)) + 1
    sizes = sizes[:count].copy()
    sizes[-1] -= int(ends[count - 1]) - positions
    return sizes.astype(np.int64)


def synthetic_book(positions: int, seed: int = 0) -> SyntheticBook:
    """A book of ``positions`` positions (about a third as many accounts), reproducible by seed."""
    if positions < 1:
        raise InvalidInput("--synthetic", "needs at least one position")
    rules = BINANCE_USDM
    symbols = synthetic_symbols(rules)
    instruments = tuple(_instrument(rules, s) for s in symbols)
    tables = bracket_tables([instrument_key(rules, i) for i in instruments])
    rng = np.random.default_rng(seed)
    history = market_history()
    marks = np.exp(rng.uniform(np.log(0.01), np.log(100.0), size=SYMBOL_COUNT))
    marks[: len(history.symbols)] = history.last_close

    sizes = _account_sizes(rng, positions)
    accounts = len(sizes)
    account_start = np.zeros(accounts + 1, dtype=np.int64)
    np.cumsum(sizes, out=account_start[1:])
    account = np.repeat(np.arange(accounts, dtype=np.int32), sizes)
    slot = np.arange(positions, dtype=np.int64) - account_start[account]
    weights = 1.0 / np.arange(1, SYMBOL_COUNT + 1)
    first = rng.choice(SYMBOL_COUNT, size=accounts, p=weights / weights.sum())
    steps = np.array([s for s in range(1, SYMBOL_COUNT) if np.gcd(s, SYMBOL_COUNT) == 1])
    step = rng.choice(steps, size=accounts)
    symbol = ((first[account] + slot * step[account]) % SYMBOL_COUNT).astype(np.int32)

    largest = np.where(np.isfinite(tables.caps), tables.caps, 0.0).max(axis=1)[symbol]
    entry_notional = np.minimum(np.exp(rng.normal(np.log(2000.0), 1.5, positions)), largest * 0.9)
    entry_notional = np.maximum(entry_notional, 5.0)
    entry_price = marks[symbol] * np.exp(rng.normal(0.0, 0.01, positions))
    quantity = entry_notional / entry_price
    entry_notional = quantity * entry_price
    side = np.where(rng.random(positions) < 0.5, 1.0, -1.0)

    bracket = bracket_lookup(tables, symbol.astype(np.int64), entry_notional)
    allowed = tables.max_leverage[symbol, bracket]
    leverage = np.minimum(rng.choice(LEVERAGES, size=positions, p=LEVERAGE_WEIGHTS), allowed)
    leverage = np.floor(leverage)
    isolated = rng.random(positions) < ISOLATED_SHARE
    initial = entry_notional / leverage
    collateral = np.where(isolated, initial * rng.uniform(1.0, 1.6, positions), 0.0)
    cross_initial = np.bincount(
        account, weights=np.where(isolated, 0.0, initial), minlength=accounts
    )
    wallet = cross_initial * rng.uniform(1.1, 4.0, accounts)

    arrays = assemble(
        symbols=symbols,
        marks=marks,
        tables=tables,
        account=account,
        symbol=symbol,
        instrument=symbol.copy(),
        columns={
            "side": side,
            "quantity": quantity,
            "entry_notional": entry_notional,
            "inverse_leverage": 1.0 / leverage,
            "collateral": collateral,
            "close_fee": np.zeros(positions),
        },
        isolated=isolated,
        maintenance_at_entry=np.zeros(positions, dtype=np.bool_),
        partner=np.full(positions, -1, dtype=np.int32),
        wallet=wallet,
        account_start=account_start,
    )
    return SyntheticBook(arrays=arrays, rules=rules, instruments=instruments, leverage=leverage)


def _instrument(rules: VenueRules, symbol: str) -> Instrument:
    instrument = rules.instrument(symbol)
    if instrument is None:
        raise InvalidInput("symbol", f"{symbol} is not bundled for {rules.name}")
    return instrument


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def account_books(book: SyntheticBook, accounts: Sequence[int]) -> list[Book]:
    """Core books of the given synthetic accounts, valued at the book's marks."""
    arrays = book.arrays
    marks = {s: _decimal(m) for s, m in zip(arrays.symbols, arrays.marks, strict=True)}
    result: list[Book] = []
    for account in accounts:
        positions = []
        for index in range(arrays.account_start[account], arrays.account_start[account + 1]):
            isolated = bool(arrays.isolated[index])
            symbol = arrays.symbols[arrays.symbol[index]]
            positions.append(
                Position(
                    symbol=symbol,
                    side=Side.LONG if arrays.side[index] > 0 else Side.SHORT,
                    quantity=_decimal(arrays.quantity[index]),
                    entry_notional=_decimal(arrays.entry_notional[index]),
                    leverage=Decimal(int(book.leverage[index])),
                    margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
                    isolated_margin=_decimal(arrays.collateral[index]) if isolated else None,
                )
            )
        used = {p.symbol for p in positions}
        result.append(
            Book(
                rules=book.rules,
                instruments={s: book.instruments[arrays.symbol_index(s)] for s in used},
                marks={s: marks[s] for s in used},
                positions=tuple(positions),
                wallet_balance=_decimal(arrays.wallet[account]),
            )
        )
    return result
