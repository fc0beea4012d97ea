"""Booking a fill: position after, realized PnL, fees, isolated margin moves, as one event.

The position arithmetic is core.fills.apply_fill (closed / opened parts, realized PnL rounded
down). This module moves the money:

  fees                  closed * price * rate and opened * price * rate, each rounded up
                        (``round_requirement``); the event's ``fee`` is their sum
  cross                 realized PnL and both fees: the cross wallet
  isolated, closing     a full close releases the slot's margin plus the realized PnL minus the
                        closing fee to the wallet when that is not negative (a negative
                        remainder stays in the slot, for the insurance fund or bad debt to
                        settle: an isolated loss never reaches the cross wallet); a partial close
                        releases its share of the margin (rounded down) plus its realized PnL
                        minus its fee, when positive, and leaves the rest with the remaining
                        position. A partial liquidation and every close of a bankrupt scope
                        release nothing (``keep_margin``): the margin stays in the scope.
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

from crossmargin.app.events import FillEvent, OrderFilled
from crossmargin.app.evolve import StateLike
from crossmargin.app.ledgers import FEE_INCOME, INSURANCE_FUND, TRADING, Ledger, Posting, postings
from crossmargin.app.model import BOTH, Account, Order
from crossmargin.app.records import PositionChange
from crossmargin.core.fills import FillResult, apply_fill
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import Position, PositionMode, Side
from crossmargin.core.scope import ScopeId


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
    event_type: type[FillEvent] = OrderFilled
    keep_margin: bool = False  # partial liquidation, bankrupt scope: isolated margin stays put
    market_price: Decimal | None = None  # a fund takeover: the fund pays the gap to this price
    # what the event says about a forced close
    scope: ScopeId | None = None
    partial: bool | None = None
    against: str | None = None
    taken_over_by: str | None = None


def book_fill(state: StateLike, fill: Fill) -> FillEvent:
    """The event for ``fill`` against the current state of its account."""
    account: Account = state.accounts[fill.account]
    key = (fill.symbol, fill.slot)
    position = account.positions.get(key)
    result = apply_fill(
        position,
        fill.symbol,
        fill.side,
        fill.quantity,
        fill.price,
        leverage=account.leverage_for(fill.symbol),
        margin_mode=account.mode_for(fill.symbol),
    )
    wallet = Ledger.wallet(fill.account)
    slot = Ledger.isolated(fill.account, fill.symbol, fill.slot)
    fee_close = round_requirement(result.closed * fill.price * fill.fee_rate)
    fee_open = round_requirement(result.opened * fill.price * fill.fee_rate)
    wallet_fee = fee_open
    moves: list[Posting] = []
    if position is not None and result.closed > 0:
        moves += _closing_postings(account, fill, position, result, fee_close)
        if not position.is_isolated:
            wallet_fee += fee_close
    after = result.after
    if result.opened > 0 and after is not None and after.is_isolated:
        margin_in = round_requirement(result.opened * fill.price / after.leverage)
        moves += postings((wallet, -margin_in), (slot, margin_in))
    moves += postings((wallet, -wallet_fee), (FEE_INCOME, wallet_fee))
    order_rest, order_removed = _order_after(fill, account)
    return fill.event_type(
        account=fill.account,
        symbol=fill.symbol,
        side=fill.side,
        slot=fill.slot,
        quantity=fill.quantity,
        price=fill.price,
        liquidity=fill.liquidity,
        fee=fee_close + fee_open,
        realized_pnl=result.realized,
        position=PositionChange(
            account=fill.account, symbol=fill.symbol, slot=fill.slot, after=after
        ),
        postings=tuple(moves),
        order_id=None if fill.order is None else fill.order.order_id,
        order=order_rest,
        order_removed=order_removed,
        scope=fill.scope,
        partial=fill.partial,
        against=fill.against,
        taken_over_by=fill.taken_over_by,
    )


def _closing_postings(
    account: Account, fill: Fill, position: Position, result: FillResult, fee_close: Decimal
) -> tuple[Posting, ...]:
    """What closing part of ``position`` moves: the realized PnL into its collateral (a fund
    takeover books the gap to the market price to the fund), and for an isolated position the
    closing fee from its slot and, unless the margin stays with the rest, the released share."""
    wallet = Ledger.wallet(fill.account)
    slot = Ledger.isolated(fill.account, fill.symbol, fill.slot)
    collateral = slot if position.is_isolated else wallet
    realized = result.realized
    if fill.market_price is None:
        moves = postings((collateral, realized), (TRADING, -realized))
    else:
        at_market = round_balance_delta(
            position.side.sign * (result.closed * fill.market_price - result.closed_entry)
        )
        moves = postings(
            (collateral, realized), (TRADING, -at_market), (INSURANCE_FUND, at_market - realized)
        )
    if not position.is_isolated:
        return moves
    moves += postings((slot, -fee_close), (FEE_INCOME, fee_close))
    if not fill.keep_margin:
        margin = account.isolated.get((fill.symbol, fill.slot), ZERO)
        whole = result.after is None or result.after.side is not position.side
        share = margin if whole else round_balance_delta(margin * result.closed / position.quantity)
        release = max(ZERO, share + realized - fee_close)
        moves += postings((slot, -release), (wallet, release))
    return moves


def _order_after(fill: Fill, account: Account) -> tuple[Order | None, str | None]:
    """The rest of a partly filled order (its reservation pro rata), or the id to drop."""
    order = fill.order
    if order is None:
        return None, None
    left = order.quantity - fill.quantity
    if left > 0:
        share = round_requirement(order.reserved * left / order.quantity)
        return dataclasses.replace(order, quantity=left, reserved=share), None
    return None, order.order_id if order.order_id in account.orders else None


def slot_for(account: Account, side: Side, position_side: str | None) -> str:
    """The position slot an order trades: BOTH in one-way mode, the named side in hedge mode."""
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
