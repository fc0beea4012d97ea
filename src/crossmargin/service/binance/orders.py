"""Signed order endpoints: new, query, cancel, open orders, all orders, trades, forced orders.

An order is the engine's ``place_order`` for the key's account: MARKET or LIMIT (GTC), with
``reduceOnly`` (one-way mode) or ``positionSide`` LONG / SHORT (hedge mode). The simulated
venue fills it exactly as through ``/v1``: a market order at once at the mark, a limit that
crosses the mark at once at the mark, any other limit when a mark reaches it. The answer is the
order as it stands after the engine decided (``newOrderRespType`` RESULT, whatever was asked):
FILLED when it filled at once.

``newClientOrderId`` becomes the engine's order id, so it must be an engine id (1-36 characters
of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit), else -4015; without one the server
makes one up. ``orderId`` is derived from the log (see ``index``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from crossmargin.app.queries import ReadModel
from crossmargin.core.ids import is_id
from crossmargin.core.position import PositionMode
from crossmargin.service.binance import render
from crossmargin.service.binance.auth import Caller
from crossmargin.service.binance.facade import BinanceFacade
from crossmargin.service.binance.filters import filters_for
from crossmargin.service.binance.index import ActivityIndex, OrderRecord
from crossmargin.service.binance.market import need_symbol, symbol_of
from crossmargin.service.binance.signed import authenticated, held_account, run, symbol_only
from crossmargin.service.binance.wire import (
    CLIENT_ORDER_ID,
    INVALID_ORDER_TYPE,
    INVALID_SIDE,
    INVALID_TIME_IN_FORCE,
    MANDATORY_PARAMETER,
    NEW_ORDER_REJECTED,
    NO_SUCH_ORDER,
    NOT_REQUIRED_PARAMETER,
    POSITION_SIDE_MISMATCH,
    UNKNOWN_ORDER_SENT,
    BinanceError,
    BinanceRoute,
    Params,
    rejection,
    window,
)

router = APIRouter(route_class=BinanceRoute, include_in_schema=False)
MAX_CLIENT_ORDER_ID = 36


def _not_required(name: str) -> BinanceError:
    return BinanceError(NOT_REQUIRED_PARAMETER, f"Parameter '{name}' sent when not required.")


class _Timed(Protocol):
    @property
    def time(self) -> int: ...


T = TypeVar("T", bound=_Timed)


def _page(
    records: Sequence[T], first: int | None, start: int | None, end: int | None, limit: int
) -> list[T]:
    """Orders or trades, ``records`` already from the id ``first`` on: the first ``limit`` of
    them when ``first`` is given without a start time, else Binance's paging by time."""
    if first is not None and start is None:
        return list(records[:limit])
    return window(records, lambda r: r.time, start, end, limit)


# -- new order -------------------------------------------------------------------------------


def _order_command(params: Params, symbol: str, hedge: bool) -> dict[str, Any]:
    side = params.need("side")
    if side not in ("BUY", "SELL"):
        raise BinanceError(INVALID_SIDE)
    kind = params.need("type")
    if kind not in ("MARKET", "LIMIT"):
        raise BinanceError(
            INVALID_ORDER_TYPE,
            f"Invalid orderType: {kind!a} (crossmargin supports MARKET and LIMIT).",
        )
    quantity = params.decimal("quantity", required=True)
    price = params.decimal("price")
    force = params.text("timeInForce")
    if kind == "LIMIT":  # Binance: a LIMIT order names its price and its timeInForce
        params.need("price")
        params.need("timeInForce")
    if kind == "MARKET" and price is not None:
        raise _not_required("price")
    if force is not None and force != "GTC":
        raise BinanceError(
            INVALID_TIME_IN_FORCE, f"Invalid timeInForce: {force!a} (crossmargin supports GTC)."
        )
    params.choice("newOrderRespType", ("ACK", "RESULT"), default="RESULT")
    position = params.text("positionSide") or "BOTH"
    if position not in ("BOTH", "LONG", "SHORT") or (position == "BOTH") == hedge:
        raise BinanceError(POSITION_SIDE_MISMATCH)
    reduce_only = params.text("reduceOnly")
    if hedge and reduce_only is not None:
        raise _not_required("reduceOnly")
    client = params.text("newClientOrderId") or f"cm{secrets.token_hex(11)}"
    if not is_id(client) or len(client) > MAX_CLIENT_ORDER_ID:
        raise BinanceError(CLIENT_ORDER_ID)
    command: dict[str, Any] = {
        "type": "place_order",
        "order_id": client,
        "symbol": symbol,
        "side": side.lower(),
        "order_type": kind.lower(),
        "quantity": str(quantity),
    }
    if price is not None:
        command["price"] = str(price)
    if reduce_only is not None:
        command["reduce_only"] = params.boolean("reduceOnly")
    if hedge:
        command["position_side"] = position.lower()
    return command


