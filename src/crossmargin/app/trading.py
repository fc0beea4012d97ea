"""Booking a fill: position after, realized PnL, fees, isolated margin moves, as one event.

Units and rounding:
  closed entry notional = entry_notional * closed / quantity   (exact to 28 digits)
  realized PnL          = s * (closed * price - closed entry notional), rounded down
                          (``round_balance_delta``: the trader never gets the dust)
  fee                   = quantity * price * fee rate, rounded up (``round_requirement``)
  isolated margin in    = opened * price / leverage, rounded up, from the cross wallet
  isolated margin out   = on reduction, the closed fraction of the isolated margin (after the
                          realized PnL was booked into it); everything on a full close
A fill larger than an opposite one-way position closes it and opens the rest on the other side
(a flip) inside the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.app.events import Event, StateLike, order_to_dict, position_to_dict
from crossmargin.app.model import BOTH, Account, Order
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import MarginMode, Position, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    account: str
    symbol: str
    side: Side  # LONG = buy, SHORT = sell
    slot: str  # BOTH or "long"/"short"
    quantity: Decimal
    price: Decimal
    fee_rate: Decimal
    liquidity: str  # "maker" | "taker" | "liquidation" | "adl"
    order: Order | None = None
    event_type: str = "OrderFilled"
    counterparty: str = "external:trading"
    release_isolated: bool = True  # False for a partial liquidation: margin stays in the scope


def wallet(account_id: str) -> str:
    return f"wallet:{account_id}"


def isolated(account_id: str, symbol: str, slot: str) -> str:
    return f"isolated:{account_id}:{symbol}:{slot}"


def book_fill(state: StateLike, fill: Fill, extra: dict[str, Any] | None = None) -> Event:
    """The event for ``fill`` against the current state of its account."""
    account: Account = state.accounts[fill.account]
    key = (fill.symbol, fill.slot)
    position = account.positions.get(key)
    mode = position.margin_mode if position is not None else account.mode_for(fill.symbol)
    leverage = account.leverage_for(fill.symbol)
    postings: list[list[Any]] = []
    iso_ledger = isolated(fill.account, fill.symbol, fill.slot)
    iso_balance = account.isolated.get(key, ZERO)

    closed = ZERO
    realized = ZERO
    opened = fill.quantity
    after: Position | None = position
    if position is not None and position.side is not fill.side:
        closed = min(fill.quantity, position.quantity)
        opened = fill.quantity - closed
        closed_entry = position.entry_notional * closed / position.quantity
        realized = round_balance_delta(position.side.sign * (closed * fill.price - closed_entry))
        remaining = position.quantity - closed
        after = (
            None
            if remaining == 0
            else Position(
                symbol=position.symbol,
                side=position.side,
                quantity=remaining,
                entry_notional=position.entry_notional - closed_entry,
                leverage=position.leverage,
                margin_mode=position.margin_mode,
            )
        )
        scope = iso_ledger if mode is MarginMode.ISOLATED else wallet(fill.account)
        if realized != 0:
            postings += [[scope, realized], [fill.counterparty, -realized]]
        if mode is MarginMode.ISOLATED:
            iso_after_pnl = iso_balance + realized
            if after is None:
                # A forced close keeps a deficit inside the isolated ledger, for the insurance
                # fund (or bad debt) to settle: isolated losses never reach the cross wallet.
                forced = fill.liquidity in ("liquidation", "adl")
                release = max(ZERO, iso_after_pnl) if forced else iso_after_pnl
            elif fill.release_isolated:
                release = round_balance_delta(iso_after_pnl * closed / position.quantity)
            else:
                release = ZERO
            if release != 0:
                postings += [[iso_ledger, -release], [wallet(fill.account), release]]
            iso_balance = iso_after_pnl - release
    if opened > 0:
        if after is None:
            after = Position(
                symbol=fill.symbol,
                side=fill.side,
                quantity=opened,
                entry_notional=opened * fill.price,
                leverage=leverage,
                margin_mode=mode,
            )
        else:
            after = Position(
                symbol=after.symbol,
                side=after.side,
                quantity=after.quantity + opened,
                entry_notional=after.entry_notional + opened * fill.price,
                leverage=after.leverage,
                margin_mode=after.margin_mode,
            )
        if mode is MarginMode.ISOLATED:
            margin = round_requirement(opened * fill.price / leverage)
            postings += [[wallet(fill.account), -margin], [iso_ledger, margin]]
            iso_balance += margin
    fee = round_requirement(fill.quantity * fill.price * fill.fee_rate)
    if fee > 0:
        payer = (
            iso_ledger
            if mode is MarginMode.ISOLATED and after is not None
            else wallet(fill.account)
        )
        postings += [[payer, -fee], ["fee_income", fee]]
    event: Event = {
        "type": fill.event_type,
        "account": fill.account,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "slot": fill.slot,
        "quantity": fill.quantity,
        "price": fill.price,
        "liquidity": fill.liquidity,
        "fee": fee,
        "realized_pnl": realized,
        "position": {
            "account": fill.account,
            "symbol": fill.symbol,
            "slot": fill.slot,
            "after": None if after is None else position_to_dict(after),
        },
        "postings": postings,
    }
    if fill.order is not None:
        event["order_id"] = fill.order.order_id
        left = fill.order.quantity - fill.quantity
        if left > 0:
            share = fill.order.reserved * left / fill.order.quantity
            event["order"] = order_to_dict(
                Order(
                    order_id=fill.order.order_id,
                    account=fill.order.account,
                    symbol=fill.order.symbol,
                    side=fill.order.side,
                    position_side=fill.order.position_side,
                    order_type=fill.order.order_type,
                    quantity=left,
                    price=fill.order.price,
                    reduce_only=fill.order.reduce_only,
                    reserved=round_requirement(share),
                )
            )
        elif fill.order.order_id in account.orders:
            event["order_removed"] = fill.order.order_id
    if extra:
        event.update(extra)
    return event


def slot_for(account: Account, side: Side, position_side: str | None) -> str:
    """The position slot an order trades: BOTH in one-way mode, the named side in hedge mode."""
    from crossmargin.core.position import PositionMode

    if account.position_mode is PositionMode.ONE_WAY:
        return BOTH
    return position_side if position_side is not None else side.value


def increasing_quantity(
    account: Account, symbol: str, slot: str, side: Side, qty: Decimal
) -> Decimal:
    """The part of an order that opens or increases a position (the part that needs margin)."""
    position = account.positions.get((symbol, slot))
    if position is None or position.side is side:
        return qty if slot in (BOTH, side.value) else ZERO
    return max(ZERO, qty - position.quantity) if slot == BOTH else ZERO
