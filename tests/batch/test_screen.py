"""The float screen flags every scope the Decimal core flags, and little else.

The core flags a scope when it is liquidatable (``MB <= MM``) or, for the engine's margin calls,
when its margin ratio is None or at least 0.8. It rounds each position's MM up to 1e-8 and the
ratio up to 1e-8, so the screen's guard band must cover both quanta plus the float error of the
magnitudes summed: the books below put exact ratios and margin balances inside that band.
"""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossmargin.batch.convert import decimal_marks, from_books, position_floats
from crossmargin.batch.risk import revalue
from crossmargin.batch.screen import LiquidationScreen, screen
from crossmargin.batch.synthetic import account_books, synthetic_book
from crossmargin.core.errors import InvalidInput
from crossmargin.core.margin import maintenance_terms
from crossmargin.core.portfolio import parse_portfolio
from crossmargin.core.position import MarginMode, Position, Side
from crossmargin.core.risk import (
    Book,
    account_report,
    is_liquidatable,
    margin_ratio,
    total_risk,
)
from crossmargin.core.venues import BYBIT_LINEAR, OKX_SWAP, VENUES, VenueRules
from tests.strategies import PROPERTY_SETTINGS, portfolios

THRESHOLD = Decimal("0.8")
SYMBOL_OF = {
    "binance-usdm": "BTCUSDT",
    "bybit-linear": "BTCUSDT",
    "okx-swap": "BTC-USDT-SWAP",
    "hyperliquid": "BTC",
    "dydx": "BTC-USD",
}


def core_flags(book: Book, threshold: Decimal | None) -> tuple[bool, list[int]]:
    """(cross scope flagged, indices of flagged isolated positions), as the engine decides."""

    def flagged(collateral: Decimal, positions: list[Position]) -> bool:
        risk = total_risk(book, positions)
        if risk.notional == 0:
            return False
        if is_liquidatable(collateral, risk):
            return True
        if threshold is None:
            return False
        ratio = margin_ratio(collateral, risk)
        return ratio is None or ratio >= threshold

    cross = flagged(book.wallet_balance, list(book.cross_positions()))
    isolated = [
        index
        for index, position in enumerate(book.positions)
        if position.isolated_margin is not None and flagged(position.isolated_margin, [position])
    ]
    return cross, isolated


def screen_flags(book: Book, threshold: Decimal | None, backend: str) -> tuple[bool, list[int]]:
    arrays = from_books([book])
    found = screen(
        arrays, threshold=None if threshold is None else float(threshold), backend=backend
    )
    return found.accounts.tolist() == [0], found.isolated_positions.tolist()


def engine_flags(book: Book, backend: str) -> bool:
    """Whether the engine's screen flags the book's account on a tick at its mark."""
    live = LiquidationScreen(book.rules, book.instruments, backend=backend)
    symbol = book.positions[0].symbol
    live.marks[symbol] = float(book.marks[symbol])
    rows = [
        ("a", p.symbol, f"leg{i}", *position_floats(p, p.isolated_margin))
        for i, p in enumerate(book.positions)
    ]
    live.load({"a": float(book.wallet_balance)}, rows)
    return "a" in live.tick(symbol, float(book.marks[symbol]), float(THRESHOLD))


def boundary_book(
    rules: VenueRules,
    *,
    isolated: bool,
    notional: Decimal,
    gain: Decimal,
    balance: Any,
    mark: Decimal = Decimal("50000.00000333"),  # MM ends just above a quantum: rounded up ~1e-8
) -> Book:
    """One position of about ``notional`` at ``mark``, ``gain`` of UPNL, and a collateral chosen
    so that the margin balance is ``balance(MM)`` for the position's exact (unrounded) MM."""
    symbol = SYMBOL_OF[rules.name]
    instrument = rules.instrument(symbol)
    assert instrument is not None
    quantity = (notional / mark).quantize(Decimal("0.00001"))
    position = Position(
        symbol=symbol,
        side=Side.LONG,
        quantity=quantity,
        entry_notional=quantity * mark - gain,
        leverage=Decimal(10),
        margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
    )
    exact = maintenance_terms(rules, instrument, position, mark).at(mark)
    collateral = balance(exact) - gain
    if isolated:
        position = dataclasses.replace(position, isolated_margin=collateral)
    return Book(
        rules=rules,
        instruments={symbol: instrument},
        marks={symbol: mark},
        positions=(position,),
        wallet_balance=Decimal(0) if isolated else collateral,
    )


def shapes() -> list[tuple[str, bool, Decimal, Decimal]]:
    """(venue, isolated, notional, UPNL): small margin balances, then a balance that is the
    small difference of a large wallet and a large loss (the float error scales with both)."""
    cases = []
    for name in VENUES:
        for isolated in (False, True):
            cases.append((name, isolated, Decimal(500), Decimal(0)))
            cases.append((name, isolated, Decimal(3000), Decimal(-4_000_000_000)))
    return cases


@pytest.mark.parametrize(("venue", "isolated", "notional", "gain"), shapes())
def test_ratios_just_below_the_threshold_that_the_core_rounds_up_are_flagged(
    venue: str, isolated: bool, notional: Decimal, gain: Decimal, backend: str
) -> None:
    """Exact ratios 0.8 - k x 1e-9: the core rounds MM and the ratio up and reaches 0.8 for the
    first few k; the screen must flag each of those (a relative 1e-9 guard missed k >= 2)."""
    core_hits = 0
    for k in range(-3, 40):
        ratio = THRESHOLD - k * Decimal("1e-9")
        book = boundary_book(
            VENUES[venue],
            isolated=isolated,
            notional=notional,
            gain=gain,
            balance=lambda mm, ratio=ratio: mm / ratio,
        )
        cross, positions = core_flags(book, THRESHOLD)
        if not (cross or positions):
            continue
        core_hits += 1
        assert screen_flags(book, THRESHOLD, backend) == (cross, positions), k
        assert engine_flags(book, backend), k
    assert core_hits >= 6, "the rounding band should hold several flagged books"


