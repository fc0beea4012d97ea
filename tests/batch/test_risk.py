"""Batch revaluation: conversion, backends, one-symbol ticks, bracket lookup and input checks."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from crossmargin.batch import _accel
from crossmargin.batch.convert import bracket_tables, from_books, instrument_key, marks_array
from crossmargin.batch.maintenance import bracket_lookup
from crossmargin.batch.risk import revalue, update_symbol
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.core.errors import InvalidInput
from crossmargin.core.portfolio import parse_portfolio
from crossmargin.core.venues import BINANCE_USDM, OKX_SWAP

FIELDS = (
    "notional",
    "unrealized_pnl",
    "initial_margin",
    "maintenance_margin",
    "bracket",
    "isolated_liquidatable",
    "margin_balance",
    "maintenance",
    "initial",
    "cross_positions",
    "margin_ratio",
    "cross_liquidatable",
    "isolated_any_liquidatable",
    "cross_notional",
)


def same(left: object, right: object) -> bool:
    return all(np.array_equal(getattr(left, f), getattr(right, f), equal_nan=True) for f in FIELDS)


def test_numba_and_numpy_backends_give_identical_bits() -> None:
    """A full revaluation (on all cores) and a tick (on the calling thread alone)."""
    arrays = synthetic_book(5000, seed=11).arrays
    marks = arrays.marks * np.linspace(0.7, 1.3, len(arrays.marks))
    numba_values = revalue(arrays, marks, backend="numba")
    assert same(numba_values, revalue(arrays, marks, backend="numpy"))
    numpy_values = revalue(arrays, marks, backend="numpy")
    symbol = arrays.symbol_index("BTCUSDT")
    update_symbol(arrays, numba_values, symbol, 41000.5, backend="numba")
    update_symbol(arrays, numpy_values, symbol, 41000.5, backend="numpy")
    assert same(numba_values, numpy_values)


def test_a_tick_revalues_only_the_symbols_accounts_and_matches_a_full_revaluation(
    backend: str,
) -> None:
    arrays = synthetic_book(4000, seed=12).arrays
    valuation = revalue(arrays, backend=backend)
    symbol = arrays.symbol_index("ETHUSDT")
    untouched = ~np.isin(np.arange(arrays.account_count), arrays.account[arrays.symbol == symbol])
    before = valuation.margin_balance[untouched].copy()
    price = float(arrays.marks[symbol] * 0.83)
    touched = update_symbol(arrays, valuation, symbol, price, backend=backend)
    assert set(touched.tolist()) == set(arrays.account[arrays.symbol == symbol].tolist())
    assert np.array_equal(valuation.margin_balance[untouched], before)
    marks = arrays.marks.copy()
    marks[symbol] = price
    assert same(valuation, revalue(arrays, marks, backend=backend))


def test_revalue_into_a_previous_result_reuses_its_arrays(backend: str) -> None:
    arrays = synthetic_book(300, seed=13).arrays
    first = revalue(arrays, backend=backend)
    buffer = first.maintenance_margin
    second = revalue(arrays, arrays.marks * 0.9, out=first, backend=backend)
    assert second.maintenance_margin is buffer
    assert same(second, revalue(arrays, arrays.marks * 0.9, backend=backend))


def test_bracket_lookup_is_cap_inclusive_like_the_core() -> None:
    instrument = BINANCE_USDM.instrument("BTCUSDT")
    assert instrument is not None
    tables = bracket_tables([instrument_key(BINANCE_USDM, instrument)])
    caps = [float(c) for c in instrument.caps]
    notionals = np.array([0.0, caps[0], np.nextafter(caps[0], np.inf), caps[1], 1e30])
    found = bracket_lookup(tables, np.zeros(5, dtype=np.int64), notionals)
    expected = [instrument.bracket_index(Decimal(repr(float(n)))) for n in notionals]
    assert found.tolist() == expected == [0, 0, 1, 1, len(instrument.brackets) - 1]


def test_okx_fee_buffer_and_no_deduction_are_folded_into_the_tables() -> None:
    instrument = OKX_SWAP.instrument("BTC-USDT-SWAP")
    assert instrument is not None
    tables = bracket_tables([instrument_key(OKX_SWAP, instrument)])
    first = instrument.brackets[0]
    assert tables.rates[0, 0] == float(first.maintenance_margin_rate + instrument.taker_fee_rate)
    assert not tables.amounts.any()
    assert not tables.continuous[0]


def portfolio(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "wallet_balance": "1000",
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "quantity": "0.1",
                "entry_price": "30000",
                "leverage": "10",
                "margin_mode": "cross",
            },
        ],
        "mark_prices": {"BTCUSDT": "29000"},
    }
    base.update(changes)
    return base


def test_books_that_disagree_on_a_mark_are_refused_naming_the_portfolio() -> None:
    books = [parse_portfolio(portfolio()), parse_portfolio(portfolio(mark_prices={"BTCUSDT": "1"}))]
    with pytest.raises(InvalidInput) as error:
        from_books(books)
    assert error.value.field == "[1].mark_prices.BTCUSDT"
    arrays = from_books(books, marks={"BTCUSDT": Decimal(28000)})
    assert arrays.marks.tolist() == [28000.0]


def test_bybit_close_fee_and_entry_valued_maintenance_are_per_position_flags() -> None:
    book = parse_portfolio(
        {
            "venue": "bybit-linear",
            "wallet_balance": "0",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "20000",
                    "leverage": "50",
                    "margin_mode": "isolated",
                    "isolated_margin": "400",
                }
            ],
        }
    )
    arrays = from_books([book])
    assert arrays.maintenance_at_entry.tolist() == [True]
    assert arrays.close_fee[0] == pytest.approx(1 * 20000 * (1 - 1 / 50) * 0.00055)
    # maintenance valued at entry does not move with the mark
    low = revalue(arrays, arrays.marks * 0.5).maintenance_margin[0]
    assert low == revalue(arrays).maintenance_margin[0]


def test_bad_marks_and_backends_are_refused_naming_the_field() -> None:
    arrays = from_books([parse_portfolio(portfolio())])
    for marks in (np.array([-1.0]), np.array([np.nan]), np.array([1.0, 2.0])):
        with pytest.raises(InvalidInput) as error:
            revalue(arrays, marks)
        assert error.value.field == "marks"
    with pytest.raises(InvalidInput) as error:
        revalue(arrays, backend="fortran")
    assert error.value.field == "backend"
    with pytest.raises(InvalidInput) as error:
        marks_array(arrays, {"BTCUSDT": Decimal(0)})
    assert error.value.field == "marks.BTCUSDT"
    with pytest.raises(InvalidInput):
        update_symbol(arrays, revalue(arrays), 0, -5.0)


def test_the_environment_variable_forces_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_accel.BACKEND_ENV, "numpy")
    assert not _accel.use_numba(None)
    monkeypatch.setenv(_accel.BACKEND_ENV, "auto")
    assert _accel.use_numba(None) == _accel.HAVE_NUMBA