@router.post("/fapi/v1/order")
async def new_order(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    params = caller.params
    symbol = need_symbol(params, facade.context.symbols)

    def situation(model: ReadModel, _: ActivityIndex) -> tuple[bool, Any]:
        account = held_account(model, caller.account)
        return account.position_mode is PositionMode.HEDGE, model.marks.get(symbol)

    hedge, mark = await facade.read(situation)
    command = _order_command(params, symbol, hedge)
    price = Decimal(command["price"]) if "price" in command else None
    filters_for(symbol).check_order(
        Decimal(command["quantity"]),
        price,
        mark,
        market=command["order_type"] == "market",
        reduce_only=bool(command.get("reduce_only", False)),
    )
    params.finish()
    key, result = await facade.submit(caller.account, command)
    if result.get("status") == "rejected":
        raise rejection(result)

    def answer(_: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        order_id = index.by_command.get(key)
        record = index.activity(caller.account).orders.get(order_id or -1)
        if record is None:
            raise BinanceError(NEW_ORDER_REJECTED, "the order was accepted but is not indexed")
        return render.order_body(record)

    return JSONResponse(await facade.read(answer))


# -- one order -------------------------------------------------------------------------------


def _find(index: ActivityIndex, account: str, symbol: str, params: Params) -> OrderRecord:
    order_id = params.integer("orderId")
    client = params.text("origClientOrderId")
    if order_id is None and client is None:
        raise BinanceError(
            MANDATORY_PARAMETER,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    activity = index.activity(account)
    record = activity.orders.get(order_id) if order_id is not None else activity.latest(str(client))
    if (
        record is None
        or record.symbol != symbol
        or (client is not None and record.client_order_id != client)
    ):
        raise BinanceError(NO_SUCH_ORDER)
    return record


async def _one(request: Request) -> tuple[BinanceFacade, Caller, str]:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    caller.params.integer("orderId")
    caller.params.text("origClientOrderId")
    caller.params.finish()
    return facade, caller, symbol


@router.get("/fapi/v1/order")
async def query_order(request: Request) -> JSONResponse:
    facade, caller, symbol = await _one(request)

    def build(_: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        return render.order_body(_find(index, caller.account, symbol, caller.params))

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/openOrder")
async def query_open_order(request: Request) -> JSONResponse:
    facade, caller, symbol = await _one(request)

    def build(_: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        record = _find(index, caller.account, symbol, caller.params)
        if not record.is_open:
            raise BinanceError(NO_SUCH_ORDER)
        return render.order_body(record)

    return JSONResponse(await facade.read(build))


async def _cancel(facade: BinanceFacade, caller: Caller, record: OrderRecord) -> None:
    if not record.is_open:
        raise BinanceError(UNKNOWN_ORDER_SENT)
    await run(facade, caller, {"type": "cancel_order", "order_id": record.client_order_id})


@router.delete("/fapi/v1/order")
async def cancel_order(request: Request) -> JSONResponse:
    facade, caller, symbol = await _one(request)
    record = await facade.read(lambda _, index: _find(index, caller.account, symbol, caller.params))
    await _cancel(facade, caller, record)
    body = await facade.read(
        lambda _, index: render.order_body(index.activity(caller.account).orders[record.order_id])
    )
    return JSONResponse(body)


@router.delete("/fapi/v1/allOpenOrders")
async def cancel_all(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    caller.params.finish()
    records = await facade.read(
        lambda _, index: [
            r
            for r in index.activity(caller.account).orders.values()
            if r.is_open and r.symbol == symbol
        ]
    )
    for record in records:
        try:
            await _cancel(facade, caller, record)
        except BinanceError as error:
            if error.code != UNKNOWN_ORDER_SENT:  # filled meanwhile: nothing left to cancel
                raise
    return JSONResponse({"code": 200, "msg": "The operation of cancel all open order is done."})


# -- lists -----------------------------------------------------------------------------------


@router.get("/fapi/v1/openOrders")
async def open_orders(request: Request) -> JSONResponse:
    facade, caller, symbol = await symbol_only(request)

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        return [
            render.order_body(r)
            for r in index.activity(caller.account).orders.values()
            if r.is_open and (symbol is None or r.symbol == symbol)
        ]

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/allOrders")
async def all_orders(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    params = caller.params
    symbol = need_symbol(params, facade.context.symbols)
    first = params.integer("orderId")
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, 1000)
    params.finish()

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        records = [
            r
            for r in index.activity(caller.account).orders.values()
            if r.symbol == symbol and (first is None or r.order_id >= first)
        ]
        return [render.order_body(r) for r in _page(records, first, start, end, limit)]

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/userTrades")
async def user_trades(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    params = caller.params
    symbol = need_symbol(params, facade.context.symbols)
    order_id, first = params.integer("orderId"), params.integer("fromId")
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(500, 1000)
    params.finish()

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        trades = [
            t
            for t in index.activity(caller.account).trades
            if t.symbol == symbol
            and (order_id is None or t.order_id == order_id)
            and (first is None or t.trade_id >= first)
        ]
        return [render.trade_body(t) for t in _page(trades, first, start, end, limit)]

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/forceOrders")
async def force_orders(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    params = caller.params
    symbol = symbol_of(params, facade.context.symbols)
    kind = params.choice("autoCloseType", ("LIQUIDATION", "ADL"), default="ANY")
    start, end = params.integer("startTime"), params.integer("endTime")
    limit = params.limit(50, 100)
    params.finish()
    prefixes = {"LIQUIDATION": ("autoclose-",), "ADL": ("adl_autoclose-",)}.get(
        kind, ("autoclose-", "adl_autoclose-")
    )

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        records = [
            r
            for r in index.activity(caller.account).orders.values()
            if r.client_order_id.startswith(prefixes) and (symbol is None or r.symbol == symbol)
        ]
        return [render.order_body(r) for r in window(records, lambda r: r.time, start, end, limit)]

    return JSONResponse(await facade.read(build))
