"""Symbol filters (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL) and their checks.

crossmargin's bundled instrument tables hold brackets and fees, not order filters, so the
facade carries Binance's published filters for the symbols it knows (the USDⓈ-M exchangeInfo
of BTCUSDT and ETHUSDT as recorded in ccxt's static test data, file
``ts/src/test/static/markets/binance.json``). Every other symbol gets filters derived from the
engine's own limits: tick and step = the engine's quantum (1e-8), quantities up to its command
maximum (10^12), and the 5 USDT minimum notional that every perpetual in that record carries.

Checks, in Binance's order and codes: quantity > 0 (-4003), on the step (-1111), at least the
minimum (-4004), at most the maximum (-4005, the market maximum for market orders); a limit
price on the tick (-4014) and within [minPrice, maxPrice] (-4013 / -4002 in the venue's text
family, here -1130 naming ``price``); notional at least the minimum unless reduce-only (-4164).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.core.numbers import MAX_COMMAND_AMOUNT, MONEY_QUANTUM
from crossmargin.service.binance.wire import (
    BAD_PARAMETER,
    BAD_PRECISION,
    MIN_NOTIONAL,
    PRICE_OFF_TICK,
    QUANTITY_ABOVE_MAX,
    QUANTITY_BELOW_MIN,
    QUANTITY_NOT_POSITIVE,
    BinanceError,
    number,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolFilters:
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal

    @property
    def price_precision(self) -> int:
        return _places(self.tick_size)

    @property
    def quantity_precision(self) -> int:
        return _places(self.step_size)

    def exchange_info(self) -> list[dict[str, Any]]:
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": number(self.min_price),
                "maxPrice": number(self.max_price),
                "tickSize": number(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": number(self.min_qty),
                "maxQty": number(self.max_qty),
                "stepSize": number(self.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": number(self.min_qty),
                "maxQty": number(self.market_max_qty),
                "stepSize": number(self.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": number(self.min_notional)},
        ]

    def check_order(
        self,
        quantity: Decimal,
        price: Decimal | None,
        reference: Decimal | None,
        *,
        market: bool,
        reduce_only: bool,
    ) -> None:
        """Refuse an order the filters do not admit; ``reference`` is the mark (market)."""
        if quantity <= 0:
            raise BinanceError(QUANTITY_NOT_POSITIVE)
        if quantity % self.step_size != 0:
            raise BinanceError(BAD_PRECISION)
        if quantity < self.min_qty:
            raise BinanceError(QUANTITY_BELOW_MIN)
        if quantity > (self.market_max_qty if market else self.max_qty):
            raise BinanceError(QUANTITY_ABOVE_MAX)
        if price is not None:
            if price <= 0 or not self.min_price <= price <= self.max_price:
                raise BinanceError(
                    BAD_PARAMETER,
                    f"Data sent for parameter 'price' is not valid: {number(price)} is outside "
                    f"[{number(self.min_price)}, {number(self.max_price)}].",
                )
            if price % self.tick_size != 0:
                raise BinanceError(PRICE_OFF_TICK)
        basis = price if price is not None else reference
        if not reduce_only and basis is not None and quantity * basis < self.min_notional:
            raise BinanceError(
                MIN_NOTIONAL,
                f"Order's notional must be no smaller than {number(self.min_notional)} "
                "(unless you choose reduce only).",
            )


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


PUBLISHED: dict[str, SymbolFilters] = {
    "BTCUSDT": SymbolFilters(
        tick_size=Decimal("0.10"),
        min_price=Decimal("556.80"),
        max_price=Decimal("4529764"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("1000"),
        market_max_qty=Decimal("120"),
        min_notional=Decimal("5"),
    ),
    "ETHUSDT": SymbolFilters(
        tick_size=Decimal("0.01"),
        min_price=Decimal("39.86"),
        max_price=Decimal("306177"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("10000"),
        market_max_qty=Decimal("2000"),
        min_notional=Decimal("5"),
    ),
}

DERIVED = SymbolFilters(
    tick_size=MONEY_QUANTUM,
    min_price=MONEY_QUANTUM,
    max_price=MAX_COMMAND_AMOUNT,
    step_size=MONEY_QUANTUM,
    min_qty=MONEY_QUANTUM,
    max_qty=MAX_COMMAND_AMOUNT,
    market_max_qty=MAX_COMMAND_AMOUNT,
    min_notional=Decimal("5"),
)


def filters_for(symbol: str) -> SymbolFilters:
    return PUBLISHED.get(symbol, DERIVED)
