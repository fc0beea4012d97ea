"""Reference model, part 2: booking a fill (client, maker/taker, liquidation, ADL).

A fill of quantity Q at price P on a slot holding (s, q, E): the closing part c = min(Q, q) when
the fill is opposite to the position (else 0), the opening part o = Q - c.
  realized = down(s * (c*P - E*c/q)); fee_close = up(c*P*r); fee_open = up(o*P*r)
Cross: the wallet takes realized - both fees. Isolated: the closing part settles in the slot's
margin (full close: released to the wallet unless negative; partial close: the pro-rata share
plus the realized result, when positive), the opening part moves up(o*P/leverage) from the
wallet into the slot and pays its fee from the wallet. A forced close of a bankrupt scope and a
partial liquidation release nothing (``release=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tests.model.ref_figures import ZERO, Acct, Pos, State, down, up


@dataclass(frozen=True)
class FillResult:
    closed: Decimal
    opened: Decimal
    realized: Decimal
    fee: Decimal
    before: Pos | None
    after: Pos | None
    covered: tuple[Decimal, Decimal] = (ZERO, ZERO)  # a flip's slot deficit: (fund, bad debt)


def cover_deficit(state: State, deficit: Decimal) -> tuple[Decimal, Decimal]:
    """A scope's deficit: the insurance fund pays what it can, the rest is bad debt. The caller
    credits the scope's collateral with the whole ``deficit``."""
    paid = min(state.fund, deficit)
    state.fund -= paid
    state.bad_debt -= deficit - paid
    return paid, deficit - paid


def book_fill(
    state: State,
    account: Acct,
    symbol: str,
    slot: str,
    side: int,
    quantity: Decimal,
    price: Decimal,
    rate: Decimal,
    *,
    release: bool = True,
) -> FillResult:
    key = (symbol, slot)
    position = account.positions.get(key)
    isolated = position.isolated if position is not None else _isolated_mode(account, symbol)
    closed = ZERO
    if position is not None and position.side != side:
        closed = min(quantity, position.qty)
    opened = quantity - closed
    fee_close = up(closed * price * rate)
    fee_open = up(opened * price * rate)
    realized = ZERO
    covered = (ZERO, ZERO)
    after = position
    if closed > 0:
        assert position is not None
        closed_entry = position.entry * closed / position.qty
        realized = down(position.side * (closed * price - closed_entry))
        state.flow("trading", -realized)
        if closed == position.qty:
            after = None
        else:
            after = Pos(
                side=position.side,
                qty=position.qty - closed,
                entry=position.entry - closed_entry,
                leverage=position.leverage,
                isolated=position.isolated,
            )
        if isolated:
            _settle_isolated_close(account, key, position, closed, realized, fee_close, release)
        else:
            account.wallet += realized - fee_close
        state.fee_income += fee_close
    if opened > 0 and isolated and account.margin(key) < 0:
        # a flip whose close left the slot below zero (an outside fill far from the mark): the
        # slot is settled before the new position opens in it, which starts with its own margin
        deficit = -account.margin(key)
        covered = cover_deficit(state, deficit)
        account.move_margin(key, deficit)
    if opened > 0:
        if after is None:
            after = Pos(
                side=side,
                qty=opened,
                entry=opened * price,
                leverage=account.leverage_for(symbol),
                isolated=isolated,
            )
        else:
            after = Pos(
                side=after.side,
                qty=after.qty + opened,
                entry=after.entry + opened * price,
                leverage=after.leverage,
                isolated=after.isolated,
            )
        if isolated:
            margin = up(opened * price / after.leverage)
            account.wallet -= margin
            account.move_margin(key, margin)
        account.wallet -= fee_open
        state.fee_income += fee_open
    if after is None:
        account.positions.pop(key, None)
    else:
        account.positions[key] = after
    return FillResult(
        closed=closed,
        opened=opened,
        realized=realized,
        fee=fee_close + fee_open,
        before=position,
        after=after,
        covered=covered,
    )


def _isolated_mode(account: Acct, symbol: str) -> bool:
    return account.isolated_mode.get(symbol, False)


def _settle_isolated_close(
    account: Acct,
    key: tuple[str, str],
    position: Pos,
    closed: Decimal,
    realized: Decimal,
    fee_close: Decimal,
    release: bool,
) -> None:
    margin = account.margin(key)
    if not release:
        account.move_margin(key, realized - fee_close)
        return
    if closed == position.qty:
        left = margin + realized - fee_close
        account.move_margin(key, realized - fee_close)
        if left >= 0:  # a negative remainder stays in the slot for the fund (or bad debt)
            account.move_margin(key, -left)
            account.wallet += left
        return
    share = down(margin * closed / position.qty)
    out = share + realized - fee_close
    account.move_margin(key, realized - fee_close - max(ZERO, out))
    if out > 0:
        account.wallet += out
