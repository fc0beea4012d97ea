"""Account settings: leverage per symbol, margin mode, position mode.

The switch rules are the venue's (core.venues: which positions share one margin mode, what a
switch is refused with). A leverage change re-margins the symbol's positions and re-reserves its
resting orders at the new leverage, and is refused when the account cannot carry them.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from crossmargin.app.commands import SetLeverage, SetMarginMode, SetPositionMode
from crossmargin.app.decision import Decision, account_of, reject, symbol_of, venue_code
from crossmargin.app.events import (
    LeverageChanged,
    MarginModeChanged,
    OrderRepriced,
    PositionLeverageChanged,
    PositionModeChanged,
)
from crossmargin.app.handlers.orders import reserve_for
from crossmargin.app.model import Account, Reason
from crossmargin.app.records import PositionChange
from crossmargin.app.views import book_for, free_margin, isolated_shortfall
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import Position, PositionMode
from crossmargin.core.venues import (
    MarginModeScope,
    in_margin_mode_group,
    margin_mode_switch_refusal,
    position_mode_switch_refusal,
)


def set_leverage(d: Decision, c: SetLeverage) -> None:
    """Refused when the bracket of the held notional does not allow it, when the cross margin
    cannot carry the positions and the resting orders re-reserved at the new leverage, or when an
    isolated position's margin is below its initial margin at the new leverage."""
    account = account_of(d, c.account)
    symbol = symbol_of(d, c.symbol)
    leverage = c.leverage
    held = [(k, p) for k, p in sorted(account.positions.items()) if k[0] == symbol]
    mark = d.draft.marks.get(symbol)
    notional = sum(
        (p.quantity * (mark if mark is not None else p.entry_price) for _, p in held), ZERO
    )
    cap = d.draft.instruments[symbol].bracket_for(notional).max_leverage
    if cap is not None and leverage > cap:
        raise reject(
            Reason.LEVERAGE_ABOVE_MAX,
            f"{leverage}x is above the {cap}x allowed for a {symbol} notional of {notional}",
        )
    positions = dict(account.positions)
    for key, position in held:
        positions[key] = dataclasses.replace(position, leverage=leverage)
    trial = dataclasses.replace(
        account, positions=positions, leverage={**account.leverage, symbol: leverage}
    )
    orders = dict(account.orders)
    for order_id, order in sorted(account.orders.items()):
        if order.symbol == symbol and not order.reduce_only:
            orders[order_id] = dataclasses.replace(order, reserved=reserve_for(d, trial, order))
    repriced = [orders[k] for k in sorted(orders) if orders[k] != account.orders[k]]
    trial = dataclasses.replace(trial, orders=orders)
    touches = held or any(o.symbol == symbol for o in account.orders.values())
    if touches and free_margin(d.draft, trial) < 0:
        raise reject(
            Reason.INSUFFICIENT_MARGIN,
            f"the cross margin would not cover the {symbol} positions and orders at {leverage}x",
        )
    _check_isolated_margins(d, trial, held, leverage)
    d.emit(LeverageChanged(account=account.account_id, symbol=symbol, leverage=leverage))
    for key, _position in held:
        change = PositionChange(
            account=account.account_id, symbol=symbol, slot=key[1], after=positions[key]
        )
        d.emit(PositionLeverageChanged(account=account.account_id, position=change))
    for order in repriced:
        d.emit(OrderRepriced(account=account.account_id, order=order))


def _check_isolated_margins(
    d: Decision, trial: Account, held: list[tuple[tuple[str, str], Position]], leverage: Decimal
) -> None:
    book = book_for(d.draft, trial)
    for key, position in held:
        if not position.is_isolated:
            continue
        margin = trial.isolated.get(key, ZERO)
        short = isolated_shortfall(book, dataclasses.replace(position, leverage=leverage), margin)
        if short is not None:
            raise reject(
                Reason.INSUFFICIENT_MARGIN,
                f"the isolated {key[0]} margin {margin} is below the initial margin "
                f"{short.initial_margin} at {leverage}x",
            )


def set_margin_mode(d: Decision, c: SetMarginMode) -> None:
    account = account_of(d, c.account)
    symbol = symbol_of(d, c.symbol)
    mode = c.margin_mode
    rules = d.draft.rules
    if account.mode_for(symbol) is mode:
        raise reject(Reason.MARGIN_MODE_UNCHANGED, f"{symbol} is already {mode.value}")
    refusal = margin_mode_switch_refusal(
        rules,
        with_position=any(in_margin_mode_group(rules, symbol, k[0]) for k in account.positions),
        with_orders=any(
            in_margin_mode_group(rules, symbol, o.symbol) for o in account.orders.values()
        ),
    )
    if refusal is not None:
        reason = Reason(refusal)
        with_position = reason is Reason.MARGIN_MODE_SWITCH_WITH_OPEN_POSITION
        what = "an open position" if with_position else "open orders"
        raise reject(
            reason,
            f"{rules.name} refuses a margin-mode switch with {what}" + venue_code(d, reason),
        )
    account_wide = rules.margin_mode_scope is MarginModeScope.ACCOUNT
    for name in sorted(d.draft.instruments) if account_wide else [symbol]:
        d.emit(MarginModeChanged(account=account.account_id, symbol=name, margin_mode=mode))


def set_position_mode(d: Decision, c: SetPositionMode) -> None:
    account = account_of(d, c.account)
    mode = c.position_mode
    if account.position_mode is mode:
        raise reject(Reason.POSITION_MODE_UNCHANGED, f"already in {mode.value} mode")
    if mode is PositionMode.HEDGE and not d.draft.rules.hedge_mode:
        raise reject(
            Reason.POSITION_MODE_UNSUPPORTED,
            f"{d.draft.rules.name} has no hedge mode (one-way only)",
        )
    refusal = position_mode_switch_refusal(
        d.draft.rules, with_position=bool(account.positions), with_orders=bool(account.orders)
    )
    if refusal is not None:
        reason = Reason(refusal)
        what = (
            "close every position"
            if reason is Reason.POSITION_MODE_SWITCH_WITH_OPEN_POSITION
            else "cancel every order"
        )
        raise reject(reason, f"{what} before switching position mode" + venue_code(d, reason))
    d.emit(PositionModeChanged(account=account.account_id, position_mode=mode))
