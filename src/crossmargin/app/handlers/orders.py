"""Orders and fills: place, cancel, report an external fill; book fills of orders.

Pre-trade check (Binance's cost to open, core.margin.open_order_cost): an order reserves
``IM + open loss`` for the part that opens or increases a position, ``IM = qty * price /
leverage`` at the fill price (the mark for an order that fills at once), ``open loss = qty *
|min(0, dir * (mark - order price))|``; plus the fee to open it at the taker rate (a resting
order reserves it too: its fill pays the fee from the wallet, which must not go below zero for
it), plus Bybit's fee to close at the bankruptcy price where the venue charges it; rounded up
once. More than the free margin: INSUFFICIENT_MARGIN. The resulting position may not exceed the bracket that the account's
leverage allows (LEVERAGE_ABOVE_MAX). Reduce-only orders never open: REDUCE_ONLY_WOULD_INCREASE,
and their fills are clipped to the position. Order ids are unique per account.

Simulated matching: a market order fills at once at the mark (taker); a limit order that crosses
the mark fills at once at the mark (taker), else rests and fills at its limit price (maker) on
the first mark update that reaches it. External matching: orders rest until ``report_fill``,
which may not fill a limit order beyond its limit (FILL_PRICE_BEYOND_LIMIT).

An isolated flip whose closing part leaves the slot below zero (a limit filled at its price far
from a gapped mark, or an external fill) is booked as the close, the settlement of the slot
(insurance fund, then bad debt) and the opening, so the new position never inherits the deficit.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from crossmargin.app.commands import CancelOrder, PlaceOrder, ReportFill
from crossmargin.app.decision import Decision, account_of, reject, symbol_of
from crossmargin.app.events import OrderAccepted, OrderCancelled
from crossmargin.app.examination import settle_slot
from crossmargin.app.model import BOTH, Account, Order, OrderType, Reason
from crossmargin.app.trading import Fill, book_fill, increasing_quantity, slot_for
from crossmargin.app.views import free_margin
from crossmargin.core.fills import apply_fill
from crossmargin.core.margin import open_order_cost
from crossmargin.core.numbers import ZERO, round_requirement
from crossmargin.core.position import PositionMode, Side


def _reducible(account: Account, symbol: str, slot: str, side: Side) -> Decimal:
    position = account.positions.get((symbol, slot))
    if position is None or position.side is side:
        return ZERO
    return position.quantity


def place_order(d: Decision, c: PlaceOrder) -> None:
    account = account_of(d, c.account)
    symbol = symbol_of(d, c.symbol)
    if c.order_id in account.orders:  # unique per account: another account's ids are not ours
        raise reject(Reason.DUPLICATE_ORDER_ID, f"you have an open order {c.order_id!r}")
    slot = _slot(account, c)
    mark = d.draft.marks.get(symbol)
    if mark is None:
        raise reject(Reason.NO_MARK_PRICE, f"no mark price for {symbol} yet")
    increasing = _increasing(account, c, slot)
    order_price = c.price if c.price is not None else mark
    immediate = d.matching == "simulated" and (
        c.order_type is OrderType.MARKET or c.side.sign * (order_price - mark) >= 0
    )
    fill_price = mark if immediate else order_price
    _check_leverage(d, account, symbol, slot, c.side, increasing, fill_price)
    cost = ZERO
    if increasing > 0:
        cost = _cost(d, account, symbol, c.side, increasing, fill_price, order_price, mark)
        free = free_margin(d.draft, account)
        if cost > free:
            raise reject(
                Reason.INSUFFICIENT_MARGIN,
                f"the order needs {cost} of margin and {max(ZERO, free)} is free",
            )
    order = Order(
        order_id=c.order_id,
        account=account.account_id,
        symbol=symbol,
        side=c.side,
        position_side=slot,
        order_type=c.order_type,
        quantity=c.quantity,
        price=c.price,
        reduce_only=c.reduce_only,
        reserved=ZERO if immediate else cost,
    )
    d.result["order_id"] = c.order_id
    if not immediate:
        d.emit(OrderAccepted(account=account.account_id, order=order))
        return
    # An order that fills at once never rests: its details ride along without being stored.
    d.emit(OrderAccepted(account=account.account_id, accepted=order))
    rate = d.draft.instruments[symbol].taker_fee_rate
    fill_order(d, order, c.quantity, mark, rate, "taker")
    d.result["filled"] = True


def _slot(account: Account, c: PlaceOrder) -> str:
    """The slot the order trades; hedge mode needs ``position_side``, one-way mode refuses it."""
    if account.position_mode is PositionMode.HEDGE and c.position_side is None:
        raise reject(Reason.POSITION_SIDE_MISMATCH, "hedge mode needs position_side long or short")
    if account.position_mode is PositionMode.ONE_WAY and c.position_side is not None:
        raise reject(Reason.POSITION_SIDE_MISMATCH, "one-way mode takes no position_side")
    return slot_for(account, c.side, c.position_side)


def _increasing(account: Account, c: PlaceOrder, slot: str) -> Decimal:
    """The part of the order that opens or increases a position (zero for reduce-only);
    refuses a reduce-only order with nothing to reduce and a hedge-mode close beyond the slot."""
    increasing = increasing_quantity(account, c.symbol, slot, c.side, c.quantity)
    reducible = _reducible(account, c.symbol, slot, c.side)
    if c.reduce_only and reducible == 0:
        raise reject(Reason.REDUCE_ONLY_WOULD_INCREASE, f"no {c.symbol} position for it to reduce")
    if slot != BOTH and increasing == 0 and c.quantity > reducible:
        raise reject(
            Reason.REDUCE_ONLY_WOULD_INCREASE,
            f"a hedge-mode close of {c.quantity} exceeds the {reducible} held",
        )
    return ZERO if c.reduce_only else increasing


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
    """Binance's cost to open (IM at the fill price + open loss), the taker fee to open, and
    Bybit's fee to close at the bankruptcy price where the venue charges it; rounded up."""
    leverage = account.leverage_for(symbol)
    taker = d.draft.instruments[symbol].taker_fee_rate
    cost = open_order_cost(
        side=side, quantity=increasing, price=order_price, mark=mark, leverage=leverage
    )
    cost += increasing * (fill_price - order_price) / leverage  # IM at the fill price
    cost += increasing * fill_price * taker
    if d.draft.rules.close_fee_in_initial_margin:
        # Bybit: IM includes the fee to close at the bankruptcy price, EP x (1 -/+ 1/lev)
        bankrupt = fill_price * (1 - side.sign / leverage)
        cost += increasing * bankrupt * taker
    return round_requirement(cost)


