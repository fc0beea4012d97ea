"""The account report values each cross symbol's liquidation price once: the same Decimal as the
per-position definition (everything else held at its mark), at a cost linear in the positions
(it was quadratic: every position re-valued every other one)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core import risk
from crossmargin.core.liquidation import Leg, liquidation_price
from crossmargin.core.margin import maintenance_terms
from crossmargin.core.risk import Book, account_report
from crossmargin.core.venues import venue
from tests.strategies import portfolios


def reference_price(book: Book, position: Any) -> Decimal | None:
    """The definition, position by position (the former implementation)."""
    mark = book.mark(position.symbol)
    if position.is_isolated:
        legs = [Leg(position=position, instrument=book.instruments[position.symbol])]
        margin = position.isolated_margin or Decimal(0)
        return liquidation_price(book.rules, legs, margin, mark)
    moving = [p for p in book.cross_positions() if p.symbol == position.symbol]
    fixed = book.wallet_balance
    for other in book.cross_positions():
        if other.symbol == position.symbol:
            continue
        other_mark = book.mark(other.symbol)
        terms = maintenance_terms(book.rules, book.instruments[other.symbol], other, other_mark)
        fixed += other.unrealized_pnl(other_mark) - terms.at(other_mark)
    legs = [Leg(position=p, instrument=book.instruments[p.symbol]) for p in moving]
    return liquidation_price(book.rules, legs, fixed, mark)


@settings(max_examples=150, deadline=None)
@given(portfolio=portfolios(max_symbols=6))
def test_report_liquidation_prices_equal_the_per_position_definition(
    portfolio: dict[str, Any],
) -> None:
    book = parse_portfolio(json.loads(json.dumps(portfolio), parse_float=Decimal))
    report = account_report(book)
    for line in report.positions:
        assert line.liquidation_price == reference_price(book, line.position)
        assert risk.position_liquidation_price(book, line.position) == line.liquidation_price


def wide_cross_book(count: int) -> Book:
    rules = venue("binance-usdm")
    symbols = [s for s in rules.symbols() if rules.instrument(s).settle_asset == "USDT"]
    positions = [
        {
            "symbol": symbol,
            "side": "long" if index % 2 else "short",
            "quantity": "1",
            "entry_price": "10",
            "leverage": "2",
            "margin_mode": "cross",
        }
        for index, symbol in enumerate(symbols[:count])
    ]
    return parse_portfolio({"wallet_balance": "1000", "positions": positions})


def test_a_report_values_each_position_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = risk.maintenance_terms

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(risk, "maintenance_terms", counted)
    count = 60
    account_report(wide_cross_book(count))
    # one bracket lookup per position for its report line and one for the fixed part of the
    # other symbols' prices; the per-position definition made count * (count - 1) more
    assert calls <= 3 * count
