"""Fill arithmetic: what a fill does to a position, before any money moves.

A fill of ``quantity`` on ``side`` at ``price`` against a slot holding ``position`` (or nothing)
splits into the part that closes the position (``closed``: only when the sides are opposite)
and the part that opens or increases one (``opened``; both parts in a flip):

  closed entry notional = entry_notional * closed / quantity   (28 digits, multiply first)
  realized PnL          = s * (closed * price - closed entry notional), rounded down
                          (``round_balance_delta``: the trader never gets the dust)
  after                 = the remainder (entry notional reduced by the closed part), the
                          increased position, or a new one of ``opened`` at ``price``

The money (margin moves, fees, postings) is the engine's business (app.trading); this module is
the arithmetic both it and the venue-facing views share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.numbers import ZERO, round_balance_delta
from crossmargin.core.position import MarginMode, Position, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class FillResult:
    closed: Decimal
    opened: Decimal
    closed_entry: Decimal
    realized: Decimal
    after: Position | None


def apply_fill(
    position: Position | None,
    symbol: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    *,
    leverage: Decimal,
    margin_mode: MarginMode,
) -> FillResult:
    """The fill's effect; a new position gets ``leverage`` and ``margin_mode``."""
    closed = closed_entry = realized = ZERO
    after = position
    if position is not None and position.side is not side:
        closed = min(quantity, position.quantity)
        closed_entry = position.entry_notional * closed / position.quantity
        realized = round_balance_delta(position.side.sign * (closed * price - closed_entry))
        remaining = position.quantity - closed
        after = (
            None
            if remaining == 0
            else dataclasses.replace(
                position, quantity=remaining, entry_notional=position.entry_notional - closed_entry
            )
        )
    opened = quantity - closed
    if opened > 0:
        if after is None:
            after = Position(
                symbol=symbol,
                side=side,
                quantity=opened,
                entry_notional=opened * price,
                leverage=leverage,
                margin_mode=margin_mode,
            )
        else:
            after = dataclasses.replace(
                after,
                quantity=after.quantity + opened,
                entry_notional=after.entry_notional + opened * price,
            )
    return FillResult(
        closed=closed, opened=opened, closed_entry=closed_entry, realized=realized, after=after
    )
