"""The engine's state in Binance's account shapes: account, balance, positionRisk, orders.

Run on the engine thread (through the host). Every figure comes from the engine's own books:
the account's core :class:`~crossmargin.core.risk.Book` (``app.views.book_for``) valued by
``core.risk.account_report``, so ``liquidationPrice`` is crossmargin's
``position_liquidation_price`` and the margins are the engine's. Mapping:

  walletBalance        cross wallet + isolated margins (Binance counts both as wallet)
  crossWalletBalance   cross wallet
  unrealizedProfit     UPNL of every position at the mark; crossUnPnl: of the cross positions
  marginBalance        walletBalance + unrealizedProfit
  positionInitialMargin, maintMargin   IM and MM of the positions (the venue preset's formulas)
  openOrderInitialMargin               margin reserved by resting orders
  availableBalance = maxWithdrawAmount  the engine's free margin (what orders and withdrawals
                                        may use), never below 0
  isolatedWallet       an isolated position's margin; isolatedMargin = isolatedWallet + its UPNL
  notional             signed: positionAmt x markPrice
  breakEvenPrice       the close price that covers the opening and closing taker fees
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.app.model import Account
from crossmargin.app.queries import ReadModel
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import MAX_COMMAND_AMOUNT, PRICE_QUANTUM, ZERO
from crossmargin.core.position import MarginMode, Position, PositionMode
from crossmargin.core.risk import PositionReport, account_report
from crossmargin.service.binance.index import Activity, OrderRecord, TradeRecord, position_side
from crossmargin.service.binance.wire import number


def leverage_text(leverage: Decimal) -> str:
    return number(leverage)


def max_notional(instrument: Instrument, leverage: Decimal) -> Decimal:
    """The largest notional a position may reach at ``leverage`` (Binance's maxNotionalValue)."""
    best = ZERO
    for bracket in instrument.brackets:
        if bracket.max_leverage is None or leverage <= bracket.max_leverage:
            best = bracket.cap if bracket.cap is not None else MAX_COMMAND_AMOUNT
    return best


def break_even(position: Position, taker: Decimal) -> Decimal:
    entry = position.entry_price
    if position.side.sign > 0:
        price = entry * (1 + taker) / (1 - taker)
    else:
        price = entry * (1 - taker) / (1 + taker)
    return price.quantize(PRICE_QUANTUM)


@dataclass(frozen=True, slots=True)
class Held:
    slot: str
    report: PositionReport
    collateral: Decimal  # isolated margin (0 for cross)


@dataclass(frozen=True, slots=True)
class Figures:
    """One account valued at the marks."""

    account: Account
    held: tuple[Held, ...]
    wallet: Decimal
    isolated: Decimal
    unrealized: Decimal
    cross_unrealized: Decimal
    initial: Decimal
    maintenance: Decimal
    reserved: Decimal
    available: Decimal


def figures(model: ReadModel, account: Account) -> Figures:
    report = account_report(model.book(account))
    held = tuple(
        Held(slot=key[1], report=item, collateral=account.isolated.get(key, ZERO))
        for key, item in zip(account.positions.keys(), report.positions, strict=True)
    )
    return Figures(
        account=account,
        held=held,
        wallet=account.wallet,
        isolated=sum((h.collateral for h in held), ZERO),
        unrealized=sum((h.report.risk.unrealized_pnl for h in held), ZERO),
        cross_unrealized=report.cross.unrealized_pnl,
        initial=sum((h.report.risk.initial_margin for h in held), ZERO),
        maintenance=sum((h.report.risk.maintenance_margin for h in held), ZERO),
        reserved=account.reserved(),
        available=max(ZERO, model.free_margin(account)),
    )


def asset(f: Figures, updated: int, *, balance_shape: bool = False) -> dict[str, Any]:
    """The USDT asset: as in ``/account`` (``assets``), or as in ``/balance``; both end with the
    cross wallet and what is available."""
    wallet = f.wallet + f.isolated
    cross = {
        "crossWalletBalance": number(f.wallet),
        "crossUnPnl": number(f.cross_unrealized),
        "availableBalance": number(f.available),
        "maxWithdrawAmount": number(f.available),
        "marginAvailable": True,
        "updateTime": updated,
    }
    if balance_shape:
        return {"accountAlias": "crossmargin", "asset": "USDT", "balance": number(wallet), **cross}
    return {
        "asset": "USDT",
        "walletBalance": number(wallet),
        "unrealizedProfit": number(f.unrealized),
        "marginBalance": number(wallet + f.unrealized),
        "maintMargin": number(f.maintenance),
        "initialMargin": number(f.initial + f.reserved),
        "positionInitialMargin": number(f.initial),
        "openOrderInitialMargin": number(f.reserved),
        **cross,
    }


def totals(f: Figures) -> dict[str, Any]:
    wallet = f.wallet + f.isolated
    return {
        "totalInitialMargin": number(f.initial + f.reserved),
        "totalMaintMargin": number(f.maintenance),
        "totalWalletBalance": number(wallet),
        "totalUnrealizedProfit": number(f.unrealized),
        "totalMarginBalance": number(wallet + f.unrealized),
        "totalPositionInitialMargin": number(f.initial),
        "totalOpenOrderInitialMargin": number(f.reserved),
        "totalCrossWalletBalance": number(f.wallet),
        "totalCrossUnPnl": number(f.cross_unrealized),
        "availableBalance": number(f.available),
        "maxWithdrawAmount": number(f.available),
    }


def _orders_on(account: Account, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    """Margin reserved by the symbol's resting orders, and their bid and ask notionals."""
    reserved = bid = ask = ZERO
    for order in account.orders.values():
        if order.symbol != symbol:
            continue
        reserved += order.reserved
        notional = order.quantity * (order.price or ZERO)
        if order.side.sign > 0:
            bid += notional
        else:
            ask += notional
    return reserved, bid, ask


def position_row(
    model: ReadModel,
    f: Figures,
    activity: Activity,
    symbol: str,
    slot: str,
    held: Held | None,
) -> dict[str, Any]:
    """One positionRisk row: the fields of v2 and of v3 (leverage and marginType in both)."""
    account = f.account
    instrument = model.instruments[symbol]
    leverage = account.leverage_for(symbol)
    mode = account.mode_for(symbol)
    mark = model.marks.get(symbol, ZERO)
    reserved, bid, ask = _orders_on(account, symbol)
    row: dict[str, Any] = {"symbol": symbol, "positionSide": position_side(slot)}
    if held is None:
        amount = entry = upnl = notional = im = mm = wallet = ZERO
        liquidation = ZERO
        breakeven = ZERO
    else:
        position = held.report.position
        amount = position.signed_quantity
        entry = position.entry_price.quantize(PRICE_QUANTUM)
        upnl = held.report.risk.unrealized_pnl
        notional = amount * held.report.mark_price
        im, mm = held.report.risk.initial_margin, held.report.risk.maintenance_margin
        wallet = held.collateral if position.is_isolated else ZERO
        liquidation = held.report.liquidation_price or ZERO
        breakeven = break_even(position, instrument.taker_fee_rate)
        mark = held.report.mark_price
        mode = position.margin_mode
        leverage = position.leverage
    isolated = mode is MarginMode.ISOLATED
    row.update(
        {
            "positionAmt": number(amount),
            "entryPrice": number(entry),
            "breakEvenPrice": number(breakeven),
            "markPrice": number(mark),
            "unRealizedProfit": number(upnl),
            "liquidationPrice": number(liquidation),
            "isolatedMargin": number(wallet + upnl if isolated and held else ZERO),
            "notional": number(notional),
            "marginAsset": instrument.settle_asset,
            "isolatedWallet": number(wallet),
            "leverage": leverage_text(leverage),
            "marginType": "isolated" if isolated else "cross",
            "maxNotionalValue": number(max_notional(instrument, leverage)),
            "updateTime": activity.positions_updated.get((symbol, slot), 0),
        }
    )
    row.update(
        {
            "initialMargin": number(im + reserved),
            "maintMargin": number(mm),
            "positionInitialMargin": number(im),
            "openOrderInitialMargin": number(reserved),
            "isAutoAddMargin": "false",
            "adl": 0,
            "bidNotional": number(bid),
            "askNotional": number(ask),
        }
    )
    return row


def slots_of(account: Account) -> tuple[str, ...]:
    return ("long", "short") if account.position_mode is PositionMode.HEDGE else ("both",)


def position_rows(
    model: ReadModel, f: Figures, activity: Activity, *, version: int, symbol: str | None = None
) -> list[dict[str, Any]]:
    """v2 lists every symbol (flat ones with zeros, as Binance does); v3 only held ones."""
    by_key = {(h.report.position.symbol, h.slot): h for h in f.held}
    rows = []
    for name in sorted(model.instruments):
        if symbol is not None and name != symbol:
            continue
        for slot in slots_of(f.account):
            held = by_key.get((name, slot))
            if held is None and version >= 3:
                continue
            rows.append(position_row(model, f, activity, name, slot, held))
    return rows


def account_position(row: dict[str, Any], version: int) -> dict[str, Any]:
    """A positionRisk row in the shape of ``/fapi/v2|v3/account``'s positions."""
    keys = (
        "symbol",
        "positionSide",
        "positionAmt",
        "unrealizedProfit",
        "isolatedMargin",
        "notional",
        "isolatedWallet",
        "initialMargin",
        "maintMargin",
        "updateTime",
    )
    shaped = {
        **row,
        "unrealizedProfit": row["unRealizedProfit"],
    }
    result = {key: shaped[key] for key in keys}
    if version < 3:
        result.update(
            {
                "leverage": row["leverage"],
                "isolated": row["marginType"] == "isolated",
                "entryPrice": row["entryPrice"],
                "breakEvenPrice": row["breakEvenPrice"],
                "maxNotional": row["maxNotionalValue"],
                "positionInitialMargin": row["positionInitialMargin"],
                "openOrderInitialMargin": row["openOrderInitialMargin"],
                "bidNotional": row["bidNotional"],
                "askNotional": row["askNotional"],
            }
        )
    return result


def order_body(record: OrderRecord) -> dict[str, Any]:
    return {
        "orderId": record.order_id,
        "symbol": record.symbol,
        "status": record.status,
        "clientOrderId": record.client_order_id,
        "price": number(record.price),
        "avgPrice": number(record.average),
        "origQty": number(record.quantity),
        "executedQty": number(record.executed),
        "cumQty": number(record.executed),
        "cumQuote": number(record.quote),
        "timeInForce": record.time_in_force,
        "type": record.order_type,
        "origType": record.order_type,
        "reduceOnly": record.reduce_only,
        "closePosition": False,
        "side": record.side,
        "positionSide": record.position_side,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": record.time,
        "updateTime": record.update_time,
    }


def trade_body(record: TradeRecord) -> dict[str, Any]:
    return {
        "symbol": record.symbol,
        "id": record.trade_id,
        "orderId": record.order_id,
        "side": record.side,
        "price": number(record.price),
        "qty": number(record.quantity),
        "realizedPnl": number(record.realized_pnl),
        "quoteQty": number(record.quantity * record.price),
        "commission": number(record.commission),
        "commissionAsset": "USDT",
        "time": record.time,
        "positionSide": record.position_side,
        "buyer": record.side == "BUY",
        "maker": record.maker,
    }
