"""Price shocks: move some marks by a percentage (or to a price) and value the book again.

A shock ``ETHUSDT=-20%`` multiplies the current mark (the entry price where no mark is given) by
0.8; ``BTCUSDT=25000`` sets the mark to 25,000. A shock that leaves a non-positive price is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import ONE, format_decimal, parse_decimal
from crossmargin.core.risk import Book


@dataclass(frozen=True, slots=True, kw_only=True)
class Shock:
    symbol: str
    relative: Decimal | None = None  # -0.2 for -20%
    absolute: Decimal | None = None

    def apply(self, mark: Decimal) -> Decimal:
        if self.absolute is not None:
            return self.absolute
        relative = self.relative if self.relative is not None else Decimal(0)
        return mark * (ONE + relative)

    def describe(self) -> str:
        if self.absolute is not None:
            return f"{self.symbol}={format_decimal(self.absolute)}"
        relative = self.relative if self.relative is not None else Decimal(0)
        sign = "+" if relative >= 0 else ""
        return f"{self.symbol}={sign}{format_decimal(relative * 100)}%"


def parse_shock(text: str, field: str = "--shock") -> Shock:
    """``SYMBOL=-20%`` (relative) or ``SYMBOL=25000`` (absolute price)."""
    symbol, sep, amount = text.partition("=")
    symbol, amount = symbol.strip(), amount.strip()
    if not sep or not symbol or not amount:
        raise InvalidInput(field, f"expected SYMBOL=+5% or SYMBOL=PRICE, got {text!r}")
    if amount.endswith("%"):
        percent = parse_decimal(amount[:-1], f"{field} {symbol}")
        if percent <= -100:
            raise InvalidInput(f"{field} {symbol}", "a shock of -100% or less leaves no price")
        return Shock(symbol=symbol, relative=percent / 100)
    price = parse_decimal(amount, f"{field} {symbol}")
    if price <= 0:
        raise InvalidInput(f"{field} {symbol}", "a price must be positive")
    return Shock(symbol=symbol, absolute=price)


def apply_shocks(book: Book, shocks: Sequence[Shock]) -> Book:
    """A copy of ``book`` with the shocked marks; symbols the book does not know are refused."""
    marks: dict[str, Decimal] = dict(book.marks)
    known: Mapping[str, object] = book.instruments
    for shock in shocks:
        if shock.symbol not in known and shock.symbol not in marks:
            raise InvalidInput(
                f"--shock {shock.symbol}", "no position or mark price in this portfolio"
            )
        current = marks.get(shock.symbol)
        if current is None:
            raise InvalidInput(f"--shock {shock.symbol}", "no mark price to shock")
        marks[shock.symbol] = shock.apply(current)
    return dataclasses.replace(book, marks=marks)
