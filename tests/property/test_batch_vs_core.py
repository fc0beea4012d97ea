"""Differential tests: the batch path against the Decimal core on generated portfolios.

Every drawn portfolio (all five venues; cross, isolated, hedge and mixed; bundled or drawn bracket
tables; healthy and stressed) is valued by ``core.risk.account_report`` and by the batch path on
both backends. The agreement and its guard bands are declared in ``tests/batch/agreement.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossmargin.batch.convert import from_books
from crossmargin.batch.liquidation import liquidation_prices
from crossmargin.batch.risk import revalue
from crossmargin.batch.synthetic import account_books, synthetic_book
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.risk import account_report
from tests.batch.agreement import check_account
from tests.strategies import PROPERTY_SETTINGS, portfolios

BACKENDS = ("numba", "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY_SETTINGS
@given(portfolio=st.one_of(portfolios(), portfolios(stressed=True)))
def test_batch_agrees_with_the_core_on_generated_portfolios(
    backend: str, portfolio: dict[str, Any]
) -> None:
    book = parse_portfolio(portfolio)
    arrays = from_books([book])
    valuation = revalue(arrays, backend=backend)
    check_account(
        book,
        account_report(book),
        arrays,
        valuation,
        liquidation_prices(arrays, valuation, backend=backend),
        0,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY_SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_batch_agrees_with_the_core_on_synthetic_accounts(backend: str, seed: int) -> None:
    synthetic = synthetic_book(60, seed=seed)
    arrays = synthetic.arrays
    valuation = revalue(arrays, backend=backend)
    prices = liquidation_prices(arrays, valuation, backend=backend)
    books = account_books(synthetic, range(arrays.account_count))
    for account, book in enumerate(books):
        check_account(book, account_report(book), arrays, valuation, prices, account)
    # the converter rebuilds the very same arrays from the core books
    rebuilt = from_books(books)
    order = [arrays.symbols.index(s) for s in rebuilt.symbols]
    assert np.array_equal(rebuilt.quantity, arrays.quantity)
    assert np.array_equal(rebuilt.entry_notional, arrays.entry_notional)
    assert np.array_equal(rebuilt.inverse_leverage, arrays.inverse_leverage)
    assert np.array_equal(rebuilt.collateral, arrays.collateral)
    assert np.array_equal(rebuilt.wallet, arrays.wallet)
    assert np.array_equal(rebuilt.marks, arrays.marks[order])
