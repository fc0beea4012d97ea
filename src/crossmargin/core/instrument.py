"""Linear (USD-margined) perpetual instruments and their notional bracket tables.

A bracket (Binance "leverage bracket", Bybit "risk limit tier", Hyperliquid "margin tier") covers
the notionals ``floor < N <= cap`` (the first bracket also covers 0; ``cap`` None = unbounded) and
carries a maintenance margin rate ``MMR``, a maintenance amount ``cum`` (the "deduction") and the
highest initial leverage allowed in it.

Maintenance margin of a position of notional ``N`` (USD) in bracket ``k``:
``MM = N * MMR_k - cum_k``. When a table does not give ``cum`` it is derived so that MM is
continuous across bracket boundaries: ``cum_1 = 0``, ``cum_k = floor_k * (MMR_k - MMR_{k-1}) +
cum_{k-1}`` (Binance's published rule). The bracket is read by notional, never by margin.

Invariants (checked by :func:`make_brackets`): floors start at 0 and each floor equals the previous
cap; caps increase; rates lie in [0, 1) and never decrease; max leverage is positive.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import ONE, ZERO, format_decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Bracket:
    """One notional band of a symbol's maintenance table."""

    floor: Decimal
    cap: Decimal | None
    maintenance_margin_rate: Decimal
    maintenance_amount: Decimal
    max_leverage: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A linear perpetual: quantity in base units, prices and margin in the settle asset."""

    symbol: str
    settle_asset: str
    brackets: tuple[Bracket, ...]
    taker_fee_rate: Decimal = Decimal("0.0005")
    maker_fee_rate: Decimal = Decimal("0.0002")
    liquidation_fee_rate: Decimal = Decimal("0.0125")
    caps: tuple[Decimal, ...] = field(init=False)
    """The finite caps, in order (the last bracket's cap is excluded when unbounded)."""

    def __post_init__(self) -> None:
        caps = tuple(b.cap for b in self.brackets if b.cap is not None)
        object.__setattr__(self, "caps", caps)

    def bracket_index(self, notional: Decimal) -> int:
        """Index of the bracket holding ``notional`` (cap inclusive); past the last cap, the last."""
        caps = self.caps
        index = bisect_left(caps, notional)
        return min(index, len(self.brackets) - 1)

    def bracket_for(self, notional: Decimal) -> Bracket:
        return self.brackets[self.bracket_index(notional)]

    @property
    def max_notional(self) -> Decimal | None:
        """The largest notional any bracket admits, or None when the table is unbounded."""
        return self.brackets[-1].cap


@dataclass(frozen=True, slots=True, kw_only=True)
class BracketRow:
    """A bracket as given by a table or a user, before defaults are filled in."""

    floor: Decimal
    cap: Decimal | None
    maintenance_margin_rate: Decimal | None
    maintenance_amount: Decimal | None
    max_leverage: Decimal | None


def derived_maintenance_amounts(
    rates: Sequence[Decimal], floors: Sequence[Decimal]
) -> list[Decimal]:
    """``cum`` per bracket making MM continuous: ``cum_k = floor_k*(MMR_k - MMR_{k-1}) + cum_{k-1}``."""
    amounts: list[Decimal] = []
    for index, (rate, floor) in enumerate(zip(rates, floors, strict=True)):
        if index == 0:
            amounts.append(ZERO)
        else:
            amounts.append(floor * (rate - rates[index - 1]) + amounts[-1])
    return amounts


def make_brackets(rows: Sequence[BracketRow], field: str) -> tuple[Bracket, ...]:
    """Validate a table and fill in derived maintenance amounts; ``field`` names it in errors.

    Every row must carry a maintenance margin rate by now (venue rules that derive a missing rate,
    such as Hyperliquid's, fill it in before calling this).
    """
    if not rows:
        raise InvalidInput(field, "needs at least one bracket")
    rates: list[Decimal] = []
    for index, row in enumerate(rows):
        where = f"{field}[{index}]"
        _check_row_bounds(row, index, rows, where)
        if row.maintenance_margin_rate is None:
            raise InvalidInput(f"{where}.maintenance_margin_rate", "is required")
        rate = row.maintenance_margin_rate
        if not ZERO <= rate < ONE:
            raise InvalidInput(f"{where}.maintenance_margin_rate", "must be at least 0 and below 1")
        if rates and rate < rates[-1]:
            raise InvalidInput(
                f"{where}.maintenance_margin_rate", "must not be below the previous bracket's rate"
            )
        if row.max_leverage is not None and row.max_leverage <= 0:
            raise InvalidInput(f"{where}.max_leverage", "must be positive")
        rates.append(rate)
    derived = derived_maintenance_amounts(rates, [row.floor for row in rows])
    return tuple(
        Bracket(
            floor=row.floor,
            cap=row.cap,
            maintenance_margin_rate=rate,
            maintenance_amount=row.maintenance_amount
            if row.maintenance_amount is not None
            else amount,
            max_leverage=row.max_leverage,
        )
        for row, rate, amount in zip(rows, rates, derived, strict=True)
    )


def _check_row_bounds(row: BracketRow, index: int, rows: Sequence[BracketRow], where: str) -> None:
    expected_floor = ZERO if index == 0 else rows[index - 1].cap
    if expected_floor is None:
        raise InvalidInput(f"{where}.notional_floor", "follows an unbounded bracket")
    if row.floor != expected_floor:
        raise InvalidInput(
            f"{where}.notional_floor",
            f"must equal {format_decimal(expected_floor)} (brackets must be contiguous from 0)",
        )
    if row.cap is not None and row.cap <= row.floor:
        raise InvalidInput(f"{where}.notional_cap", "must be above notional_floor")
    if row.cap is None and index != len(rows) - 1:
        raise InvalidInput(f"{where}.notional_cap", "only the last bracket may be unbounded")