def reserve_for(d: Decision, account: Account, order: Order) -> Decimal:
    """What a resting order reserves against ``account`` as it is now (its leverage, its
    position, the current mark): the cost of its increasing part at its limit price (at the
    mark for a market order resting with an external matcher)."""
    symbol = order.symbol
    mark = d.draft.marks.get(symbol)
    if order.reduce_only or mark is None:
        return order.reserved
    price = order.price if order.price is not None else mark
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
        d.emit(OrderCancelled.of(order, "nothing left to reduce"))
        return
    hedge_close = order.position_side not in (BOTH, order.side.value)
    if quantity < requested and (order.reduce_only or hedge_close):
        # the clipped remainder of a reduce-only order (or of a hedge-mode close, which never
        # opens either) is cancelled with the fill; a partial fill that was not clipped leaves
        # the rest of the order open
        order = dataclasses.replace(order, quantity=quantity)
    position = account.positions.get((order.symbol, order.position_side))
    if position is not None and _flip_leaves_a_deficit(account, order, quantity, price, rate):
        closing = position.quantity
        _book(d, order, closing, price, rate, liquidity)
        settle_slot(d, order.account, (order.symbol, order.position_side))
        rest = d.draft.accounts[order.account].orders.get(order.order_id)
        order = (
            rest if rest is not None else dataclasses.replace(order, quantity=quantity - closing)
        )
        quantity -= closing
    _book(d, order, quantity, price, rate, liquidity)


def _book(
    d: Decision, order: Order, quantity: Decimal, price: Decimal, rate: Decimal, liquidity: str
) -> None:
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


def _flip_leaves_a_deficit(
    account: Account, order: Order, quantity: Decimal, price: Decimal, rate: Decimal
) -> bool:
    """An isolated flip whose closing part would leave the slot's margin below zero."""
    position = account.positions.get((order.symbol, order.position_side))
    if position is None or not position.is_isolated or position.side is order.side:
        return False
    if quantity <= position.quantity:
        return False
    close = apply_fill(
        position,
        order.symbol,
        order.side,
        position.quantity,
        price,
        leverage=position.leverage,
        margin_mode=position.margin_mode,
    )
    fee = round_requirement(position.quantity * price * rate)
    margin = account.isolated.get((order.symbol, order.position_side), ZERO)
    return margin + close.realized - fee < 0


def cancel_order(d: Decision, c: CancelOrder) -> None:
    account = account_of(d, c.account)
    order = account.orders.get(c.order_id)
    if order is None:
        raise reject(Reason.UNKNOWN_ORDER, f"no open order {c.order_id!r} on this account")
    d.emit(OrderCancelled.of(order, "by client"))


def report_fill(d: Decision, c: ReportFill) -> None:
    """External matching: the venue reports a fill of an account's open order. A limit order
    never fills worse than its limit (FILL_PRICE_BEYOND_LIMIT); the account is then examined
    like after any other fill."""
    if d.matching != "external":
        raise reject(Reason.EXTERNAL_MATCHING_ONLY, "this engine matches orders itself")
    account = account_of(d, c.account)
    order = account.orders.get(c.order_id)
    if order is None:
        raise reject(Reason.UNKNOWN_ORDER, f"no open order {c.order_id!r} on this account")
    if c.quantity > order.quantity:
        raise reject(Reason.FILL_EXCEEDS_ORDER, f"{c.quantity} exceeds the open {order.quantity}")
    if order.price is not None and order.side.sign * (c.price - order.price) > 0:
        word = "above" if order.side is Side.LONG else "below"
        raise reject(
            Reason.FILL_PRICE_BEYOND_LIMIT,
            f"a fill at {c.price} is {word} the order's limit {order.price}",
        )
    instrument = d.draft.instruments[order.symbol]
    rate = instrument.maker_fee_rate if c.liquidity == "maker" else instrument.taker_fee_rate
    fill_order(d, order, c.quantity, c.price, rate, c.liquidity)
