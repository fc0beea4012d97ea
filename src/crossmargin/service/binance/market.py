"""Market data (no key needed): ping, time, exchangeInfo, mark price, klines, tickers, depth.

Prices are the engine's marks: the last price, the index price and the mark price are one and
the same number (the simulated venue fills at the mark). The book of ``depth`` is the one the
simulated venue fills against: levels one tick apart outward from the mark (the best bid and
ask are the mark when it sits on the tick), each showing the symbol's maximum order quantity
(the venue fills any size at the mark; the quantities are nominal). A client that starts on the
spot API (``/api/v3``) gets ping, time and an exchangeInfo without symbols.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from crossmargin.app.queries import ReadModel
from crossmargin.core.numbers import ZERO
from crossmargin.service.binance.auth import public
from crossmargin.service.binance.facade import BinanceFacade, facade_of
from crossmargin.service.binance.filters import filters_for
from crossmargin.service.binance.index import ActivityIndex
from crossmargin.service.binance.tape import INTERVALS_MS
from crossmargin.service.binance.wire import (
    BAD_PARAMETER,
    INVALID_INTERVAL,
    INVALID_SYMBOL,
    BinanceError,
    BinanceRoute,
    Params,
    number,
    window,
)

router = APIRouter(route_class=BinanceRoute, include_in_schema=False)
R = TypeVar("R")
PERPETUAL_DELIVERY_MS = 4133404800000  # Binance's delivery date for perpetuals (2100-12-25)
ONBOARD_MS = 1569398400000
FUNDING_PERIOD_MS = 8 * 3_600_000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]


def symbol_of(params: Params, engine_symbols: tuple[str, ...]) -> str | None:
    """The optional ``symbol``, if the engine trades it."""
    symbol = params.text("symbol")
    if symbol is not None and symbol not in engine_symbols:
        raise BinanceError(INVALID_SYMBOL)
    return symbol


def need_symbol(params: Params, engine_symbols: tuple[str, ...]) -> str:
    symbol = params.need("symbol")
    if symbol not in engine_symbols:
        raise BinanceError(INVALID_SYMBOL)
    return symbol


def one_or_all(rows: list[R], symbol: str | None) -> R | list[R]:
    """The answer to an optional ``symbol``: that symbol's row when one was asked for, else all."""
    return rows[0] if symbol is not None else rows


async def _public(request: Request) -> tuple[BinanceFacade, Params]:
    params = await public(request)
    return facade_of(request), params


async def _symbol_only(request: Request) -> tuple[BinanceFacade, str | None]:
    """A request whose one parameter is the optional ``symbol``."""
    facade, params = await _public(request)
    symbol = symbol_of(params, facade.context.symbols)
    params.finish()
    return facade, symbol


def symbol_info(model: ReadModel, symbol: str) -> dict[str, Any]:
    instrument = model.instruments[symbol]
    quote = instrument.settle_asset
    base = symbol.removesuffix(quote) if symbol.endswith(quote) else symbol
    filters = filters_for(symbol)
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": ONBOARD_MS,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": filters.price_precision,
        "quantityPrecision": filters.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": number(instrument.liquidation_fee_rate),
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": filters.exchange_info(),
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC"],
    }


@router.get("/fapi/v1/ping")
@router.get("/api/v3/ping")
async def ping(request: Request) -> JSONResponse:
    (await public(request)).finish()
    return JSONResponse({})


@router.get("/fapi/v1/time")
@router.get("/api/v3/time")
async def server_time(request: Request) -> JSONResponse:
    (await public(request)).finish()
    return JSONResponse({"serverTime": facade_of(request).clock()})


@router.get("/api/v3/exchangeInfo")
async def spot_exchange_info(request: Request) -> JSONResponse:
    facade, params = await _public(request)
    for name in ("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"):
        params.text(name)
    params.finish()
    return JSONResponse(
        {
            "timezone": "UTC",
            "serverTime": facade.clock(),
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [],  # crossmargin trades perpetuals only
        }
    )


@router.get("/fapi/v1/exchangeInfo")
async def exchange_info(request: Request) -> JSONResponse:
    (await public(request)).finish()
    facade = facade_of(request)

    def build(model: ReadModel, _: ActivityIndex) -> dict[str, Any]:
        symbols = [symbol_info(model, s) for s in sorted(model.instruments)]
        settle = sorted({s["marginAsset"] for s in symbols})
        return {
            "timezone": "UTC",
            "serverTime": facade.clock(),
            "futuresType": "U_MARGINED",
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "assets": [
                {"asset": a, "marginAvailable": True, "autoAssetExchange": "0"} for a in settle
            ],
            "symbols": symbols,
        }

    return JSONResponse(await facade.read(build))


