"""Signed account endpoints: account, balance, positionRisk, brackets, leverage, margin type,
isolated margin, position mode, multi-assets mode, commission rates, symbol config, income.

Settings are the engine's commands (``set_leverage``, ``set_margin_mode``,
``add_isolated_margin`` / ``remove_isolated_margin``, ``set_position_mode``) run for the key's
account; a refusal is the engine's, translated to Binance's code (``wire.REASON_CODES``).
Multi-assets mode does not exist in crossmargin: it reads false, as freqtrade requires.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from crossmargin.app.queries import ReadModel
from crossmargin.core.numbers import MAX_COMMAND_AMOUNT
from crossmargin.core.position import PositionMode
from crossmargin.service.binance import render
from crossmargin.service.binance.index import ActivityIndex
from crossmargin.service.binance.market import need_symbol, one_or_all, symbol_of
from crossmargin.service.binance.signed import authenticated, held_account, run, symbol_only
from crossmargin.service.binance.wire import (
    AMOUNT_NOT_POSITIVE,
    BAD_PARAMETER,
    INVALID_LEVERAGE,
    INVALID_POSITION_SIDE,
    LEVERAGE_INSUFFICIENT_MARGIN,
    BinanceError,
    BinanceRoute,
    number,
)

router = APIRouter(route_class=BinanceRoute, include_in_schema=False)
SUCCESS = {"code": 200, "msg": "success"}
INCOME_TYPES = (
    "TRANSFER",
    "REALIZED_PNL",
    "FUNDING_FEE",
    "COMMISSION",
    "INSURANCE_CLEAR",
)


# -- reading the account ---------------------------------------------------------------------


async def _account(request: Request, version: int) -> JSONResponse:
    facade, caller = await authenticated(request)
    caller.params.finish()

    def build(model: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        account = held_account(model, caller.account)
        activity = index.activity(caller.account)
        figures = render.figures(model, account)
        rows = render.position_rows(model, figures, activity, version=version)
        body: dict[str, Any] = render.totals(figures)
        if version < 3:
            body.update(
                {
                    "feeTier": 0,
                    "canTrade": True,
                    "canDeposit": True,
                    "canWithdraw": True,
                    "updateTime": 0,
                    "multiAssetsMargin": False,
                    "tradeGroupId": -1,
                }
            )
        body["assets"] = [render.asset(figures, activity.updated)]
        body["positions"] = [render.account_position(row, version) for row in rows]
        return body

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v2/account")
async def account_v2(request: Request) -> JSONResponse:
    return await _account(request, 2)


@router.get("/fapi/v3/account")
async def account_v3(request: Request) -> JSONResponse:
    return await _account(request, 3)


@router.get("/fapi/v2/balance")
@router.get("/fapi/v3/balance")
async def balance(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    caller.params.finish()

    def build(model: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        figures = render.figures(model, held_account(model, caller.account))
        return [render.asset(figures, index.activity(caller.account).updated, balance_shape=True)]

    return JSONResponse(await facade.read(build))


async def _position_risk(request: Request, version: int) -> JSONResponse:
    facade, caller, symbol = await symbol_only(request)

    def build(model: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        figures = render.figures(model, held_account(model, caller.account))
        activity = index.activity(caller.account)
        return render.position_rows(model, figures, activity, version=version, symbol=symbol)

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v2/positionRisk")
async def position_risk_v2(request: Request) -> JSONResponse:
    return await _position_risk(request, 2)


@router.get("/fapi/v3/positionRisk")
async def position_risk_v3(request: Request) -> JSONResponse:
    return await _position_risk(request, 3)


@router.get("/fapi/v1/leverageBracket")
async def leverage_bracket(request: Request) -> JSONResponse:
    facade, _, symbol = await symbol_only(request)

    def build(model: ReadModel, _: ActivityIndex) -> Any:
        rows = []
        for name, instrument in sorted(model.instruments.items()):
            if symbol is not None and name != symbol:
                continue
            brackets = [
                {
                    "bracket": i + 1,
                    "initialLeverage": int(b.max_leverage) if b.max_leverage else 1,
                    "notionalCap": number(b.cap if b.cap is not None else MAX_COMMAND_AMOUNT),
                    "notionalFloor": number(b.floor),
                    "maintMarginRatio": number(b.maintenance_margin_rate),
                    "cum": number(b.maintenance_amount),
                }
                for i, b in enumerate(instrument.brackets)
            ]
            rows.append({"symbol": name, "notionalCoef": "1", "brackets": brackets})
        return one_or_all(rows, symbol)

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/symbolConfig")
async def symbol_config(request: Request) -> JSONResponse:
    facade, caller, symbol = await symbol_only(request)

    def build(model: ReadModel, _: ActivityIndex) -> list[dict[str, Any]]:
        account = held_account(model, caller.account)
        return [
            {
                "symbol": name,
                "marginType": "ISOLATED"
                if account.mode_for(name).value == "isolated"
                else "CROSSED",
                "isAutoAddMargin": False,
                "leverage": int(account.leverage_for(name)),
                "maxNotionalValue": number(
                    render.max_notional(instrument, account.leverage_for(name))
                ),
            }
            for name, instrument in sorted(model.instruments.items())
            if symbol is None or name == symbol
        ]

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/commissionRate")
async def commission_rate(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    caller.params.finish()

    def build(model: ReadModel, _: ActivityIndex) -> dict[str, Any]:
        instrument = model.instruments[symbol]
        return {
            "symbol": symbol,
            "makerCommissionRate": number(instrument.maker_fee_rate),
            "takerCommissionRate": number(instrument.taker_fee_rate),
        }

    return JSONResponse(await facade.read(build))


# -- settings --------------------------------------------------------------------------------


@router.post("/fapi/v1/leverage")
async def set_leverage(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    leverage = caller.params.integer("leverage", required=True)
    if leverage is None or not 1 <= leverage <= 125:
        raise BinanceError(INVALID_LEVERAGE, f"Leverage {leverage} is not valid")
    await run(
        facade,
        caller,
        {"type": "set_leverage", "symbol": symbol, "leverage": str(leverage)},
        {
            "LEVERAGE_ABOVE_MAX": INVALID_LEVERAGE,
            "INSUFFICIENT_MARGIN": LEVERAGE_INSUFFICIENT_MARGIN,
        },
    )

    def build(model: ReadModel, _: ActivityIndex) -> dict[str, Any]:
        instrument = model.instruments[symbol]
        return {
            "leverage": leverage,
            "maxNotionalValue": number(render.max_notional(instrument, Decimal(leverage))),
            "symbol": symbol,
        }

    return JSONResponse(await facade.read(build))


@router.post("/fapi/v1/marginType")
async def set_margin_type(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    kind = caller.params.choice("marginType", ("ISOLATED", "CROSSED"))
    mode = "isolated" if kind == "ISOLATED" else "cross"
    await run(facade, caller, {"type": "set_margin_mode", "symbol": symbol, "margin_mode": mode})
    return JSONResponse(SUCCESS)


@router.post("/fapi/v1/positionMargin")
async def position_margin(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    symbol = need_symbol(caller.params, facade.context.symbols)
    amount = caller.params.decimal("amount", required=True)
    kind = caller.params.choice("type", ("1", "2"))
    side = caller.params.text("positionSide") or "BOTH"
    if side not in ("BOTH", "LONG", "SHORT"):
        raise BinanceError(INVALID_POSITION_SIDE)
    if amount is None or amount <= 0:
        raise BinanceError(AMOUNT_NOT_POSITIVE)
    command: dict[str, Any] = {
        "type": "add_isolated_margin" if kind == "1" else "remove_isolated_margin",
        "symbol": symbol,
        "amount": str(amount),
    }
    if side != "BOTH":
        command["position_side"] = side.lower()
    await run(facade, caller, command)
    return JSONResponse(
        {
            "amount": number(amount),
            "code": 200,
            "msg": "Successfully modify position margin.",
            "type": int(kind),
        }
    )


@router.get("/fapi/v1/positionSide/dual")
async def position_mode(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    caller.params.finish()

    def build(model: ReadModel, _: ActivityIndex) -> dict[str, Any]:
        account = held_account(model, caller.account)
        return {"dualSidePosition": account.position_mode is PositionMode.HEDGE}

    return JSONResponse(await facade.read(build))


@router.post("/fapi/v1/positionSide/dual")
async def set_position_mode(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    hedge = caller.params.text("dualSidePosition", required=True)
    if hedge not in ("true", "false"):
        raise BinanceError(
            BAD_PARAMETER, "Data sent for parameter 'dualSidePosition' is not valid: true or false."
        )
    mode = "hedge" if hedge == "true" else "one-way"
    await run(facade, caller, {"type": "set_position_mode", "position_mode": mode})
    return JSONResponse(SUCCESS)


@router.get("/fapi/v1/accountConfig")
async def account_config(request: Request) -> JSONResponse:
    """Fee tier 0: ccxt reads its maker / taker rates from that tier (Binance's defaults)."""
    facade, caller = await authenticated(request)
    caller.params.finish()

    def build(model: ReadModel, index: ActivityIndex) -> dict[str, Any]:
        account = held_account(model, caller.account)
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "dualSidePosition": account.position_mode is PositionMode.HEDGE,
            "updateTime": index.activity(caller.account).updated,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
        }

    return JSONResponse(await facade.read(build))


