"""Positions: side, size, entry, leverage and margin mode.

A position keeps its *entry notional* ``sum(qty_i * price_i)`` of the fills that opened it (as
exchange-core's ``openPriceSum``), never a running average, so repeated fills do not drift; the
average entry price is derived for display. Quantities are base units, always positive; the side
carries the sign (``s = +1`` long, ``-1`` short).

Formulas (linear contracts, USD):
  notional(P)        = q * P
  unrealized_pnl(P)  = s * (q * P - entry_notional)
  bankruptcy price   : where the position's own margin is exhausted (see core.liquidation)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum


class Side(Enum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG


class MarginMode(Enum):
    CROSS = "cross"
    ISOLATED = "isolated"


class PositionMode(Enum):
    ONE_WAY = "one-way"
    HEDGE = "hedge"


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """An open position. ``isolated_margin`` is None for cross positions."""

    symbol: str
    side: Side
    quantity: Decimal
    entry_notional: Decimal
    leverage: Decimal
    margin_mode: MarginMode
    isolated_margin: Decimal | None = None

    @property
    def entry_price(self) -> Decimal:
        return self.entry_notional / self.quantity

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity * self.side.sign

    @property
    def is_isolated(self) -> bool:
        return self.margin_mode is MarginMode.ISOLATED

    def notional(self, price: Decimal) -> Decimal:
        return self.quantity * price

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        return self.side.sign * (self.quantity * price - self.entry_notional)