def _next_funding(now: int) -> int:
    return (now // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS


@router.get("/fapi/v1/premiumIndex")
async def premium_index(request: Request) -> JSONResponse:
    facade, symbol = await _symbol_only(request)

    def build(model: ReadModel, index: ActivityIndex) -> Any:
        now = facade.clock()
        rows = []
        for name in sorted(model.instruments):
            if symbol is not None and name != symbol:
                continue
            mark = model.marks.get(name, ZERO)
            funding = index.funding.get(name)
            rows.append(
                {
                    "symbol": name,
                    "markPrice": number(mark),
                    "indexPrice": number(mark),
                    "estimatedSettlePrice": number(mark),
                    "lastFundingRate": number(funding[-1].rate) if funding else "0",
                    "interestRate": "0",
                    "nextFundingTime": _next_funding(now),
                    "time": now,
                }
            )
        return one_or_all(rows, symbol)

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/fundingRate")
async def funding_rate_history(request: Request) -> JSONResponse:
    facade, params = await _public(request)
    symbol = symbol_of(params, facade.context.symbols)
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(100, 1000)
    params.finish()

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        rows = [
            {
                "symbol": name,
                "fundingRate": number(record.rate),
                "fundingTime": record.time,
                "markPrice": number(record.mark),
            }
            for name, records in sorted(index.funding.items())
            if symbol is None or name == symbol
            for record in records
        ]
        rows.sort(key=lambda row: (row["fundingTime"], row["symbol"]))
        return window(rows, lambda row: int(row["fundingTime"]), start, end, limit)

    return JSONResponse(await facade.read(build))


async def _klines(request: Request, *, with_volume: bool) -> JSONResponse:
    facade, params = await _public(request)
    symbol = need_symbol(params, facade.context.symbols)
    interval = INTERVALS_MS.get(params.need("interval"))
    if interval is None:
        raise BinanceError(INVALID_INTERVAL)
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, 1500)
    params.finish()

    def build(_: ReadModel, index: ActivityIndex) -> list[list[Any]]:
        return index.tape.klines(
            symbol,
            interval,
            start=start,
            end=end,
            limit=limit,
            now=facade.clock(),
            with_volume=with_volume,
        )

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/klines")
async def klines(request: Request) -> JSONResponse:
    return await _klines(request, with_volume=True)


@router.get("/fapi/v1/markPriceKlines")
@router.get("/fapi/v1/indexPriceKlines")
async def mark_klines(request: Request) -> JSONResponse:
    return await _klines(request, with_volume=False)


@router.get("/fapi/v1/ticker/24hr")
async def ticker_day(request: Request) -> JSONResponse:
    facade, symbol = await _symbol_only(request)

    def build(model: ReadModel, index: ActivityIndex) -> Any:
        now = facade.clock()
        rows = [
            row
            for name in sorted(model.instruments)
            if symbol is None or name == symbol
            for row in [index.tape.day(name, now)]
            if row is not None
        ]
        if symbol is not None and not rows:
            raise BinanceError(INVALID_SYMBOL, f"No mark price for {symbol} yet.")
        return one_or_all(rows, symbol)

    return JSONResponse(await facade.read(build))


def _prices(
    model: ReadModel, index: ActivityIndex, symbol: str | None
) -> list[tuple[str, Decimal, int]]:
    found = []
    for name in sorted(model.instruments):
        if symbol is not None and name != symbol:
            continue
        last = index.tape.last(name)
        if last is not None:
            found.append((name, last[1], last[0]))
    if symbol is not None and not found:
        raise BinanceError(INVALID_SYMBOL, f"No mark price for {symbol} yet.")
    return found


@router.get("/fapi/v1/ticker/price")
@router.get("/fapi/v2/ticker/price")
async def ticker_price(request: Request) -> JSONResponse:
    facade, symbol = await _symbol_only(request)

    def build(model: ReadModel, index: ActivityIndex) -> Any:
        rows = [
            {"symbol": name, "price": number(price), "time": ms}
            for name, price, ms in _prices(model, index, symbol)
        ]
        return one_or_all(rows, symbol)

    return JSONResponse(await facade.read(build))


def _top(symbol: str, mark: Decimal) -> tuple[Decimal, Decimal]:
    tick = filters_for(symbol).tick_size
    bid = (mark / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    ask = (mark / tick).to_integral_value(rounding=ROUND_CEILING) * tick
    return bid, ask


@router.get("/fapi/v1/ticker/bookTicker")
async def book_ticker(request: Request) -> JSONResponse:
    facade, symbol = await _symbol_only(request)

    def build(model: ReadModel, index: ActivityIndex) -> Any:
        rows = []
        for name, mark, ms in _prices(model, index, symbol):
            bid, ask = _top(name, mark)
            size = number(filters_for(name).max_qty)
            rows.append(
                {
                    "symbol": name,
                    "bidPrice": number(bid),
                    "bidQty": size,
                    "askPrice": number(ask),
                    "askQty": size,
                    "time": ms,
                    "lastUpdateId": index.last_seq,
                }
            )
        return one_or_all(rows, symbol)

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/depth")
async def depth(request: Request) -> JSONResponse:
    facade, params = await _public(request)
    symbol = need_symbol(params, facade.context.symbols)
    limit = params.integer("limit") or 500
    if limit not in DEPTH_LIMITS:
        raise BinanceError(
            BAD_PARAMETER,
            f"Data sent for parameter 'limit' is not valid: one of {DEPTH_LIMITS}.",
        )
    params.finish()

    def build(model: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        ((_, mark, ms),) = _prices(model, index, symbol)
        filters = filters_for(symbol)
        bid, ask = _top(symbol, mark)
        size = number(filters.max_qty)
        tick = filters.tick_size
        bids = [[number(bid - i * tick), size] for i in range(limit) if bid - i * tick > 0]
        asks = [[number(ask + i * tick), size] for i in range(limit)]
        return {"lastUpdateId": index.last_seq, "E": ms, "T": ms, "bids": bids, "asks": asks}

    return JSONResponse(await facade.read(build))