@pytest.mark.parametrize(("venue", "isolated", "notional", "gain"), shapes())
def test_balances_just_above_maintenance_that_the_core_rounds_into_liquidation_are_flagged(
    venue: str, isolated: bool, notional: Decimal, gain: Decimal, backend: str
) -> None:
    """MB = MM + j x 1e-9: the core rounds MM up to 1e-8 and finds MB <= MM for small j. With a
    large wallet against a large loss, the float MB sits on a grid of 4.8e-7 and errs up or down
    with where MB falls on it: a few marks moving MM along that grid catch both directions."""
    core_hits = 0
    marks = [Decimal("50000.00000333") + m * Decimal("0.00025") for m in range(8 if gain else 1)]
    for j, mark in itertools.product(range(-3, 15), marks):
        book = boundary_book(
            VENUES[venue],
            isolated=isolated,
            notional=notional,
            gain=gain,
            balance=lambda mm, j=j: mm + j * Decimal("1e-9"),
            mark=mark,
        )
        cross, positions = core_flags(book, None)
        if not (cross or positions):
            continue
        core_hits += 1
        flagged_cross, flagged_positions = screen_flags(book, None, backend)
        assert flagged_cross or not cross, j
        assert set(positions) <= set(flagged_positions), j
    assert core_hits >= 8


def test_a_notional_a_hair_above_a_cap_of_a_discontinuous_table_is_flagged(backend: str) -> None:
    """OKX's MM jumps at a cap. 10000.0000000000005 contracts at 10 is just above the 100,000
    cap, but the float quantity rounds to 10000.0 and the float notional sits on the cap: the
    float MM is the lower bracket's, 200 USD short of the core's."""
    symbol = "AVAX-USDT-SWAP"
    instrument = OKX_SWAP.instrument(symbol)
    assert instrument is not None
    mark = Decimal(10)
    quantity = Decimal("10000.0000000000005")
    position = Position(
        symbol=symbol,
        side=Side.LONG,
        quantity=quantity,
        entry_notional=quantity * mark,
        leverage=Decimal(5),
        margin_mode=MarginMode.CROSS,
    )
    terms = maintenance_terms(OKX_SWAP, instrument, position, mark)
    assert terms.bracket_index == 1
    # the core's ratio is 0.9; in the lower bracket it would be about 0.73
    wallet = terms.at(mark) / Decimal("0.9")
    book = Book(
        rules=OKX_SWAP,
        instruments={symbol: instrument},
        marks={symbol: mark},
        positions=(position,),
        wallet_balance=wallet,
    )
    assert core_flags(book, THRESHOLD) == (True, [])
    assert revalue(from_books([book]), backend=backend).bracket.tolist() == [0]
    assert screen_flags(book, THRESHOLD, backend) == (True, [])
    assert engine_flags(book, backend)


@PROPERTY_SETTINGS
@given(
    portfolio=portfolios(stressed=True),
    backend=st.sampled_from(["numba", "numpy"]),
    threshold=st.sampled_from([None, THRESHOLD]),
)
def test_the_screen_never_misses_a_scope_the_core_flags(
    portfolio: dict[str, Any], backend: str, threshold: Decimal | None
) -> None:
    book = parse_portfolio(portfolio)
    cross, positions = core_flags(book, threshold)
    flagged_cross, flagged_positions = screen_flags(book, threshold, backend)
    assert flagged_cross or not cross
    assert set(positions) <= set(flagged_positions)


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


def test_with_the_margin_call_threshold_the_screen_adds_the_scopes_at_or_past_it(
    backend: str,
) -> None:
    arrays = synthetic_book(6000, seed=42).arrays
    valuation = revalue(arrays, arrays.marks * 0.97, backend=backend)
    liquidation = screen(arrays, valuation=valuation)
    calls = screen(arrays, valuation=valuation, threshold=0.8)
    assert set(liquidation.accounts.tolist()) < set(calls.accounts.tolist())
    ratio = valuation.margin_ratio
    at_risk = (valuation.cross_positions > 0) & (np.isnan(ratio) | (ratio >= 0.8))
    assert set(np.flatnonzero(at_risk).tolist()) <= set(calls.accounts.tolist())


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5, float("nan")])
def test_a_threshold_outside_zero_to_one_is_refused(threshold: float) -> None:
    arrays = synthetic_book(30, seed=1).arrays
    with pytest.raises(InvalidInput, match="threshold"):
        screen(arrays, threshold=threshold)


def test_the_engine_screen_values_bybit_isolated_maintenance_at_entry(backend: str) -> None:
    """Bybit values an isolated position's MM at its entry notional: with the mark below entry,
    MM at the mark would be lower, and a scope at maintenance would look safe."""
    book = boundary_book(
        BYBIT_LINEAR,
        isolated=True,
        notional=Decimal(500),
        gain=Decimal(-50),
        balance=lambda mm: mm,
    )
    assert core_flags(book, THRESHOLD) == (False, [0])
    assert screen_flags(book, None, backend) == (False, [0])
    assert engine_flags(book, backend)
