"""Booking a fill: position after, realized PnL, fees, isolated margin moves, as one event.

Units and rounding (quantities in base units, money in the settle asset):
  closed entry notional = entry_notional * closed / quantity   (exact to 28 digits)
  realized PnL          = s * (closed * price - closed entry notional), rounded down
                          (``round_balance_delta``: the trader never gets the dust)
  fees                  = closed * price * rate and opened * price * rate, each rounded up
                          (``round_requirement``); the event's ``fee`` is their sum
A fill is split into the part that closes the position (``closed``) and the part that opens or
increases one (``opened``); a fill larger than an opposite one-way position closes it and opens
the rest on the other side (a flip) inside the same event.

Where the money goes:
  cross                 realized PnL and both fees: the cross wallet
  isolated, closing     a full close releases the slot's margin plus the realized PnL minus the
                        closing fee to the wallet when that is not negative (a negative remainder
                        stays in the slot, for the insurance fund or bad debt to settle: an
                        isolated loss never reaches the cross wallet); a partial close releases
                        its share of the margin (rounded down) plus its realized PnL minus its
                        fee, when positive, and leaves the rest with the remaining position. A
                        partial liquidation and every close of a bankrupt scope release nothing
                        (``keep_margin``): the margin stays in the scope.
  isolated, opening     opened * price / leverage (rounded up) moves from the wallet to the slot;
                        the opening fee is paid from the wallet, so the position starts with
                        exactly its initial margin.
  fund takeover         (``market_price`` set) the insurance fund takes the position over at the
                        fill price: the market pays what a close at ``market_price`` would
                        realize, the fund pays the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.app.events import Event, StateLike, order_to_dict, position_to_dict
from crossmargin.app.model import BOTH, Account, Order
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import Position, Side


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
    keep_margin: bool = False  # partial liquidation, bankrupt scope: isolated margin stays put
    market_price: Decimal | None = None  # a fund takeover: the fund pays the gap to this price


def wallet(account_id: str) -> str:
    return f"wallet:{account_id}"


def isolated(account_id: str, symbol: str, slot: str) -> str:
    return f"isolated:{account_id}:{symbol}:{slot}"


def _post(postings: list[list[Any]], *pairs: tuple[str, Decimal]) -> None:
    """Append posting pairs, leaving out zero amounts."""
    if any(amount != 0 for _, amount in pairs):
        postings.extend([ledger, amount] for ledger, amount in pairs)


def book_fill(state: StateLike, fill: Fill, extra: dict[str, Any] | None = None) -> Event:
    """The event for ``fill`` against the current state of its account."""
    account: Account = state.accounts[fill.account]
    key = (fill.symbol, fill.slot)
    position = account.positions.get(key)
    own_wallet = wallet(fill.account)
    slot_ledger = isolated(fill.account, fill.symbol, fill.slot)
    postings: list[list[Any]] = []

    closed = ZERO
    realized = ZERO
    fee_close = ZERO
    opened = fill.quantity
    after: Position | None = position
    if position is not None and position.side is not fill.side:
        closed = min(fill.quantity, position.quantity)
        opened = fill.quantity - closed
        closed_entry = position.entry_notional * closed / position.quantity
        sign = position.side.sign
        realized = round_balance_delta(sign * (closed * fill.price - closed_entry))
        fee_close = round_requirement(closed * fill.price * fill.fee_rate)
        remaining = position.quantity - closed
        after = (
            None
            if remaining == 0
            else dataclasses.replace(
                position,
                quantity=remaining,
                entry_notional=position.entry_notional - closed_entry,
            )
        )
        collateral = slot_ledger if position.is_isolated else own_wallet
        if fill.market_price is None:
            _post(postings, (collateral, realized), (fill.counterparty, -realized))
        else:
            at_market = round_balance_delta(sign * (closed * fill.market_price - closed_entry))
            _post(
                postings,
                (collateral, realized),
                (fill.counterparty, -at_market),
                ("insurance_fund", at_market - realized),
            )
        if position.is_isolated:  # a cross closing fee is paid with the opening fee, below
            _post(postings, (collateral, -fee_close), ("fee_income", fee_close))
        if position.is_isolated and not fill.keep_margin:
            margin = account.isolated.get(key, ZERO)
            if after is None:
                release = max(ZERO, margin + realized - fee_close)
            else:
                share = round_balance_delta(margin * closed / position.quantity)
                release = max(ZERO, share + realized - fee_close)
            _post(postings, (slot_ledger, -release), (own_wallet, release))
    fee_open = round_requirement(opened * fill.price * fill.fee_rate)
    if opened > 0:
        if after is None:
            after = Position(
                symbol=fill.symbol,
                side=fill.side,
                quantity=opened,
                entry_notional=opened * fill.price,
                leverage=account.leverage_for(fill.symbol),
                margin_mode=account.mode_for(fill.symbol),
            )
        else:
            after = dataclasses.replace(
                after,
                quantity=after.quantity + opened,
                entry_notional=after.entry_notional + opened * fill.price,
            )
        if after.is_isolated:
            margin_in = round_requirement(opened * fill.price / after.leverage)
            _post(postings, (own_wallet, -margin_in), (slot_ledger, margin_in))
    wallet_fee = fee_open + (fee_close if position is not None and not position.is_isolated else 0)
    _post(postings, (own_wallet, -wallet_fee), ("fee_income", wallet_fee))
    event: Event = {
        "type": fill.event_type,
        "account": fill.account,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "slot": fill.slot,
        "quantity": fill.quantity,
        "price": fill.price,
        "liquidity": fill.liquidity,
        "fee": fee_close + fee_open,
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
                dataclasses.replace(fill.order, quantity=left, reserved=round_requirement(share))
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
