"""The screen flags every scope the Decimal core finds liquidatable, and little else."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from crossmargin.batch.candidates import screen
from crossmargin.batch.convert import decimal_marks, from_books
from crossmargin.batch.risk import revalue
from crossmargin.batch.synthetic import account_books, synthetic_book
from crossmargin.core.portfolio import parse_portfolio
from crossmargin.core.risk import account_report
from tests.strategies import PROPERTY_SETTINGS, portfolios


@PROPERTY_SETTINGS
@given(portfolio=portfolios(stressed=True), backend=st.sampled_from(["numba", "numpy"]))
def test_the_screen_never_misses_a_scope_the_core_liquidates(
    portfolio: dict[str, Any], backend: str
) -> None:
    book = parse_portfolio(portfolio)
    arrays = from_books([book])
    found = screen(arrays, backend=backend)
    report = account_report(book)
    if report.cross_liquidatable:
        assert found.accounts.tolist() == [0]
    for index, row in enumerate(report.positions):
        if row.position.is_isolated and row.liquidatable:
            assert index in found.isolated_positions


def test_on_a_synthetic_book_candidates_are_the_liquidatable_scopes(backend: str) -> None:
    synthetic = synthetic_book(6000, seed=41)
    arrays = synthetic.arrays
    valuation = revalue(arrays, arrays.marks * 0.95, backend=backend)
    found = screen(arrays, valuation=valuation)
    assert np.array_equal(found.accounts, np.flatnonzero(valuation.cross_liquidatable))
    isolated = np.flatnonzero(valuation.isolated_liquidatable)
    assert np.array_equal(found.isolated_positions, isolated)
    assert len(found.accounts) > 0 and len(isolated) > 0
    # the core agrees on a sample of flagged and unflagged accounts
    sample = list(found.accounts[:5]) + [a for a in range(40) if a not in found.accounts][:5]
    shocked = decimal_marks(arrays, valuation.marks)
    for account, book in zip(sample, account_books(synthetic, sample), strict=True):
        moved = dataclasses.replace(book, marks={s: shocked[s] for s in book.marks})
        assert account_report(moved).cross_liquidatable == (account in found.accounts)
