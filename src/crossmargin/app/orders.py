"""Order, fill, mark and funding commands.

Pre-trade check (Binance's cost to open): an order reserves ``IM + open loss`` for the part that
opens or increases a position, ``IM = qty * price / leverage`` at the order price (the mark for a
market order), ``open loss = qty * |min(0, dir * (mark - price))|``. It is rejected with
INSUFFICIENT_MARGIN when that (plus the taker fee for an immediate fill) exceeds the free margin.
The resulting position may not exceed the bracket that the account's leverage allows
(LEVERAGE_ABOVE_MAX). Reduce-only orders never open: REDUCE_ONLY_WOULD_INCREASE, and their fills
are clipped to the position.

Simulated matching: a market order fills at once at the mark (taker); a limit order that crosses
the mark fills at once at the mark (taker), else rests and fills at its limit price (maker) on
the first mark update that reaches it. External matching: orders rest until ``report_fill``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crossmargin.app.commands import decimal_field
from crossmargin.app.decide import Decision, account_of, reject, symbol_of
from crossmargin.app.events import Event, order_to_dict
from crossmargin.app.liquidation import tick_candidates
from crossmargin.app.model import BOTH, Account, Order, OrderType, Reason, resting_key
from crossmargin.app.trading import Fill, book_fill, increasing_quantity, slot_for, wallet
from crossmargin.app.views import free_margin
from crossmargin.core.margin import open_order_cost
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import PositionMode, Side


def _side(command: dict[str, Any]) -> Side:
    return Side.LONG if command["side"] == "buy" else Side.SHORT


def _reducible(account: Account, symbol: str, slot: str, side: Side) -> Decimal:
    position = account.positions.get((symbol, slot))
    if position is None or position.side is side:
        return ZERO
    return position.quantity


def place_order(d: Decision, c: dict[str, Any], matching: str) -> None:
    account = account_of(d, c)
    symbol = symbol_of(d, c)
    order_id = str(c["order_id"])
    if order_id in account.orders:  # unique per account: another account's ids are not ours
        raise reject(Reason.DUPLICATE_ORDER_ID, f"you have an open order {order_id!r}")
    side = _side(c)
    if account.position_mode is PositionMode.HEDGE and c.get("position_side") is None:
        raise reject(Reason.POSITION_SIDE_MISMATCH, "hedge mode needs position_side long or short")
    if account.position_mode is PositionMode.ONE_WAY and c.get("position_side") is not None:
        raise reject(Reason.POSITION_SIDE_MISMATCH, "one-way mode takes no position_side")
    slot = slot_for(account, side, c.get("position_side"))
    quantity = decimal_field(c, "quantity")
    order_type = OrderType(c["order_type"])
    price = None if c.get("price") is None else decimal_field(c, "price")
    mark = d.draft.marks.get(symbol)
    if mark is None:
        raise reject(Reason.NO_MARK_PRICE, f"no mark price for {symbol} yet")
    reduce_only = bool(c.get("reduce_only", False))
    increasing = increasing_quantity(account, symbol, slot, side, quantity)
    reducible = _reducible(account, symbol, slot, side)
    if reduce_only and reducible == 0:
        raise reject(Reason.REDUCE_ONLY_WOULD_INCREASE, f"no {symbol} position for it to reduce")
    if slot != BOTH and increasing == 0 and quantity > reducible:
        raise reject(
            Reason.REDUCE_ONLY_WOULD_INCREASE,
            f"a hedge-mode close of {quantity} exceeds the {reducible} held",
        )
    if reduce_only:
        increasing = ZERO
    order_price = price if price is not None else mark
    immediate = matching == "simulated" and (
        order_type is OrderType.MARKET or side.sign * (order_price - mark) >= 0
    )
    fill_price = mark if immediate else order_price
    _check_leverage(d, account, symbol, slot, side, increasing, fill_price)
    cost = ZERO
    if increasing > 0:
        cost = _cost(d, account, symbol, side, increasing, fill_price, order_price, mark)
        if immediate:
            taker = d.draft.instruments[symbol].taker_fee_rate
            cost = round_requirement(cost + increasing * fill_price * taker)
        free = free_margin(d.draft, account)
        if cost > free:
            raise reject(
                Reason.INSUFFICIENT_MARGIN,
                f"the order needs {cost} of margin and {max(ZERO, free)} is free",
            )
    order = Order(
        order_id=order_id,
        account=account.account_id,
        symbol=symbol,
        side=side,
        position_side=slot,
        order_type=order_type,
        quantity=quantity,
        price=price,
        reduce_only=reduce_only,
        reserved=ZERO if immediate else cost,
    )
    # An order that fills at once never rests: its details ride along without being stored.
    key = "accepted" if immediate else "order"
    d.emit({"type": "OrderAccepted", "account": account.account_id, key: order_to_dict(order)})
    d.result["order_id"] = order_id
    if immediate:
        rate = d.draft.instruments[symbol].taker_fee_rate
        fill_order(d, order, quantity, mark, rate, "taker")
        d.result["filled"] = True


def _cost(
    d: Decision,
    account: Account,
    symbol: str,
    side: Side,
    increasing: Decimal,
    fill_price: Decimal,
    order_price: Decimal,
    mark: Decimal,
) -> Decimal:
    """Binance's cost to open (IM at the fill price + open loss), plus Bybit's fee to close at
    the bankruptcy price where the venue charges it; rounded up. No trading fee."""
    leverage = account.leverage_for(symbol)
    cost = open_order_cost(
        side=side, quantity=increasing, price=order_price, mark=mark, leverage=leverage
    )
    cost += increasing * (fill_price - order_price) / leverage  # IM at the fill price
    if d.draft.rules.close_fee_in_initial_margin:
        # Bybit: IM includes the fee to close at the bankruptcy price, EP x (1 -/+ 1/lev)
        bankrupt = fill_price * (1 - side.sign / leverage)
        cost += increasing * bankrupt * d.draft.instruments[symbol].taker_fee_rate
    return round_requirement(cost)


def reserve_for(d: Decision, account: Account, order: Order) -> Decimal:
    """What a resting order reserves against ``account`` as it is now (its leverage, its
    position, the current mark): the cost of its increasing part at its limit price."""
    symbol, price = order.symbol, order.price
    mark = d.draft.marks.get(symbol)
    if order.reduce_only or price is None or mark is None:
        return order.reserved
    increasing = increasing_quantity(
        account, symbol, order.position_side, order.side, order.quantity
    )
    if increasing == 0:
        return ZERO
    return _cost(d, account, symbol, order.side, increasing, price, price, mark)


def _check_leverage(
    d: Decision,
    account: Account,
    symbol: str,
    slot: str,
    side: Side,
    increasing: Decimal,
    price: Decimal,
) -> None:
    if increasing == 0:
        return
    position = account.positions.get((symbol, slot))
    held = position.quantity if position is not None and position.side is side else ZERO
    notional = (held + increasing) * price
    instrument = d.draft.instruments[symbol]
    leverage = account.leverage_for(symbol)
    cap = instrument.max_notional
    bracket = instrument.bracket_for(notional)
    if (cap is not None and notional > cap) or (
        bracket.max_leverage is not None and leverage > bracket.max_leverage
    ):
        raise reject(
            Reason.LEVERAGE_ABOVE_MAX,
            f"a {symbol} position of {notional} notional is not allowed at {leverage}x",
        )


def fill_order(
    d: Decision, order: Order, quantity: Decimal, price: Decimal, rate: Decimal, liquidity: str
) -> None:
    """Book a fill of ``order`` (clipping reduce-only fills to the position)."""
    account = d.draft.accounts[order.account]
    requested = quantity
    if order.reduce_only or order.position_side != BOTH:
        reducible = _reducible(account, order.symbol, order.position_side, order.side)
        if order.reduce_only or order.position_side != order.side.value:
            quantity = min(quantity, reducible)
    if quantity <= 0:
        d.emit(
            {
                "type": "OrderCancelled",
                "account": order.account,
                "order_id": order.order_id,
                "reason": "nothing left to reduce",
                "order_removed": order.order_id,
            }
        )
        return
    if quantity < requested and order.reduce_only:
        # the clipped remainder of a reduce-only order is cancelled with the fill (a partial
        # fill that was not clipped leaves the rest of the order open)
        order = Order(**{**_fields(order), "quantity": quantity})
    fill = Fill(
        account=order.account,
        symbol=order.symbol,
        side=order.side,
        slot=order.position_side,
        quantity=quantity,
        price=price,
        fee_rate=rate,
        liquidity=liquidity,
        order=order,
    )
    d.emit(book_fill(d.draft, fill))


def _fields(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in Order.__dataclass_fields__}


def cancel_order(d: Decision, c: dict[str, Any], _: str) -> None:
    account = account_of(d, c)
    order = account.orders.get(str(c["order_id"]))
    if order is None:
        raise reject(Reason.UNKNOWN_ORDER, f"no open order {c['order_id']!r} on this account")
    d.emit(
        {
            "type": "OrderCancelled",
            "account": account.account_id,
            "order_id": order.order_id,
            "reason": "by client",
            "order_removed": order.order_id,
        }
    )


def report_fill(d: Decision, c: dict[str, Any], matching: str) -> None:
    """External matching: the venue reports a fill of an account's open order. A limit order
    never fills worse than its limit (FILL_PRICE_BEYOND_LIMIT); the account is then examined
    like after any other fill."""
    if matching != "external":
        raise reject(Reason.EXTERNAL_MATCHING_ONLY, "this engine matches orders itself")
    account = account_of(d, c)
    order_id = str(c["order_id"])
    order = account.orders.get(order_id)
    if order is None:
        raise reject(Reason.UNKNOWN_ORDER, f"no open order {order_id!r} on this account")
    quantity = decimal_field(c, "quantity")
    if quantity > order.quantity:
        raise reject(Reason.FILL_EXCEEDS_ORDER, f"{quantity} exceeds the open {order.quantity}")
    price = decimal_field(c, "price")
    if order.price is not None and order.side.sign * (price - order.price) > 0:
        word = "above" if order.side is Side.LONG else "below"
        raise reject(
            Reason.FILL_PRICE_BEYOND_LIMIT,
            f"a fill at {price} is {word} the order's limit {order.price}",
        )
    liquidity = c.get("liquidity", "taker")
    instrument = d.draft.instruments[order.symbol]
    rate = instrument.maker_fee_rate if liquidity == "maker" else instrument.taker_fee_rate
    fill_order(d, order, quantity, price, rate, liquidity)


def update_mark(d: Decision, c: dict[str, Any], matching: str) -> None:
    symbol = symbol_of(d, c)
    price = decimal_field(c, "price")
    d.emit({"type": "MarkPriceUpdated", "symbol": symbol, "price": price})
    if matching == "simulated":
        _fill_resting(d, symbol, price)
    d.examine_also |= tick_candidates(d, symbol)


def _fill_resting(d: Decision, symbol: str, mark: Decimal) -> None:
    resting = sorted(
        (
            order
            for account_id in d.draft.holders.members(resting_key(symbol))
            for order in d.draft.accounts[account_id].orders.values()
            if order.symbol == symbol and order.price is not None
        ),
        key=lambda order: (order.order_id, order.account),
    )
    rate = d.draft.instruments[symbol].maker_fee_rate
    for order in resting:
        limit = order.price if order.price is not None else mark
        if order.side.sign * (limit - mark) >= 0:
            current = d.draft.accounts[order.account].orders.get(order.order_id)
            if current is not None:
                fill_order(d, current, current.quantity, limit, rate, "maker")


def settle_funding(d: Decision, c: dict[str, Any], _: str) -> None:
    """Funding at a funding time: payment = notional at mark x rate; longs pay when rate > 0."""
    symbol = symbol_of(d, c)
    rate = decimal_field(c, "rate")
    mark = d.draft.marks.get(symbol)
    if mark is None:
        raise reject(Reason.NO_MARK_PRICE, f"no mark price for {symbol} yet")
    postings: list[list[Any]] = []
    payments: list[dict[str, Any]] = []
    for account_id in sorted(d.draft.holders.members(symbol)):
        account = d.draft.accounts[account_id]
        for key, position in sorted(account.positions.items()):
            if key[0] != symbol:
                continue
            owed = position.side.sign * position.quantity * mark * rate  # > 0: the trader pays
            amount = round_requirement(owed) if owed > 0 else -round_balance_delta(-owed)
            if amount == 0:
                continue
            scope = (
                f"isolated:{account_id}:{symbol}:{key[1]}"
                if position.is_isolated
                else wallet(account_id)
            )
            postings += [[scope, -amount], ["external:funding", amount]]
            payments.append({"account": account_id, "slot": key[1], "paid": amount})
    d.emit(
        {
            "type": "FundingSettled",
            "symbol": symbol,
            "rate": rate,
            "mark": mark,
            "payments": payments,
            "postings": postings,
        }
    )
    d.examine_also |= tick_candidates(d, symbol, screened=False)


ORDER_HANDLERS: dict[str, Callable[[Decision, dict[str, Any], str], None]] = {
    "place_order": place_order,
    "cancel_order": cancel_order,
    "report_fill": report_fill,
    "update_mark": update_mark,
    "settle_funding": settle_funding,
}

__all__ = ["ORDER_HANDLERS", "Event"]