@router.get("/fapi/v1/multiAssetsMargin")
async def multi_assets(request: Request) -> JSONResponse:
    _, caller = await authenticated(request)
    caller.params.finish()
    return JSONResponse({"multiAssetsMargin": False})


# -- income ----------------------------------------------------------------------------------


@router.get("/fapi/v1/income")
async def income(request: Request) -> JSONResponse:
    facade, caller = await authenticated(request)
    params = caller.params
    symbol = symbol_of(params, facade.context.symbols)
    kind = params.text("incomeType")
    if kind is not None and kind not in INCOME_TYPES:
        raise BinanceError(
            BAD_PARAMETER, f"Data sent for parameter 'incomeType' is not valid: {kind!a}."
        )
    start, end = params.integer("startTime"), params.integer("endTime")
    page = params.integer("page") or 1
    limit = params.integer("limit") or 100
    if not 1 <= limit <= 1000 or page < 1:
        raise BinanceError(
            BAD_PARAMETER, "Data sent for parameter 'limit' is not valid: 1 to 1000."
        )
    params.finish()

    def build(_: ReadModel, index: ActivityIndex) -> list[dict[str, Any]]:
        records = [
            r
            for r in index.activity(caller.account).income
            if (symbol is None or r.symbol == symbol)
            and (kind is None or r.income_type == kind)
            and (start is None or r.time >= start)
            and (end is None or r.time <= end)
        ]
        skip = (page - 1) * limit
        chosen = (
            records[skip : skip + limit]
            if start is not None
            else (records[max(0, len(records) - skip - limit) : len(records) - skip])
        )
        return [
            {
                "symbol": r.symbol,
                "incomeType": r.income_type,
                "income": number(r.income),
                "asset": "USDT",
                "info": r.info,
                "time": r.time,
                "tranId": r.tran_id,
                "tradeId": r.trade_id,
            }
            for r in chosen
        ]

    return JSONResponse(await facade.read(build))
