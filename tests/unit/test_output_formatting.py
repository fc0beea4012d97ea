"""What people read: money in cents with thousands separators, prices to six significant digits,
quantities exact, and a signed amount said in words (paid / received)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crossmargin.sim.backtest_report import (
    money_text,
    price_text,
    quantity_text,
    signed_money_text,
)

D = Decimal


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1305.684", "1,305.68"),
        ("3.5", "3.50"),
        ("0", "0.00"),
        ("-0.001", "0.00"),  # never "-0.00"
        ("-1927.275", "-1,927.28"),  # half-even at the cent
        ("-1927.285", "-1,927.28"),
        ("59101107.5", "59,101,107.50"),
    ],
)
def test_money_is_shown_in_cents_with_separators(value: str, shown: str) -> None:
    assert money_text(D(value)) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2181.23707903", "2,181.24"),
        ("39263.52", "39,263.52"),
        ("40000", "40,000.00"),
        ("123.456789", "123.457"),
        ("1.5", "1.50"),
        ("0.3456789", "0.345679"),
        ("0.00001234567", "0.0000123457"),
    ],
)
def test_prices_are_shown_to_six_significant_digits_and_at_least_cents(
    value: str, shown: str
) -> None:
    assert price_text(D(value)) == shown


def test_quantities_are_exact_with_separators() -> None:
    assert quantity_text(D("0.957888")) == "0.957888"
    assert quantity_text(D("12500.50")) == "12,500.5"


def test_a_signed_amount_is_said_in_words() -> None:
    assert signed_money_text(D("2.25"), "received", "paid") == "paid 2.25"
    assert signed_money_text(D("-8.764"), "received", "paid") == "received 8.76"
    assert signed_money_text(D("0.001"), "received", "paid") == "0.00"
